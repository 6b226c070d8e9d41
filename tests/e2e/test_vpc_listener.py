"""A listener added to a running twin's internal load balancer in VPC mode: applied in
place (Caddy, running in the load balancer's ENI, binds it), reached from inside the VPC."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from tests.e2e.conftest import Twin, fargo, make_twin

from fargo.local.ec2.vpc_mode import vpc_mode_unavailable

pytestmark = pytest.mark.slow  # a twin in VPC mode

HERE = Path(__file__).parent
NEW_PORT = 8091


@pytest.fixture
def twin(tmp_path: Path) -> Iterator[Twin]:
    if (reason := vpc_mode_unavailable()) is not None:
        pytest.skip(f"VPC mode is not available here: {reason}")
    spec = tmp_path / "vpc_listener.yaml"
    document = yaml.safe_load((HERE / "vpc_listener.yaml").read_text())
    document["images"]["backend-private"]["context"] = str(HERE.parents[1] / "services")
    spec.write_text(yaml.safe_dump(document, sort_keys=False))
    twin = make_twin(spec, tmp_path / "state")
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
