"""A Dockerfile's USER in loopback mode, the twin running as root: each task runs as that
user in a mount namespace of its own (its image's paths, its environment readable, the
rest of the state folder hidden), binds a port below 1024 with CAP_NET_BIND_SERVICE alone,
and serves through the load balancer; `fargo exec` enters its root."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from tests.e2e.conftest import ROOT, Twin, fargo, make_twin
from tests.e2e.nobody import NOBODY_UID, IdFiles, as_nobody
from tests.e2e.test_vpc_user import (
    HIDDEN,
    nonblocking_copies_of_stdout,
    run_as_task_user,
    task_process,
)
from tests.waiting import wait_until

from fargo.local.images.user import can_switch_to

pytestmark = pytest.mark.slow  # a twin

HERE = Path(__file__).parent
CAP_NET_BIND_SERVICE = 10


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Twin, str]]:
    if not can_switch_to(10001, 10001):
        pytest.skip("switching a task's user needs the twin to run as root")
    folder = tmp_path_factory.mktemp("loopback-user")
    echo = folder / "echo"
    shutil.copytree(HERE / "echo", echo)
    dockerfile = echo / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("USER 10001", "USER fargo-nosuchuser"))
    spec = folder / "loopback_user.yaml"
    services = str(HERE.parents[1] / "services")
    text = (HERE / "vpc_user.yaml").read_text().replace("SERVICES", services)
    spec.write_text(text.replace("10.175.", "10.176.").replace("vpc-user", "loopback-user"))
    twin = make_twin(spec, folder / "state")
    started = fargo("up", "--detach", *twin.up_args())
    try:
        yield twin, started.stdout + started.stderr
    finally:
        fargo("down", "--state-dir", str(twin.state_dir), check=False)


def capabilities(pid: int) -> dict[str, int]:
    fields = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {
        name: int(value, 16)
        for name, _, value in (line.partition(":\t") for line in fields)
        if name.startswith("Cap")
    }


def test_tasks_run_as_the_dockerfile_user_or_nobody_in_a_root_of_their_own(
    twin: tuple[Twin, str],
) -> None:
    running, said = twin
    api = task_process(running, "api")
    assert (api.uids().real, api.gids().real) == (10001, 10001), api.cmdline()
    assert os.readlink(f"/proc/{api.pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
    assert os.readlink(f"/proc/{api.pid}/ns/net") == os.readlink("/proc/self/ns/net")
    assert nonblocking_copies_of_stdout(api.pid), "the access log writes a blocking stdout"
    caps = capabilities(api.pid)  # the one capability kept, nothing else
    assert caps["CapEff"] == caps["CapPrm"] == caps["CapAmb"] == 1 << CAP_NET_BIND_SERVICE
    echo = task_process(running, "echo")
    assert echo.uids().real == 65534, echo.cmdline()
    assert (
        "Dockerfile:6: USER: fargo-nosuchuser: tasks run as nobody (uid 65534, gid 65534), "
        'as no user "fargo-nosuchuser" on this machine'
    ) in said


def test_a_task_of_another_user_binds_port_80_and_serves(twin: tuple[Twin, str]) -> None:
    running, _ = twin
    (task,) = running.service("echo").tasks
    assert task.address is not None and task.address.endswith(":80"), task.address
    assert running.service("echo").healthy == 1
    answer = httpx.get(f"http://{task.address}/", timeout=5)
    assert answer.status_code == 200, answer.text


def test_exec_enters_the_tasks_root_where_the_state_folder_is_hidden(
    twin: tuple[Twin, str],
) -> None:
    running, _ = twin
    listed = run_as_task_user(running, "api", HIDDEN)
    assert listed.stdout.strip() == "hidden True True True", listed.stdout + listed.stderr


def test_not_as_root_a_task_runs_as_its_user_in_a_user_namespace_of_its_own(
    nobody_venv: Path, nobody_folder: Path, nobody_ids: IdFiles
) -> None:
    """Loopback mode has no user namespace of the twin's: not as root, a task of an image
    with a USER gets one of its own and runs as that USER there: one that maps the user's
    subordinate ids (``unshare --map-root-user --map-auto``) when it has them; without,
    one that maps the user running fargo to the USER."""
    tree = nobody_folder / "tree"
    shutil.copytree(
        ROOT / "services", tree / "services", ignore=shutil.ignore_patterns("__pycache__")
    )
    ids = nobody_ids.range
    # The reference services' images say USER 10001: in their namespaces, uid 10001; on
    # the host, the range's start + 10000, or without a range nobody, who ran fargo.
    # backend-public's container health check, a command, says so from inside the task.
    user = ids.start + 10001 - 1 if ids else NOBODY_UID
    check = """health_check: {command: [CMD-SHELL, 'test "$(id -u):$(id -g)" = 10001:10001']}"""
    text = (ROOT / "fargo.yaml").read_text().replace("10.0.", "10.178.")
    service = "  backend-public:\n    image: backend-public\n"
    assert text.count(service) == 1
    spec = tree / "fargo.yaml"
    spec.write_text(text.replace(service, f"{service}    {check}\n"))
    subprocess.run(["chown", "-R", "nobody", str(tree)], check=True)
    fargo_bin = str(nobody_venv / "bin" / "fargo")
    twin = make_twin(spec, nobody_folder / "state")
    state = str(twin.state_dir)
    started = as_nobody(fargo_bin, "up", "--detach", *twin.up_args(), ids=nobody_ids)
    try:
        assert started.returncode == 0, started.stderr + started.stdout
        demo = as_nobody(fargo_bin, "demo", "--json", "-f", str(spec), "--state-dir", state)
        points = {p["number"]: p["status"] for p in json.loads(demo.stdout)}
        # point 1 (the NAT gateway) needs VPC mode
        assert points == {1: "skipped"} | {n: "pass" for n in range(2, 8)}, demo.stdout
        answered = as_nobody(fargo_bin, "status", "--json", "--state-dir", state)
        tasks = [t for s in json.loads(answered.stdout)["services"] for t in s["tasks"]]
        uids = {psutil.Process(t["pid"]).uids().real for t in tasks if t["pid"]}
        assert uids == {user}, uids
        assert 0 not in {p.uids().real for p in twin.processes()}
        # `fargo exec` reaches such a task (its environment is its host uid's alone), as
        # its namespace's root, or (one id) its user, the one id it has
        ran = as_nobody(fargo_bin, "exec", "--state-dir", state, "backend-public", "--",
                        "sh", "-c", 'echo "$(id -u) $PORT"')  # fmt: skip
        expected = f"{0 if ids else 10001} 8080"
        assert (ran.returncode, ran.stdout.strip()) == (0, expected), ran
    finally:
        stopped = as_nobody(fargo_bin, "down", "--state-dir", state)
    assert stopped.returncode == 0, stopped.stderr
    wait_until(lambda: twin.processes() == [], timeout=10, what="every process to end")
