"""VPC mode end to end: the seven points (point 1 with the registry's view of the pull),
two twins side by side, an overlapping one refused, a service binding 0.0.0.0 with two
tasks, nothing left behind after `fargo down` (also after SIGKILL of the control plane),
and the same twin run by an unprivileged user inside a user namespace.

Traffic goes only to the host's loopback (published listeners) or, through the control
plane, inside the namespaces the twin made (DESIGN.md §7).
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import ssl
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from tests.e2e.conftest import ROOT, Twin, fargo, make_twin
from tests.e2e.nobody import NOBODY_UID, IdFiles, as_nobody
from tests.waiting import wait_until

from fargo.local.ec2.vpc_mode import vpc_mode_unavailable
from fargo.local.ecs.task import HealthStatus

pytestmark = pytest.mark.slow

SIDE = Path(__file__).with_name("vpc_side.yaml")


def host_network() -> dict[str, str]:
    """What the host's own network namespace holds: the twin must add nothing to it."""
    commands = {
        "links": ["ip", "-o", "link"],
        "addresses": ["ip", "-o", "addr"],
        "routes": ["ip", "route", "show", "table", "all"],
        "rules": ["ip", "rule"],
        "nftables": ["nft", "list", "tables"],
    }
    return {
        name: subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        for name, argv in commands.items()
    }


def vpc_twin(spec: Path, state_dir: Path) -> Twin:
    twin = make_twin(spec, state_dir)
    twin.network = "vpc"
    return twin


def up(twin: Twin) -> None:
    fargo("up", "--detach", *twin.up_args())


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    if (reason := vpc_mode_unavailable()) is not None:
        pytest.fail(f"VPC mode must run here (make test installs nftables): {reason}")
    twin = vpc_twin(ROOT / "fargo.yaml", tmp_path_factory.mktemp("vpc") / "state")
    up(twin)
    try:
        yield twin
    finally:
        fargo("down", "--state-dir", str(twin.state_dir), check=False)


def test_every_point_passes_and_point_1_shows_the_nat(reference: Twin) -> None:
    printed = fargo("demo", "--json", "--state-dir", str(reference.state_dir)).stdout
    points = {p["number"]: p for p in json.loads(printed)}
    assert {n: p["status"] for n, p in points.items()} == {n: "pass" for n in range(1, 8)}
    evidence = points[1]["evidence"]
    (elastic_ip,) = evidence["nat_gateways"].values()
    assert elastic_ip.startswith("198.51.100.")
    assert len(evidence["tasks"]) == 6
    for task in evidence["tasks"]:
        assert task["registry_saw"] == elastic_ip  # the NAT's address, never the task's own
        assert task["private_ip"].startswith("10.0.1")
        assert task["from_internet"] != "connected"
    assert any("NAT gateway" in hop for hop in evidence["route"])
    assert points[5]["evidence"]["dns_server"] == "10.0.0.2:53"


def test_tasks_listen_on_their_real_ports_at_addresses_of_their_subnets(reference: Twin) -> None:
    status = reference.status()
    assert status.network_mode == "vpc"
    addresses = {t.address for s in status.services for t in s.tasks}
    assert any(a is not None and a.endswith(":80") for a in addresses)  # not moved to 8080
    for address in addresses:
        assert address is not None
        host = address.rsplit(":", 1)[0]
        assert host.startswith(("10.0.10.", "10.0.11.")), address
    assert status.endpoints.load_balancers["internal"] == ["http://10.0.10.4:8090"]


def test_tasks_reach_the_xray_daemon_on_the_routers_metadata_address(reference: Twin) -> None:
    trace_id = "1-6b110e49-0000000000000000000076cc"
    verify = ssl.create_default_context(cafile=reference.ca)
    with httpx.Client(verify=verify, timeout=10) as client:
        answer = client.get(
            reference.url("public", "https") + "/api/private-with-alb",
            headers={"X-Amzn-Trace-Id": f"Root={trace_id};Sampled=1"},
        )
    assert answer.status_code == 200

    def both_segments() -> list[str]:
        shown = fargo(
            "traces", trace_id, "--json", "--state-dir", str(reference.state_dir), check=False
        )
        if shown.returncode != 0:
            return []
        names = [s["name"] for s in json.loads(shown.stdout)["spans"] if s["kind"] == "service"]
        return names if len(names) == 2 else []

    names = wait_until(both_segments, timeout=10, what="both services' segments, over UDP")
    assert sorted(names) == ["backend-private-with-alb", "backend-public"]
    printed = fargo(
        "exec", "--state-dir", str(reference.state_dir), "backend-public", "--", "env"
    ).stdout
    assert "AWS_XRAY_DAEMON_ADDRESS=169.254.170.2:2000" in printed.splitlines()


def python_in(twin: Twin, service: str, code: str, *args: str, task: str | None = None) -> str:
    """What ``python -c code args`` prints in a task of ``service`` (``task``: that one)."""
    chosen = ["--task", task] if task else []
    argv = ["exec", "--state-dir", str(twin.state_dir), *chosen, service, "--"]
    return fargo(*argv, "python", "-c", code, *args).stdout.strip()


# Read from inside the task, as a metrics agent in it would.
TASK_STATS = (
    "import json, os, urllib.request\n"
    "uri = os.environ['ECS_CONTAINER_METADATA_URI_V4'] + '/task/stats'\n"
    "print(urllib.request.urlopen(uri, timeout=10).read().decode())\n"
)


def test_a_tasks_stats_count_its_enis_traffic(reference: Twin) -> None:
    (stats,) = json.loads(python_in(reference, "backend-public", TASK_STATS)).values()
    assert list(stats["networks"]) == ["eth0"]  # the task's ENI in its namespace, no lo
    eth0 = stats["networks"]["eth0"]
    # its image pull, health checks and answers crossed it both ways
    # (just after start: about 22 kB and 17 packets in, 2 kB and 20 packets out)
    assert eth0["rx_bytes"] > 5_000 and eth0["tx_bytes"] > 500, eth0
    assert eth0["rx_packets"] > 5 and eth0["tx_packets"] > 5, eth0


# Another task's URI, read where a task could read it (this machine's process table).
OTHER_TASKS_METADATA = (
    "import sys, urllib.error, urllib.request\n"
    "try:\n"
    "    print(urllib.request.urlopen(sys.argv[1] + '/task', timeout=10).status)\n"
    "except urllib.error.HTTPError as error:\n"
    "    print(error.code)\n"
)


def test_a_task_reads_its_own_metadata_but_not_another_tasks_with_its_uri(
    reference: Twin,
) -> None:
    private = reference.service("backend-private").tasks[0]
    assert private.pid is not None
    uri = psutil.Process(private.pid).environ()["ECS_CONTAINER_METADATA_URI_V4"]
    own = python_in(reference, "backend-private", OTHER_TASKS_METADATA, uri, task=private.id)
    other = python_in(reference, "backend-public", OTHER_TASKS_METADATA, uri)
    assert (own, other) == ("200", "404")


# What a task's process table holds, and whose environments it can read, from inside it.
PROCESS_TABLE = (
    "import json, os\n"
    "found = {}\n"
    "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
    "    try:\n"
    "        with open(f'/proc/{pid}/environ', 'rb') as env:\n"
    "            found[pid] = b'ECS_CONTAINER_METADATA_URI_V4' in env.read()\n"
    "    except OSError:\n"
    "        found[pid] = None\n"
    "print(json.dumps(found))\n"
)


def test_a_task_sees_only_its_own_processes_and_no_other_tasks_environment(
    reference: Twin,
) -> None:
    private = reference.service("backend-private").tasks[0]
    table = json.loads(python_in(reference, "backend-private", PROCESS_TABLE, task=private.id))
    # its command as PID 1 (as in a container) and the exec'd python (with the task's
    # environment): nothing of the other tasks, the twin or this machine, whose
    # environments it could otherwise read
    assert table["1"] is True and len(table) == 2, table
    assert private.pid is not None  # status shows its command's process, not the relay's
    command_line = psutil.Process(private.pid).cmdline()
    assert "rootfs.py" not in " ".join(command_line), command_line


def test_events_tell_what_the_tasks_did(reference: Twin) -> None:
    printed = fargo(
        "events", "--state-dir", str(reference.state_dir), "--service", "backend-private"
    ).stdout
    started = [line for line in printed.splitlines() if "started task" in line]
    assert len(started) >= 2 and all(" 10.0.1" in line for line in started)


def test_a_task_killed_under_load_behind_the_internal_alb_fails_no_request(
    reference: Twin,
) -> None:
    """A dead task's ENI goes only once no load balancer routes to it: an address with
    no ENI drops packets, so a request sent there would hang instead of failing over."""
    victim = reference.service("backend-private-with-alb").tasks[0]
    assert victim.pid is not None
    statuses: collections.Counter[int | str] = collections.Counter()
    done = threading.Event()
    context = ssl.create_default_context(cafile=reference.ca)

    def load() -> None:
        with httpx.Client(verify=context, timeout=10) as http:
            while not done.is_set():
                try:
                    url = reference.url("public", "https") + "/api/private-with-alb"
                    statuses[http.get(url).status_code] += 1
                except httpx.HTTPError as err:
                    statuses[type(err).__name__] += 1

    workers = [threading.Thread(target=load) for _ in range(8)]
    for worker in workers:
        worker.start()
    try:
        wait_until(lambda: statuses[200] > 100, timeout=20, what="load running")
        os.kill(victim.pid, signal.SIGKILL)

        def replaced() -> bool:
            service = reference.service("backend-private-with-alb")
            return victim.id not in {t.id for t in service.tasks} and service.healthy == 2

        wait_until(replaced, timeout=30, what="a replacement task")
    finally:
        done.set()
        for worker in workers:
            worker.join()
    assert set(statuses) == {200}, statuses


@pytest.mark.parametrize("network", ["vpc", "loopback"])
def test_a_twin_whose_vpc_overlaps_a_running_one_is_refused_naming_it(
    reference: Twin, tmp_path: Path, network: str
) -> None:
    again = make_twin(ROOT / "fargo.yaml", tmp_path / "state")
    again.network = network
    result = fargo("up", "--detach", *again.up_args(), check=False)
    assert result.returncode != 0
    said = result.stdout + result.stderr
    assert "overlaps the VPC 10.0.0.0/16 of twin 'fargo-demo'" in said
    assert str(reference.state_dir) in said
    assert again.processes() == []


def test_a_second_twin_runs_beside_and_binds_any_address_with_two_tasks(
    reference: Twin, tmp_path: Path
) -> None:
    side = vpc_twin(SIDE, tmp_path / "state")
    before = host_network()
    up(side)
    try:
        for twin in (reference, side):  # both serve at once, each on its own host ports
            trusted = ssl.create_default_context(cafile=twin.ca)
            url = twin.url("public", "https") + "/api/private"
            with urllib.request.urlopen(url, context=trusted) as answer:
                assert answer.read().startswith(b"TaskId: ")
        any_port = side.publish[8000]
        answered = set()
        for _ in range(20):
            with urllib.request.urlopen(f"http://127.0.0.1:{any_port}/") as answer:
                assert b"anyaddr" in answer.read()
        tasks = side.service("anyaddr").tasks
        assert {t.health for t in tasks} == {HealthStatus.HEALTHY}  # its command check, inside
        assert len(tasks) == 2 and {t.address.rsplit(":", 1)[1] for t in tasks if t.address} == {
            "8000"
        }
        for task in tasks:  # both got requests: each bound 0.0.0.0:8000 in its own namespace
            log = Path(task.log).read_text()
            if '"GET / HTTP/1.1" 200' in log:
                answered.add(task.id)
        assert len(answered) == 2
    finally:
        fargo("down", "--state-dir", str(side.state_dir))
    assert side.processes() == []
    assert host_network() == before


def test_after_sigkill_of_the_control_plane_down_leaves_nothing(
    reference: Twin, tmp_path: Path
) -> None:
    side = vpc_twin(SIDE, tmp_path / "state")
    before = host_network()
    up(side)
    control = psutil.Process(side.status().pid)
    control.send_signal(signal.SIGKILL)
    control.wait(10)
    assert side.processes() != []  # tasks and Caddy outlive it…
    fargo("down", "--state-dir", str(side.state_dir))
    wait_until(lambda: side.processes() == [], timeout=10, what="every process to end")
    assert host_network() == before  # …and with them went every namespace and table


def test_rootless_vpc_mode_as_an_unprivileged_user(
    nobody_venv: Path, nobody_folder: Path, nobody_ids: IdFiles
) -> None:
    folder = nobody_folder
    tree = folder / "tree"  # the spec and its build contexts, where nobody may read them
    shutil.copytree(
        ROOT / "services", tree / "services", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(SIDE.parent / "anyaddr", tree / "tests" / "e2e" / "anyaddr")
    # backend-public's image says USER 10001: its container health check, a command run
    # as the task's user in the task's namespaces, says so from inside
    service = "  backend-public:\n    image: backend-public\n"
    check = """    health_check: {command: [CMD-SHELL, 'test "$(id -u)" = 10001']}\n"""
    text = SIDE.read_text()
    assert text.count(service) == 1
    (tree / "tests" / "e2e" / SIDE.name).write_text(text.replace(service, service + check))
    subprocess.run(["chown", "-R", "nobody", str(tree)], check=True)
    side = tree / "tests" / "e2e" / SIDE.name
    fargo_bin = nobody_venv / "bin" / "fargo"
    twin = vpc_twin(side, folder / "state")
    probe = "from fargo.local.ec2.vpc_mode import vpc_mode_unavailable as u; print(u() or '')"
    if reason := as_nobody(str(nobody_venv / "bin" / "python"), "-c", probe).stdout.strip():
        pytest.skip(f"VPC mode is not possible for an unprivileged user here: {reason}")
    started = as_nobody(str(fargo_bin), "up", "--detach", *twin.up_args(), ids=nobody_ids)
    try:
        assert started.returncode == 0, started.stderr + started.stdout
        demo = as_nobody(str(fargo_bin), "demo", "--json", "-f", str(side), "--state-dir",
                         str(twin.state_dir))  # fmt: skip
        points = {p["number"]: p["status"] for p in json.loads(demo.stdout)}
        assert points == {n: "pass" for n in range(1, 8)}, demo.stdout
        owners = {p.uids().real for p in twin.processes()}
        assert 0 not in owners  # no part of it runs as root

        # The reference services' images say USER 10001: with subordinate ids their tasks
        # run as it (uid 10001 of the twin's user namespace: the range's start + 10000);
        # without, as nobody on the host, like the rest (anyaddr's image has no USER), but
        # as 10001 in a user namespace of their own that maps nobody to it.
        answered = as_nobody(str(fargo_bin), "status", "--json", "--state-dir", str(twin.state_dir))
        services = {s["name"]: s for s in json.loads(answered.stdout)["services"]}

        def task_uids(service: str) -> set[int]:
            pids = [t["pid"] for t in services[service]["tasks"] if t["pid"] is not None]
            return {psutil.Process(pid).uids().real for pid in pids}

        ids = nobody_ids.range
        user = NOBODY_UID if ids is None else ids.start + 10001 - 1
        # `fargo exec` reaches such a task too (its environ is its host uid's alone), and
        # runs as the twin's root, as ECS Exec runs as the container's root
        ran = as_nobody(str(fargo_bin), "exec", "--state-dir", str(twin.state_dir),
                        "frontend", "--", "sh", "-c", 'echo "$(id -u) $PORT"')  # fmt: skip
        assert (ran.returncode, ran.stdout.strip()) == (0, "0 80"), ran
        # and hands the command no descriptor of its own (a namespace's, say)
        listed = "import os; print(sorted(os.listdir('/proc/self/fd')))"
        ran = as_nobody(str(fargo_bin), "exec", "--state-dir", str(twin.state_dir),
                        "frontend", "--", "python3", "-c", listed)  # fmt: skip
        assert ran.stdout.strip() == "['0', '1', '2', '3']", ran  # 3: listdir's own
        for service in ("frontend", "backend-public", "backend-private"):
            assert task_uids(service) == {user}, service
            for task in services[service]["tasks"]:
                mapped = Path(f"/proc/{task['pid']}/uid_map").read_text().split()
                assert ids is not None or mapped == ["10001", str(NOBODY_UID), "1"], mapped
        assert task_uids("anyaddr") == {NOBODY_UID}
        assert owners == {NOBODY_UID, user}
    finally:
        stopped = as_nobody(str(fargo_bin), "down", "--state-dir", str(twin.state_dir))
    assert stopped.returncode == 0, stopped.stderr
    wait_until(lambda: twin.processes() == [], timeout=10, what="every process to end")


def test_without_a_nat_gateway_a_private_task_cannot_pull_its_image(tmp_path: Path) -> None:
    twin = vpc_twin(SIDE.with_name("vpc_no_nat.yaml"), tmp_path / "state")
    result = fargo("up", "--detach", *twin.up_args(), check=False)
    assert result.returncode != 0  # `up --detach` gives up with the reason, as ECS would
    assert "failed to resolve/connect to registry 198.51.100.10:5000" in result.stderr
    events = fargo("events", "--state-dir", str(twin.state_dir)).stdout
    assert "CannotPullContainerError" in events
    assert twin.processes() == []


def test_with_vpc_endpoints_private_tasks_pull_without_a_nat_gateway_and_serve(
    tmp_path: Path,
) -> None:
    """No NAT gateway, an ecr.dkr endpoint: each pull arrives at the endpoint's ENI in the
    task's zone, from the task's own address (no NAT in between), and the system serves."""
    twin = vpc_twin(SIDE.with_name("vpc_endpoints.yaml"), tmp_path / "state")
    up(twin)
    try:
        endpoints = {"10.3.10.254:5000", "10.3.11.254:5000"}
        log = twin.state_dir / "logs" / "registry-pulls.jsonl"
        pulls = [json.loads(line) for line in log.read_text().splitlines()]
        manifests = [p for p in pulls if "/manifests/" in p["path"] and p["method"] == "GET"]
        tasks = [t for s in twin.status().services for t in s.tasks]
        assert len(tasks) == 6 and len(manifests) >= 6
        for pull in manifests:
            assert pull["status"] == 200
            assert pull["via"] in endpoints, pull
            assert pull["source"].startswith(("10.3.10.", "10.3.11.")), pull
            zone = pull["source"].split(".")[2]  # the task's own zone's endpoint
            assert pull["via"] == f"10.3.{zone}.254:5000"
        demo = fargo("demo", "--json", "--state-dir", str(twin.state_dir), check=False)
        evidence = json.loads(demo.stdout)  # point 1 fails: no NAT gateway to show
        point_1 = next(p for p in evidence if p["number"] == 1)["evidence"]
        assert point_1["nat_gateways"] == {}
        assert any("VPC endpoint ecr.dkr" in hop for hop in point_1["route"])
        context = ssl.create_default_context(cafile=twin.ca)
        with httpx.Client(verify=context, timeout=10) as http:
            base = twin.url("public", "https")
            assert http.get(base + "/api/public").text == "Hello world"
            assert http.get(base + "/api/private").text.startswith("TaskId: ")
            assert http.get(base + "/api/private-with-alb").text.startswith("TaskId: ")
    finally:
        fargo("down", "--state-dir", str(twin.state_dir), check=False)
    assert twin.processes() == []
