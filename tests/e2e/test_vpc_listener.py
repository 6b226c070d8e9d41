"""A listener added to a running twin's load balancer in VPC mode. An internal one's Caddy,
running in the load balancer's ENI, binds it in place; an internet-facing one's listeners
are bound on this machine, so its Caddy is relaunched with the new socket, and no request
fails meanwhile."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from tests.e2e.conftest import Twin, fargo, make_twin, under_load

from fargo.local.ec2.vpc_mode import vpc_mode_unavailable

pytestmark = pytest.mark.slow  # a twin in VPC mode

HERE = Path(__file__).parent
NEW_PORT = 8091
NEW_PUBLIC_PORT = 8093


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    if (reason := vpc_mode_unavailable()) is not None:
        pytest.skip(f"VPC mode is not available here: {reason}")
    folder = tmp_path_factory.mktemp("vpc-listener")
    spec = folder / "vpc_listener.yaml"
    document = yaml.safe_load((HERE / "vpc_listener.yaml").read_text())
    document["images"]["backend-private"]["context"] = str(HERE.parents[1] / "services")
    spec.write_text(yaml.safe_dump(document, sort_keys=False))
    twin = make_twin(spec, folder / "state")
    twin.network = "vpc"
    fargo("up", "--detach", *twin.up_args())
    try:
        yield twin
    finally:
        fargo("down", "--state-dir", str(twin.state_dir), check=False)


def call_from_a_task(twin: Twin, url: str) -> str:
    code = f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=5).read())"
    result = fargo(
        "exec", "--state-dir", str(twin.state_dir), "api", "--", "python", "-c", code, check=False
    )
    return result.stdout + result.stderr


def test_a_listener_added_to_an_internal_load_balancer_serves_inside_the_vpc(
    twin: Twin,
) -> None:
    name = twin.status().endpoints.load_balancer_dns_names["internal"]
    assert "TaskId: " in call_from_a_task(twin, f"http://{name}:8090/endpoint")
    assert "TaskId: " not in call_from_a_task(twin, f"http://{name}:{NEW_PORT}/endpoint")

    document = yaml.safe_load(twin.spec.read_text())
    listeners = document["load_balancers"]["internal"]["listeners"]
    listeners.append({"port": NEW_PORT, "protocol": "HTTP", "default_action": {"forward": "api"}})
    twin.spec.write_text(yaml.safe_dump(document, sort_keys=False))
    applied = fargo("up", *twin.up_args(), timeout=600)
    assert f"{NEW_PORT}" in applied.stdout + applied.stderr

    assert "TaskId: " in call_from_a_task(twin, f"http://{name}:{NEW_PORT}/endpoint")
    assert "TaskId: " in call_from_a_task(twin, f"http://{name}:8090/endpoint")
    listed = twin.status().load_balancers.load_balancers["internal"].listeners
    assert sorted(listener.port for listener in listed) == [8090, NEW_PORT]


def test_a_listener_added_to_an_internet_facing_load_balancer_serves_with_none_failing(
    twin: Twin,
) -> None:
    before = set(twin.status().endpoints.load_balancers["public"])
    pids = {tuple(p.load_balancers): p.pid for p in twin.status().load_balancers.data_planes}
    document = yaml.safe_load(twin.spec.read_text())
    listeners = document["load_balancers"]["public"]["listeners"]
    fixed = {"status_code": 200, "content_type": "text/plain", "message_body": "new listener"}
    listeners.append(
        {"port": NEW_PUBLIC_PORT, "protocol": "HTTP", "default_action": {"fixed_response": fixed}}
    )
    twin.spec.write_text(yaml.safe_dump(document, sort_keys=False))
    with under_load(twin, "/", scheme="http", threads=2) as seen:
        applied = fargo("up", *twin.up_args(), timeout=600)
    assert f"public:{NEW_PUBLIC_PORT}: added" in applied.stdout, applied.stdout
    assert seen[200] > 20 and set(seen) == {200}, seen  # none refused, reset or lost

    status = twin.status()
    [url] = set(status.endpoints.load_balancers["public"]) - before
    assert httpx.get(url, timeout=5).text == "new listener"
    assert httpx.get(twin.url("public", "http"), timeout=5).text == "public"
    now = {tuple(p.load_balancers): p.pid for p in status.load_balancers.data_planes}
    assert now[("internal",)] == pids[("internal",)]  # its Caddy binds new listeners itself
    assert now[("public",)] != pids[("public",)]  # relaunched with the new socket
