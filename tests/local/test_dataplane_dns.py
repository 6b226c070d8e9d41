"""The data plane's DNS processes: snapshot handling, and answering after the writer left.

The processes are real (``python -m fargo.local.dataplane_dns``), answering real UDP and
TCP queries on sockets this test process bound and handed over.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import dns.asyncquery
import dns.message
import dns.rcode
import dns.rdatatype
import psutil
import pytest
from tests.waiting import until

from fargo.local.cloudmap.registry import CloudMap
from fargo.local.dataplane_dns.discovery import DiscoveryDnsServer
from fargo.local.dataplane_dns.process import HUNG_AFTER_SECONDS as HUNG_AFTER
from fargo.local.dataplane_dns.process import DnsProcessError
from fargo.local.dataplane_dns.snapshot import (
    SnapshotFile,
    SnapshotZones,
    discovery_snapshot,
    targets_snapshot,
)
from fargo.local.dataplane_dns.targets import TargetLookupServer, handed_over_listeners
from fargo.local.loops import cancel_and_wait
from fargo.local.state import folder as state

NS = "microservice.local"
TIMEOUT = 2.0


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "s"
    state.prepare(folder)
    return folder


def a_records(response: dns.message.Message) -> list[str]:
    return sorted(
        rd.address for rrset in response.answer for rd in rrset if rrset.rdtype == dns.rdatatype.A
    )


async def lookup(address: str, name: str) -> dns.message.Message:
    host, port = address.removeprefix("udp/").rsplit(":", 1)
    query = dns.message.make_query(name, "A")
    return await dns.asyncquery.udp(query, host, TIMEOUT, int(port))


def cloud_map() -> CloudMap:
    registry = CloudMap()
    registry.create_private_dns_namespace(NS)
    registry.create_service(NS, "api", ttl=15, record_types=("A", "SRV"))
    registry.create_service(NS, "one", ttl=5, routing_policy="WEIGHTED")
    for i in range(3):
        registry.register_instance(NS, "api", f"t{i}", f"127.0.1.{i + 1}", 7100)
        registry.register_instance(NS, "one", f"o{i}", f"127.0.2.{i + 1}", 7100)
    registry.update_instance_custom_health_status(NS, "api", "t2", "UNHEALTHY")
    registry.put_record("lb.elb.fargo.internal", "127.0.0.9", ttl=60)
    registry.create_http_namespace("sc.local")
    registry.create_service("sc.local", "backend", ttl=1, record_types=())
    registry.register_instance("sc.local", "backend", "b1", "127.0.3.1", 8080)
    registry.put_client_alias("backend.sc", "sc.local", "backend")
    return registry


# -- the snapshot file ----------------------------------------------------------------


def test_a_reader_sees_each_new_snapshot_and_only_reads_it_once(tmp_path: Path) -> None:
    path = tmp_path / "targets.json"
    writer, reader = SnapshotFile(path, "targets"), SnapshotFile(path, "targets")
    assert reader.current() is None  # nothing written yet
    writer.write(targets_snapshot({"a.targets.fargo.": ["127.0.1.1"]}))
    assert reader.changed() == {
        "format": 1,
        "kind": "targets",
        "records": {"a.targets.fargo.": ["127.0.1.1"]},
    }
    assert reader.changed() is None  # unchanged: not read again
    writer.write(targets_snapshot({"a.targets.fargo.": []}))
    assert reader.current() == {"format": 1, "kind": "targets", "records": {"a.targets.fargo.": []}}
    assert [p.name for p in tmp_path.iterdir()] == ["targets.json"]  # no temporary left
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "damage",
    [b"{not json", b'{"format": 99, "kind": "targets", "records": {}}', b"[]", b""],
)
def test_a_bad_or_missing_file_keeps_the_last_good_snapshot(tmp_path: Path, damage: bytes) -> None:
    path = tmp_path / "targets.json"
    writer, reader = SnapshotFile(path, "targets"), SnapshotFile(path, "targets")
    writer.write(targets_snapshot({"a.targets.fargo.": ["127.0.1.1"]}))
    good = reader.current()
    path.write_bytes(damage)
    assert reader.current() == good
    path.unlink()
    assert reader.current() == good


def test_a_reader_keeps_reading_its_folder_once_set_aside(tmp_path: Path) -> None:
    """A VPC take-over renames the old run's folder and makes a new one at its path: the
    old run's lookup process must not answer the new run's targets (another VPC's)."""
    path = tmp_path / "caddy-public" / "targets.json"
    path.parent.mkdir()
    reader = SnapshotFile(path, "targets")
    reader.hold_folder()  # as the process does at start, before any query
    SnapshotFile(path, "targets").write(targets_snapshot({"a.targets.fargo.": ["10.0.10.5"]}))
    path.parent.rename(tmp_path / "previous-caddy-public")
    path.parent.mkdir()
    SnapshotFile(path, "targets").write(targets_snapshot({"a.targets.fargo.": ["10.0.10.9"]}))
    aside = tmp_path / "previous-caddy-public" / "targets.json"
    SnapshotFile(aside, "targets").write(targets_snapshot({"a.targets.fargo.": ["10.0.10.6"]}))
    assert reader.current() == targets_snapshot({"a.targets.fargo.": ["10.0.10.6"]}) | {
        "format": 1,
        "kind": "targets",
    }


def test_a_snapshot_of_another_kind_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    SnapshotFile(path, "discovery").write({"namespaces": {}, "records": {}, "aliases": {}})
    assert SnapshotFile(path, "targets").current() is None


def test_the_discovery_snapshot_answers_as_cloud_map_does(tmp_path: Path) -> None:
    registry = cloud_map()
    path = tmp_path / "discovery.json"
    SnapshotFile(path, "discovery").write(discovery_snapshot(*registry.dns_state()))
    zones = SnapshotZones(SnapshotFile(path, "discovery"), rng=random.Random(1))
    assert zones.zones() == registry.zones()
    questions = [
        (f"api.{NS}", "A"),
        (f"api.{NS}", "SRV"),
        (f"t0.api.{NS}", "A"),
        (f"nothing.{NS}", "A"),
        (NS, "SOA"),
        ("lb.elb.fargo.internal", "A"),
        ("backend.sc", "A"),
        ("example.com", "A"),
    ]
    for name, rtype in questions:
        mine, theirs = zones.answer(name, rtype), registry.answer(name, rtype)
        assert (mine.rcode, set(mine.answer), mine.authority) == (
            theirs.rcode,
            set(theirs.answer),
            theirs.authority,
        ), (name, rtype)
    weighted = zones.answer(f"one.{NS}", "A")
    assert len(weighted.answer) == 1  # WEIGHTED: one record, as Route 53 answers
    healthy = {r.value for r in zones.answer(f"api.{NS}", "A").answer}
    assert healthy == {"127.0.1.1", "127.0.1.2"}  # t2 is unhealthy


def test_every_change_of_cloud_map_reaches_its_listeners() -> None:
    registry = cloud_map()
    changes: list[int] = []
    registry.subscribe(lambda: changes.append(1))
    registry.register_instance(NS, "api", "t9", "127.0.1.9", 7100)
    registry.update_instance_custom_health_status(NS, "api", "t9", "UNHEALTHY")
    registry.update_instance_custom_health_status(NS, "api", "t9", "UNHEALTHY")  # no change
    registry.deregister_instance(NS, "api", "t9")
    registry.put_record("x.elb.fargo.internal", "127.0.0.8", ttl=60)
    registry.delete_record("x.elb.fargo.internal")
    assert len(changes) == 5


# -- the processes ----------------------------------------------------------------------


async def test_target_lookups_follow_each_publish_and_outlive_the_writer(state_dir: Path) -> None:
    lookups = TargetLookupServer(state_dir, "caddy")
    lookups.publish({"a.targets.fargo.": ["127.0.1.7"]})  # before start: its first snapshot
    await lookups.start()
    try:
        address, pid = lookups.address, lookups.pid
        assert pid is not None
        assert a_records(await lookup(address, "a.targets.fargo.")) == ["127.0.1.7"]
        lookups.publish({"a.targets.fargo.": ["127.0.1.7", "127.0.1.8"]})
        assert a_records(await lookup(address, "a.targets.fargo.")) == ["127.0.1.7", "127.0.1.8"]
        assert (await lookup(address, "b.targets.fargo.")).rcode() == dns.rcode.NXDOMAIN
        process = psutil.Process(pid)
        assert os.getsid(pid) == pid  # a session of its own: a Ctrl-C does not reach it
        assert process.ppid() == os.getpid()
        records = {r.path.stem: r.pid for r in state.recorded_processes(state_dir)}
        assert records == {"caddy-targets": pid}
        # The control plane's copy of the socket closed, the snapshot file broken: the
        # process still answers with the last good targets.
        lookups._socket.close()  # type: ignore[union-attr]
        (state_dir / "caddy" / "targets.json").write_text("{")
        assert a_records(await lookup(address, "a.targets.fargo.")) == ["127.0.1.7", "127.0.1.8"]
    finally:
        await lookups.stop()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert state.recorded_processes(state_dir) == []


async def test_discovery_answers_on_udp_and_tcp_while_the_control_plane_is_stopped(
    state_dir: Path,
) -> None:
    registry = cloud_map()
    server = DiscoveryDnsServer(registry, state_dir)
    await server.start()
    try:
        host, port = server.address
        query = dns.message.make_query(f"api.{NS}", "A")
        udp = await dns.asyncquery.udp(query, host, TIMEOUT, port)
        assert a_records(udp) == ["127.0.1.1", "127.0.1.2"]
        registry.update_instance_custom_health_status(NS, "api", "t2", "HEALTHY")
        tcp = await dns.asyncquery.tcp(query, host, TIMEOUT, port)
        assert a_records(tcp) == ["127.0.1.1", "127.0.1.2", "127.0.1.3"]
        # This process stands for the control plane: while it does not run its event loop
        # (here: blocked in a plain socket call), the DNS process answers alone.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.settimeout(TIMEOUT)
            client.sendto(query.to_wire(), (host, port))
            answer = dns.message.from_wire(client.recv(4096))
        assert a_records(answer) == ["127.0.1.1", "127.0.1.2", "127.0.1.3"]
    finally:
        await server.stop()
    with pytest.raises(RuntimeError, match="not started"):
        server.address  # noqa: B018


async def test_a_process_that_cannot_start_is_reported_with_its_log(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.executable", "/bin/false")
    lookups = TargetLookupServer(state_dir, "caddy")
    with pytest.raises(DnsProcessError, match="did not start"):
        await lookups.start()
    assert state.recorded_processes(state_dir) == []
    with pytest.raises(Exception, match="not started"):
        lookups.address  # noqa: B018


async def test_sigterm_stops_a_process_and_sweep_stops_a_left_one(state_dir: Path) -> None:
    lookups = TargetLookupServer(state_dir, "caddy")
    await lookups.start()
    pid = lookups.pid
    assert pid is not None
    lookups._process._process = None  # type: ignore[attr-defined] # as if its parent died
    swept = state.sweep(state_dir)
    assert swept == [f"target lookups of caddy (pid {pid})"]
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    await lookups.stop()


# -- a new control plane taking the processes over --------------------------------------


async def test_a_lookup_process_holds_its_folder_before_any_query(state_dir: Path) -> None:
    """So a VPC take-over that sets the folder aside before the process was ever asked
    leaves it reading its own run's snapshots (not the new run's, at the old path)."""
    lookups = TargetLookupServer(state_dir, "caddy-public")
    await lookups.start()
    try:
        assert lookups.pid is not None
        fds = Path(f"/proc/{lookups.pid}/fd")
        held = {os.readlink(fd) for fd in fds.iterdir()}
        assert str(state_dir / "caddy-public") in held
    finally:
        await lookups.stop()


async def test_a_new_control_plane_adopts_the_target_lookups_and_the_listeners(
    state_dir: Path,
) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    first = TargetLookupServer(state_dir, "caddy")
    first.publish({"a.targets.fargo.": ["127.0.1.1"]})
    await first.start(listeners={"public-443": listener})
    pid, address = first.pid, first.address
    listener.close()  # the killed control plane's copy is gone; Caddy's and the process's stay
    second = TargetLookupServer(state_dir, "caddy")
    try:
        assert second.adopt()
        assert (second.pid, second.address) == (pid, address)
        handed = handed_over_listeners(state_dir / "caddy")
        assert list(handed) == ["public-443"]
        port = handed["public-443"].getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass  # the same listening socket: still accepting
        second.publish({"a.targets.fargo.": ["127.0.1.9"]})  # held: the old run's targets
        assert a_records(await lookup(address, "a.targets.fargo.")) == ["127.0.1.1"]
        second.release()
        assert a_records(await lookup(address, "a.targets.fargo.")) == ["127.0.1.9"]
        for sock in handed.values():
            sock.close()
    finally:
        await second.stop()
        await first.stop()
    assert state.recorded_processes(state_dir) == []


async def test_a_new_control_plane_adopts_discovery_and_holds_its_records(
    state_dir: Path,
) -> None:
    first = DiscoveryDnsServer(cloud_map(), state_dir)
    await first.start()
    host, port = first.address
    newer = CloudMap()
    newer.create_private_dns_namespace(NS)
    second = DiscoveryDnsServer(newer, state_dir, host, port)
    elsewhere = DiscoveryDnsServer(CloudMap(), state_dir, host, port + 1)
    try:
        assert not elsewhere.adopt()  # another address: not the same server
        assert second.adopt() and second.validate() == []  # its port is the old process's
        await second.start()
        assert second.address == (host, port) and second.pid == first.pid
        newer.create_service(NS, "api", ttl=15)
        newer.register_instance(NS, "api", "n1", "127.0.9.1", 7100)
        query = dns.message.make_query(f"api.{NS}", "A")
        held = await dns.asyncquery.udp(query, host, TIMEOUT, port)
        assert a_records(held) == ["127.0.1.1", "127.0.1.2"]  # the old run's, until release
        second.release()
        released = await dns.asyncquery.udp(query, host, TIMEOUT, port)
        assert a_records(released) == ["127.0.9.1"]
    finally:
        await second.stop()
        await first.stop()


# -- kept alive: a process that ends is started again ------------------------------------


@pytest.fixture
async def lookups(state_dir: Path) -> AsyncIterator[TargetLookupServer]:
    """A started lookup server with one target group's record; stopped after, leaving no
    process record."""
    server = TargetLookupServer(state_dir, "caddy")
    server.publish({"a.targets.fargo.": ["127.0.1.7"]})
    await server.start()
    yield server
    await server.stop()
    assert state.recorded_processes(state_dir) == []


@pytest.mark.parametrize(
    ("sig", "ended"),
    [
        (signal.SIGKILL, "was killed by signal 9"),
        (signal.SIGSTOP, f"did not answer for {HUNG_AFTER:g} s; killed"),  # found by queries
    ],
    ids=["killed", "stopped"],
)
async def test_a_lookup_process_killed_or_stopped_is_started_again_on_the_same_address(
    state_dir: Path, lookups: TargetLookupServer, sig: signal.Signals, ended: str
) -> None:
    address, pid = lookups.address, lookups.pid
    assert pid is not None and lookups.problem is None
    os.kill(pid, sig)
    problem = await until(lambda: lookups.problem, HUNG_AFTER + 3, "the problem said")
    assert problem == f"target lookups of caddy: pid {pid} {ended}"
    await until(lambda: lookups.pid not in (None, pid) and not lookups.problem, 10, "again")
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert lookups.address == address  # Caddy's config names it: it must not move
    assert a_records(await lookup(address, "a.targets.fargo.")) == ["127.0.1.7"]
    assert (lookups.restarts, lookups.problem) == (1, None)
    records = {r.path.stem: r.pid for r in state.recorded_processes(state_dir)}
    assert records == {"caddy-targets": lookups.pid}


async def test_once_the_twin_stops_a_lookup_process_that_ends_stays_down(
    lookups: TargetLookupServer,
) -> None:
    # `fargo down` may sweep the processes while the control plane is still stopping: one
    # started again then would outlive the twin, its record removed by the sweep.
    pid = lookups.pid
    assert pid is not None
    lookups.stop_restarting()
    os.kill(pid, signal.SIGKILL)
    await until(lambda: lookups.problem, 10, "the problem said")
    await asyncio.sleep(0.5)
    assert lookups.pid is None and lookups.restarts == 0


async def test_a_lookup_process_that_cannot_start_again_is_a_problem_until_it_can(
    lookups: TargetLookupServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    address, pid = lookups.address, lookups.pid
    assert pid is not None
    monkeypatch.setattr("sys.executable", "/bin/false")
    os.kill(pid, signal.SIGKILL)
    await until(lambda: lookups.problem is not None, 10, "the problem")
    assert lookups.problem == f"target lookups of caddy: pid {pid} was killed by signal 9"
    await asyncio.sleep(0.5)  # attempts fail (and are retried) meanwhile
    assert lookups.pid is None and lookups.problem is not None
    monkeypatch.undo()
    await until(lambda: lookups.problem is None, 15, "the process started again")
    assert a_records(await lookup(address, "a.targets.fargo.")) == ["127.0.1.7"]


async def test_an_adopted_lookup_process_that_dies_is_started_again_at_its_address(
    state_dir: Path,
) -> None:
    first = TargetLookupServer(state_dir, "caddy")
    first.publish({"a.targets.fargo.": ["127.0.1.1"]})
    await first.start()
    pid, address = first.pid, first.address
    assert pid is not None
    await cancel_and_wait(first._process._keeper)  # the control plane is killed: nobody keeps it
    first._socket.close()  # type: ignore[union-attr]  # nor holds its socket
    second = TargetLookupServer(state_dir, "caddy")
    try:
        assert second.adopt()
        await second.start()
        os.kill(pid, signal.SIGKILL)
        await until(lambda: second.pid not in (None, pid) and not second.problem, 10, "restarted")
        assert second.address == address
        second.release()
        second.publish({"a.targets.fargo.": ["127.0.1.9"]})
        assert a_records(await lookup(address, "a.targets.fargo.")) == ["127.0.1.9"]
    finally:
        await second.stop()
        first._process._process = None  # type: ignore[attr-defined]  # killed above
    assert state.recorded_processes(state_dir) == []


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP], ids=["killed", "stopped"])
async def test_a_discovery_process_killed_or_stopped_is_started_again_on_its_sockets(
    state_dir: Path, sig: signal.Signals
) -> None:
    server = DiscoveryDnsServer(cloud_map(), state_dir)
    await server.start()
    try:
        (host, port), pid = server.address, server.pid
        assert pid is not None
        os.kill(pid, sig)  # stopped: alive, answering nothing (found by its queries)
        await until(
            lambda: server.pid not in (None, pid) and not server.problem, HUNG_AFTER + 5, "again"
        )
        assert server.address == (host, port)
        query = dns.message.make_query(f"api.{NS}", "A")
        for ask in (dns.asyncquery.udp, dns.asyncquery.tcp):
            assert a_records(await ask(query, host, TIMEOUT, port)) == ["127.0.1.1", "127.0.1.2"]
    finally:
        await server.stop()
    assert state.recorded_processes(state_dir) == []


async def test_a_lookup_process_starts_again_without_a_listener_the_spec_dropped(
    state_dir: Path,
) -> None:
    kept, dropped = socket.create_server(("127.0.0.1", 0)), socket.create_server(("127.0.0.1", 0))
    lookups = TargetLookupServer(state_dir, "caddy")
    await lookups.start(listeners={"public-443": kept, "public-8443": dropped})
    try:
        pid = lookups.pid
        assert pid is not None
        dropped.close()  # the spec dropped that listener: its socket is closed
        lookups.keep_listeners({"public-443": kept})
        os.kill(pid, signal.SIGKILL)
        await until(lambda: lookups.pid not in (None, pid) and not lookups.problem, 10, "again")
        handed = handed_over_listeners(state_dir / "caddy")
        assert list(handed) == ["public-443"]
        for sock in handed.values():
            sock.close()
    finally:
        await lookups.stop()
        kept.close()
