"""The data plane outlives its control plane: killed (SIGKILL) or stopped (SIGSTOP), the
load balancers keep routing to the last known targets and discovery names keep resolving.

Each test starts its own twin of ``second.yaml`` and puts load through its public
listener (`under_load`) while the control plane is away.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype
import psutil
import pytest
from tests.e2e.conftest import Twin, fargo, free_ports, make_twin, running, under_load
from tests.waiting import wait_until

from fargo.local.ec2.vpc_mode import vpc_mode_unavailable
from fargo.local.state import folder as state

pytestmark = pytest.mark.slow  # starts twins and keeps their control plane away for seconds

HERE = Path(__file__).parent
AWAY_SECONDS = 30.0  # as long as the issue measured: 0 failed through the public listener
DISCOVERY_NAME = "api.second.internal."


def own_spec(folder: Path) -> Path:
    """``second.yaml`` on a network of its own (10.61.0.0/16): other test runs on this
    machine may have a twin of ``second.yaml`` up."""
    (folder / "echo").symlink_to(HERE / "echo")
    spec = folder / "away.yaml"
    spec.write_text((HERE / "second.yaml").read_text().replace("10.1.", "10.61."))
    return spec


@pytest.fixture
def twin(tmp_path: Path) -> Iterator[Twin]:
    twin = make_twin(own_spec(tmp_path), tmp_path / "state")
    fargo("up", "--detach", *twin.up_args())
    try:
        yield twin
    finally:
        fargo("down", "--state-dir", str(twin.state_dir), check=False)


def discovered(twin: Twin) -> set[str]:
    """The A records the twin's discovery DNS server answers for ``api``, over UDP."""
    host, port = twin.endpoints.discovery_dns_server.rsplit(":", 1)
    query = dns.message.make_query(DISCOVERY_NAME, "A")
    answer = dns.query.udp(query, host, port=int(port), timeout=2)
    return {r.address for rrset in answer.answer if rrset.rdtype == dns.rdatatype.A for r in rrset}


def discovered_in_a_task(twin: Twin) -> set[str]:
    """`discovered`, asked from inside a web-a task's network namespace (VPC mode: the
    DNS server is at the VPC's base + 2, reached through the VPC router)."""
    task = next(p for p in twin.processes() if p.environ().get("SERVICE_NAME") == "web-a")
    host, port = twin.endpoints.discovery_dns_server.rsplit(":", 1)
    code = (
        "import dns.message, dns.query; "
        f"a = dns.query.udp(dns.message.make_query({DISCOVERY_NAME!r}, 'A'), {host!r}, "
        f"port={port}, timeout=2); print(*sorted(r.address for rr in a.answer for r in rr))"
    )
    argv = ["nsenter", "-t", str(task.pid), "-n", sys.executable, "-c", code]
    return set(subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split())


def control_plane(twin: Twin) -> psutil.Process:
    return psutil.Process(twin.status().pid)


def away_under_load(
    twin: Twin, process: psutil.Process, away: signal.Signals
) -> tuple[dict[int | str, int], set[str]]:
    """Requests through the public listener while the control plane ``process`` is sent
    ``away`` for `AWAY_SECONDS`: their outcomes, and what discovery answered at the end."""
    with under_load(twin, "/a/x", load_balancer="edge", threads=2) as seen:
        wait_until(lambda: seen[200] > 10, what="requests answered before")
        process.send_signal(away)
        if away == signal.SIGKILL:
            process.wait(5)
        before = sum(seen.values())
        time.sleep(AWAY_SECONDS)
        names = discovered(twin) if twin.network == "loopback" else discovered_in_a_task(twin)
        during = sum(seen.values()) - before
    assert during > AWAY_SECONDS * 10, f"only {during} requests while away: {dict(seen)}"
    return dict(seen), names


def recorded(twin: Twin) -> dict[str, int]:
    """Pid record name → pid, of the processes still alive."""
    return {r.path.stem: r.pid for r in state.recorded_processes(twin.state_dir) if r.alive()}


def test_a_killed_control_plane_leaves_the_data_plane_serving_and_up_takes_it_over(
    twin: Twin,
) -> None:
    before = discovered(twin)
    assert len(before) == 2, before
    old = recorded(twin)
    process = control_plane(twin)
    with under_load(twin, "/a/x", load_balancer="edge", threads=2) as seen:
        wait_until(lambda: seen[200] > 10, what="requests answered before")
        process.send_signal(signal.SIGKILL)
        process.wait(5)
        time.sleep(AWAY_SECONDS)
        away = sum(seen.values())
        assert discovered(twin) == before  # the twin's DNS server answers the last records
        answered = fargo("status", "--state-dir", str(twin.state_dir), check=False)
        assert answered.returncode == 1
        said = answered.stderr
        assert "it stopped without `fargo down`" in said, said
        assert "discovery DNS server (pid" in said and "target lookups of caddy (pid" in said
        assert "The load balancers keep routing to the last known targets and discovery" in said
        assert set(seen) == {200}, seen  # no 503, no refused or reset connection
        seen.clear()
        # `fargo up` again, still under load: the new twin starts beside the old data plane
        again = fargo("up", "--detach", *twin.up_args()).stdout
        wait_until(
            lambda: not running(old["caddy"]),
            timeout=30,
            what="the crashed run's Caddy stopped",
        )
        wait_until(lambda: discovered(twin) != before, what="the new tasks discovered")
        time.sleep(6)  # longer than the new Caddy's watchdog allows its admin API
    assert away > AWAY_SECONDS * 10, f"only {away} requests while away"
    # While taken over: no connection refused, no 503 (without the take-over, seconds of
    # both), no keep-alive connection closed under a request (the old Caddy, stopping,
    # closes each after an answer first).
    assert seen[200] > 10 and set(seen) == {200}, seen
    assert "its data plane kept serving and is taken over without a refused connection" in again
    now = recorded(twin)
    assert now["caddy-targets"] == old["caddy-targets"]  # adopted, not restarted
    assert now["dns-discovery"] == old["dns-discovery"]
    assert now["caddy"] != old["caddy"] and not running(old["caddy"])
    status = twin.status()
    assert status.readiness.ready and len(discovered(twin)) == 2
    # The old Caddy, stopping, unlinks its sockets' paths, which are the new Caddy's: were
    # they not parked meanwhile, the new Caddy's watchdog would lose its admin API and
    # kill it (every connection dropped).
    assert [p.restarts for p in status.load_balancers.data_planes] == [0]
    assert (twin.state_dir / "caddy" / "admin.sock").exists()
    # the crashed run's tasks still linger (a client may have cached their addresses):
    # `fargo down` stops them too
    assert any(name.startswith("previous-task-") for name in now), now
    fargo("down", "--state-dir", str(twin.state_dir))
    wait_until(lambda: twin.processes() == [], what="every process of both runs gone")


def test_a_stopped_control_plane_leaves_the_data_plane_serving(twin: Twin) -> None:
    before = discovered(twin)
    process = control_plane(twin)
    try:
        seen, names = away_under_load(twin, process, signal.SIGSTOP)
    finally:
        process.send_signal(signal.SIGCONT)
    assert set(seen) == {200}, seen  # no request hangs for 10 s, none answered 503
    assert names == before
    # back, it serves as before: `fargo status` answers and the twin is still ready
    wait_until(lambda: twin.status().readiness.ready, what="the twin ready again")


def test_in_vpc_mode_a_killed_control_plane_leaves_the_data_plane_serving_and_up_takes_it_over(
    tmp_path: Path,
) -> None:
    """The VPC's namespaces outlive the control plane: each task's and load balancer's by
    the processes inside, the router's by the discovery DNS process's sockets. `fargo up`
    again makes a new VPC beside it and takes the listeners on this machine over once its
    tasks are healthy: no request fails, and the old VPC goes."""
    if (reason := vpc_mode_unavailable()) is not None:
        pytest.skip(f"VPC mode is not available here: {reason}")
    twin = make_twin(own_spec(tmp_path), tmp_path / "state")
    twin.network = "vpc"
    fargo("up", "--detach", *twin.up_args())
    try:
        before = discovered_in_a_task(twin)
        assert len(before) == 2, before
        old = recorded(twin)
        assert "caddy-edge" in old and "caddy-edge-targets" in old, old
        with under_load(twin, "/a/x", load_balancer="edge", threads=2) as seen:
            wait_until(lambda: seen[200] > 10, what="requests answered before")
            process = control_plane(twin)
            process.send_signal(signal.SIGKILL)
            process.wait(5)
            time.sleep(AWAY_SECONDS)
            assert discovered_in_a_task(twin) == before  # the old VPC's records still
            away = sum(seen.values())
            again = fargo("up", "--detach", *twin.up_args()).stdout
            wait_until(
                lambda: not any(running(pid) for pid in old.values()),
                timeout=30,
                what="every process of the crashed run stopped",
            )
            time.sleep(6)  # longer than the new Caddys' watchdogs allow their admin APIs
        assert away > AWAY_SECONDS * 10, f"only {away} requests while away"
        # No connection refused, no 502 or 503 from an old Caddy routing to the new VPC's
        # addresses or to none, no request lost when the listeners change hands.
        assert seen[200] > AWAY_SECONDS * 10 and set(seen) == {200}, seen
        assert "its data plane kept serving and is taken over without a refused connection" in again
        now = recorded(twin)
        assert not any(name.startswith("previous-") for name in now), now
        assert now["caddy-edge"] != old["caddy-edge"]
        status = twin.status()
        assert status.readiness.ready and len(discovered_in_a_task(twin)) == 2
        assert {p.restarts for p in status.load_balancers.data_planes} == {0}
        assert not [p for p in twin.state_dir.iterdir() if p.is_dir() and "previous-" in p.name]
        assert (twin.state_dir / "caddy-edge" / "admin.sock").exists()
        # A new task still starts: the old run's log router, stopping, left the new one's
        # socket alone.
        task = next(p for p in twin.processes() if p.environ().get("SERVICE_NAME") == "web-a")
        task.kill()
        wait_until(
            lambda: (
                len(twin.service("web-a").tasks) == 2
                and task.pid not in {t.pid for t in twin.service("web-a").tasks}
                and twin.status().readiness.ready
            ),
            timeout=30,
            what="web-a's killed task replaced",
        )
        assert twin.service("web-a").failed_starts == 0
    finally:
        fargo("down", "--state-dir", str(twin.state_dir), check=False)
    assert twin.processes() == []


def test_down_stops_the_dns_processes(twin: Twin) -> None:
    dns_pids = [
        p.pid for p in twin.processes() if "fargo.local.dataplane_dns" in " ".join(p.cmdline())
    ]
    assert len(dns_pids) == 2, dns_pids  # the targets of the one Caddy, and discovery
    fargo("down", "--state-dir", str(twin.state_dir))
    wait_until(lambda: not any(running(p) for p in dns_pids), what="DNS processes gone")


def test_up_on_other_listener_ports_stops_the_crashed_run_instead(twin: Twin) -> None:
    old = recorded(twin)
    process = control_plane(twin)
    process.send_signal(signal.SIGKILL)
    process.wait(5)
    moved = Twin(twin.spec, twin.state_dir, dict(zip(twin.publish, free_ports(2), strict=True)))
    again = fargo("up", "--detach", *moved.up_args()).stdout
    assert "stopped what its crashed run left running: " in again, again
    assert "caddy (load balancers) (pid" in again and "discovery DNS server (pid" in again
    assert not any(running(pid) for pid in old.values())
    assert moved.status().readiness.ready
