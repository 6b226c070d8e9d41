"""A Dockerfile's USER in loopback mode, the twin running as root: each task runs as that
user in a mount namespace of its own (its image's paths, its environment readable, the
rest of the state folder hidden), binds a port below 1024 with CAP_NET_BIND_SERVICE alone,
and serves through the load balancer; `fargo exec` enters its root."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.e2e.conftest import Twin, fargo, make_twin
from tests.e2e.test_vpc_user import (
    HIDDEN,
    nonblocking_copies_of_stdout,
    run_as_task_user,
    task_process,
)

from fargo.local.images.user import can_switch_users

pytestmark = pytest.mark.slow  # a twin

HERE = Path(__file__).parent
CAP_NET_BIND_SERVICE = 10


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Twin, str]]:
    if not can_switch_users():
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
