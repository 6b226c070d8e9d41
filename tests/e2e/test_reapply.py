"""`fargo up` on a running twin applies the edited spec as a diff, as a user does it: edit
the file, run `fargo up` again, look through the public listener and the DNS server."""

from __future__ import annotations

import collections
import contextlib
import shutil
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import dns.rcode
import httpx
import psutil
import pytest
import yaml
from tests.e2e.conftest import Twin, fargo, start_twin

pytestmark = pytest.mark.slow  # one twin of a copy of second.yaml for the module

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    folder = tmp_path_factory.mktemp("reapply")
    shutil.copytree(HERE / "echo", folder / "echo")
    spec = folder / "second.yaml"
    shutil.copy(HERE / "second.yaml", spec)  # its weighted forward looks its targets up too
    yield from start_twin(spec, folder / "state")


def edit(twin: Twin, change: Callable[[dict[str, Any]], None]) -> None:
    document = yaml.safe_load(twin.spec.read_text())
    change(document)
    twin.spec.write_text(yaml.safe_dump(document, sort_keys=False))


def up_again(twin: Twin, check: bool = True) -> tuple[int, str, str]:
    result = fargo("up", *twin.up_args(), check=check, timeout=600)
    return result.returncode, result.stdout, result.stderr


def http(twin: Twin) -> httpx.Client:
    return httpx.Client(verify=ssl.create_default_context(cafile=twin.ca), timeout=10)


def caddy_pid(twin: Twin) -> int | None:
    return twin.status().load_balancers.data_planes[0].pid


def task_ids(twin: Twin) -> dict[str, set[str]]:
    return {s.name: {t.id for t in s.tasks} for s in twin.status().services}


@contextlib.contextmanager
def under_load(twin: Twin, path: str) -> Iterator[collections.Counter[str]]:
    """Requests to ``path`` one after another until the block ends: ``status service``."""
    seen: collections.Counter[str] = collections.Counter()
    done = threading.Event()

    def load() -> None:
        with http(twin) as client:
            while not done.is_set():
                try:
                    answer = client.get(twin.url("edge", "https") + path)
                except httpx.HTTPError as err:
                    seen[f"error {type(err).__name__}"] += 1
                    continue
                service = answer.json().get("service") if answer.status_code == 200 else ""
                seen[f"{answer.status_code} {service}"] += 1

    worker = threading.Thread(target=load)
    worker.start()
    try:
        yield seen
    finally:
        done.set()
        worker.join()


@contextlib.contextmanager
def new_connections_under_load(
    twin: Twin, path: str, threads: int = 2
) -> Iterator[collections.Counter[str]]:
    """Requests to ``path``, each on a new connection, until the block ends: ``status
    service`` (or ``error <name>``)."""
    seen: collections.Counter[str] = collections.Counter()
    done = threading.Event()

    def load() -> None:
        verify = ssl.create_default_context(cafile=twin.ca)
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(verify=verify, timeout=10, limits=limits) as client:
            while not done.is_set():
                try:
                    answer = client.get(twin.url("edge", "https") + path)
                except httpx.HTTPError as err:
                    seen[f"error {type(err).__name__}"] += 1
                    continue
                service = answer.json().get("service") if answer.status_code == 200 else ""
                seen[f"{answer.status_code} {service}"] += 1

    workers = [threading.Thread(target=load) for _ in range(threads)]
    for worker in workers:
        worker.start()
    try:
        yield seen
    finally:
        done.set()
        for worker in workers:
            worker.join()


def resolve(twin: Twin, name: str) -> tuple[int, list[str]]:
    host, port = twin.endpoints.discovery_dns_server.rsplit(":", 1)
    answer = dns.query.udp(dns.message.make_query(name, "A"), host, port=int(port), timeout=2)
    return answer.rcode(), [r.to_text() for rrset in answer.answer for r in rrset]


def test_no_change_is_said_and_nothing_restarts(twin: Twin) -> None:
    before, pid = task_ids(twin), caddy_pid(twin)
    code, out, _ = up_again(twin)
    assert code == 0 and "no changes" in out, out
    assert task_ids(twin) == before and caddy_pid(twin) == pid


def test_an_environment_change_rolls_only_that_service_under_load(twin: Twin) -> None:
    before, pid = task_ids(twin), caddy_pid(twin)
    edit(twin, lambda d: d["services"]["web-a"]["environment"].update(SERVICE_NAME="web-a-v2"))
    with under_load(twin, "/a/x") as seen:
        code, out, err = up_again(twin)
    assert code == 0, err
    assert "service web-a: environment.SERVICE_NAME changed → revision 2 rolled out" in out
    after = task_ids(twin)
    assert len(after["web-a"]) == 2 and not after["web-a"] & before["web-a"]
    assert {k: v for k, v in after.items() if k != "web-a"} == {
        k: v for k, v in before.items() if k != "web-a"
    }
    # Every request answered, by the old revision and then the new one.
    assert set(seen) <= {"200 web-a", "200 web-a-v2"} and seen["200 web-a-v2"] > 0, seen
    assert sum(seen.values()) > 20, seen
    assert caddy_pid(twin) == pid


def test_a_new_rule_routes_through_the_same_caddy(twin: Twin) -> None:
    pid = caddy_pid(twin)

    def add_rule(d: dict[str, Any]) -> None:
        rules = d["load_balancers"]["edge"]["listeners"][0]["rules"]
        rules.append(
            {
                "priority": 60,
                "conditions": [{"path_pattern": ["/new/*"]}],
                "action": {"forward": "b"},
            }
        )

    with http(twin) as client:
        assert client.get(twin.url("edge", "https") + "/new/x").status_code == 404
        edit(twin, add_rule)
        code, out, err = up_again(twin)
        assert code == 0, err
        assert "listener edge:9443: rule 60 added" in out, out
        answer = client.get(twin.url("edge", "https") + "/new/x")
    assert answer.status_code == 200 and answer.json()["service"] == "web-b"
    assert caddy_pid(twin) == pid


def test_rule_changes_under_load_answer_every_request(twin: Twin) -> None:
    """A rule change loads a new Caddy config; the listener is handed over first, so no
    request on a new connection goes unanswered, and the old servers close keep-alive
    connections only after an answer (ALB applies rules without dropping any)."""
    pid = caddy_pid(twin)

    def rules(d: dict[str, Any]) -> list[dict[str, Any]]:
        return d["load_balancers"]["edge"]["listeners"][0]["rules"]

    def add_rule(d: dict[str, Any]) -> None:
        rule = {"priority": 70, "conditions": [{"path_pattern": ["/seventy/*"]}]}
        rules(d).append({**rule, "action": {"forward": "b"}})

    def remove_rule(d: dict[str, Any]) -> None:
        rules(d)[:] = [rule for rule in rules(d) if rule["priority"] != 70]

    with new_connections_under_load(twin, "/a/x") as seen, under_load(twin, "/a/x") as kept:
        for change, said in ((add_rule, "rule 70 added"), (remove_rule, "rule 70 removed")):
            edit(twin, change)
            code, out, err = up_again(twin)
            assert code == 0, err
            assert said in out, out
    # Answered by web-a (its SERVICE_NAME is web-a-v2 once the test above has run).
    assert {outcome.split()[0] for outcome in seen} == {"200"}, seen
    assert {outcome.split()[0] for outcome in kept} == {"200"}, kept
    assert sum(seen.values()) > 20 and sum(kept.values()) > 20, (seen, kept)
    assert caddy_pid(twin) == pid


def test_a_removed_service_stops_and_an_added_discovery_service_resolves(twin: Twin) -> None:
    before = task_ids(twin)
    worker_pids = [t.pid for t in twin.service("worker").tasks]
    assert len(worker_pids) == 2 and None not in worker_pids

    def change(d: dict[str, Any]) -> None:
        del d["services"]["worker"]
        d["services"]["api"]["environment"].pop("WORKER_URL")
        d["discovery"]["services"].append({"name": "extra", "ttl": 5})
        d["services"]["extra"] = {
            "image": "echo",
            "port": 7300,
            "cpu": 256,
            "memory": 512,
            "desired_count": 2,
            "discovery": "extra",
            "environment": {"SERVICE_NAME": "extra"},
        }

    assert resolve(twin, "extra.second.internal")[0] == dns.rcode.NXDOMAIN
    edit(twin, change)
    code, out, err = up_again(twin)
    assert code == 0, err
    assert "service worker: removed (2 tasks drained and stopped)" in out, out
    assert "service extra: added (2 tasks)" in out, out
    assert "discovery service extra: added" in out, out
    after = task_ids(twin)
    assert "worker" not in after and len(after["extra"]) == 2
    assert after["web-a"] == before["web-a"] and after["web-b"] == before["web-b"]
    rcode, addresses = resolve(twin, "extra.second.internal")
    assert rcode == dns.rcode.NOERROR and len(addresses) == 2, addresses
    # The worker's tasks are gone: their processes with them.
    assert not [pid for pid in worker_pids if pid is not None and psutil.pid_exists(pid)]


def test_a_network_change_is_refused_and_nothing_changes(twin: Twin) -> None:
    before, pid = task_ids(twin), caddy_pid(twin)

    def change(d: dict[str, Any]) -> None:
        d["network"]["nat_gateways"] = 2
        d["services"]["web-b"]["desired_count"] = 2  # not applied either

    original = twin.spec.read_text()
    edit(twin, change)
    try:
        code, _, err = up_again(twin, check=False)
    finally:
        twin.spec.write_text(original)
    assert code == 1
    assert "network.nat_gateways: 1 → 2" in err and "`fargo down` then `fargo up`" in err, err
    assert task_ids(twin) == before and caddy_pid(twin) == pid


def test_an_invalid_spec_is_reported_located_and_nothing_changes(twin: Twin) -> None:
    before = task_ids(twin)
    original = twin.spec.read_text()
    edit(twin, lambda d: d["services"]["web-b"].update(desired_count=-1))
    try:
        code, _, err = up_again(twin, check=False)
    finally:
        twin.spec.write_text(original)
    assert code == 1
    assert f"{twin.spec}:" in err and "services.web-b.desired_count" in err, err
    assert task_ids(twin) == before


def test_another_spec_file_is_refused(twin: Twin, tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    shutil.copy(twin.spec, other)
    args = ["-f", str(other), "--state-dir", str(twin.state_dir)]
    result = fargo("up", *args, check=False)
    assert result.returncode == 1
    assert f"runs {twin.spec}, not {other}" in result.stderr, result.stderr


def test_a_failing_revision_rolls_back_and_the_twin_keeps_the_previous_one(twin: Twin) -> None:
    before = task_ids(twin)
    original = twin.spec.read_text()
    # An interpreter that cannot start: every new task exits at once.
    edit(twin, lambda d: d["services"]["web-b"]["environment"].update(PYTHONHOME="/nonexistent"))
    try:
        code, out, err = up_again(twin, check=False)
    finally:
        twin.spec.write_text(original)
    assert code == 1 and "not every change completed" in err, out
    line = "service web-b: environment.PYTHONHOME added → the deployment failed and rolled back"
    assert f"{line} to revision 1" in out, out
    assert task_ids(twin)["web-b"] == before["web-b"]
    with http(twin) as client:
        assert client.get(twin.url("edge", "https") + "/b/1x").json()["service"] == "web-b"
    # The twin runs the previous definition: the restored file is no change.
    code, out, _ = up_again(twin)
    assert "no changes" in out, out
