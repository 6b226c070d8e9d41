"""A Dockerfile's USER in VPC mode, the twin running as root: each task runs as that user
(and serves: its environment and interpreter are readable by it, even below the
owner-only state folder and /root), or as nobody when this machine has no such user."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from tests.e2e.conftest import Twin, fargo, make_twin

from fargo.local.ec2.vpc_mode import vpc_mode_unavailable
from fargo.local.images.user import can_switch_to

pytestmark = pytest.mark.slow  # a twin in VPC mode

HERE = Path(__file__).parent


@pytest.fixture
def twin(tmp_path: Path) -> Iterator[tuple[Twin, str]]:
    if not can_switch_to(10001, 10001):
        pytest.skip("switching a task's user needs the twin to run as root")
    if (reason := vpc_mode_unavailable()) is not None:
        pytest.skip(f"VPC mode is not available here: {reason}")
    echo = tmp_path / "echo"
    shutil.copytree(HERE / "echo", echo)
    dockerfile = echo / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("USER 10001", "USER fargo-nosuchuser"))
    spec = tmp_path / "vpc_user.yaml"
    services = str(HERE.parents[1] / "services")
    spec.write_text((HERE / "vpc_user.yaml").read_text().replace("SERVICES", services))
    twin = make_twin(spec, tmp_path / "state")
    twin.network = "vpc"
    started = fargo("up", "--detach", *twin.up_args())
    try:
        yield twin, started.stdout + started.stderr
    finally:
        fargo("down", "--state-dir", str(twin.state_dir), check=False)


def task_process(twin: Twin, service: str) -> psutil.Process:
    """The task's program: the last of its lead process's line of descendants."""
    (task,) = twin.service(service).tasks
    assert task.pid is not None
    lead = psutil.Process(task.pid)
    return ([lead, *lead.children(recursive=True)])[-1]


def nonblocking_copies_of_stdout(pid: int) -> list[str]:
    """The process's descriptors of its stdout's pipe, other than 1 and 2, that are
    non-blocking (``O_NONBLOCK`` in ``/proc/PID/fdinfo``)."""
    fds = Path(f"/proc/{pid}/fd")
    stdout = os.readlink(fds / "1")
    found = []
    for fd in os.listdir(fds):
        if fd in ("0", "1", "2") or os.readlink(fds / fd) != stdout:
            continue
        flags = Path(f"/proc/{pid}/fdinfo/{fd}").read_text().split("flags:")[1].split()[0]
        if int(flags, 8) & os.O_NONBLOCK:
            found.append(fd)
    return found


HIDDEN = (
    "import os,sys\n"
    "def listed(path):\n"
    "    try:\n"
    "        return os.listdir(path)\n"
    "    except PermissionError:\n"
    "        return 'hidden'\n"
    "cache = os.path.dirname(sys.prefix)\n"
    "print(listed(sys.argv[1]), listed(cache) == [os.path.basename(sys.prefix)],"
    " os.path.isdir(os.path.join(sys.prefix, 'lib')), os.path.isdir('/app'))"
)


def run_as_task_user(twin: Twin, service: str, code: str) -> subprocess.CompletedProcess[str]:
    """``python -c code STATE_DIR`` in ``service``'s task as uid 10001 (`fargo exec`)."""
    user = ["setpriv", "--reuid=10001", "--regid=10001", "--clear-groups"]
    state_dir = str(twin.state_dir)
    argv = ["exec", "--state-dir", state_dir, service, "--", *user, "python", "-c", code]
    return fargo(*argv, state_dir, check=False)


def test_tasks_run_as_the_dockerfile_user_or_nobody(twin: tuple[Twin, str]) -> None:
    running, said = twin
    api = task_process(running, "api")
    assert (api.uids().real, api.gids().real) == (10001, 10001), api.cmdline()
    # its stdout pipe is its own: the access log opened it again, non-blocking
    assert nonblocking_copies_of_stdout(api.pid), "the access log writes a blocking stdout"
    echo = task_process(running, "echo")
    assert echo.uids().real == 65534, echo.cmdline()  # and it binds port 80
    assert (
        "Dockerfile:6: USER: fargo-nosuchuser: tasks run as nobody (uid 65534, gid 65534), "
        'as no user "fargo-nosuchuser" on this machine'
    ) in said
    # a task of another user sees its environment (in this machine's cache, the other
    # environments hidden) and not the state folder
    listed = run_as_task_user(running, "api", HIDDEN)
    assert listed.stdout.strip() == "hidden True True True", listed.stdout + listed.stderr
