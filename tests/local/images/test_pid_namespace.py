"""VPC mode: a task's command runs as PID 1 of a PID namespace of its own, behind its
first process, which passes signals on and ends as the command ends (the real
``rootfs.py``, as root, in a mount namespace of the test's own)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from fargo.local.ecs.task_exec import ExecTarget, exec_argv
from fargo.local.images.launch import ROOTFS_SCRIPT
from fargo.local.pid_namespace import container_pid, kill_namespace

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="VPC mode's tasks start as root")

COMMAND = (
    "import json, os, signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))\n"
    "if os.environ.get('DROP_IDS'):\n"
    "    os.setuid(65534)  # as gosu or su-exec would: clears its parent-death signal\n"
    "print(json.dumps({'pid': os.getpid(), 'proc': sorted(filter(str.isdigit,"
    " os.listdir('/proc')))}), flush=True)\n"
    "time.sleep(60)\n"
)


def start_task(root: Path, *, user: bool, drop_ids: bool = False) -> subprocess.Popen[str]:
    """The task's first process: as VPC mode starts it, in mount and network namespaces of
    its own; its command as root, or as an image's USER (switching ids clears a process's
    parent-death signal: it must be set after), or dropping its ids itself."""
    (root / "app").mkdir(parents=True)
    unshare = shutil.which("unshare")
    assert unshare is not None
    argv = [unshare, "--mount", "--net", "--propagation", "private", sys.executable, "-I"]
    argv += ["-S", str(ROOTFS_SCRIPT), str(root), "/app"]
    if user:
        python = Path(sys.executable).resolve()
        argv += ["--user", "65534:65534:/", "--expose", str(python.parent.parent)]
    argv += ["--", sys.executable, "-c", COMMAND]
    env = {**os.environ, "DROP_IDS": "1"} if drop_ids else dict(os.environ)
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, text=True, start_new_session=True, env=env
    )


def end(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # the command goes with it (PDEATHSIG)
    process.wait()


@pytest.fixture(params=["root", "USER"])
def task(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    process = start_task(tmp_path / "root", user=request.param == "USER")
    yield process
    end(process)


def started(task: subprocess.Popen[str]) -> dict[str, object]:
    assert task.stdout is not None
    return dict(json.loads(task.stdout.readline()))


def test_the_command_is_pid_1_and_sees_only_its_own_processes(
    task: subprocess.Popen[str],
) -> None:
    assert started(task) == {"pid": 1, "proc": ["1"]}
    command = container_pid(task.pid)
    assert command != task.pid and psutil.Process(command).ppid() == task.pid
    assert os.getpgid(command) == command  # a group of its own: group signals reach it once
    target = ExecTarget.read(task.pid, what="the task")
    assert target.pid == command and target.other_pid_namespace
    argv = exec_argv(target, ["sh", "-c", "echo $$; ls /proc | grep -c '^[0-9]'"], network=False)
    assert "--pid" in argv
    ran = subprocess.run(argv, capture_output=True, text=True, check=False)
    # exec'd into the task's namespace: a pid of it, and the task's processes only
    assert ran.returncode == 0, ran.stderr
    own_pid, count = ran.stdout.split()
    assert 1 < int(own_pid) < 10 and 2 <= int(count) <= 4, ran.stdout


def test_sigterm_to_the_tasks_group_reaches_the_command_once_and_its_status_is_the_tasks(
    task: subprocess.Popen[str],
) -> None:
    started(task)
    os.killpg(task.pid, signal.SIGTERM)  # as the twin stops a task
    assert task.wait(timeout=10) == 7  # the command's handler ran: exit(7), passed back


def test_a_killed_first_process_takes_the_command_with_it(task: subprocess.Popen[str]) -> None:
    started(task)
    command = container_pid(task.pid)
    os.kill(task.pid, signal.SIGKILL)
    assert task.wait(timeout=10) == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while psutil.pid_exists(command) and psutil.Process(command).status() != "zombie":
        assert time.monotonic() < deadline, "the command outlived the task's first process"
        time.sleep(0.02)


def test_killing_the_namespace_ends_a_command_that_cleared_its_death_signal(
    tmp_path: Path,
) -> None:
    task = start_task(tmp_path / "root", user=False, drop_ids=True)
    try:
        started(task)
        command = container_pid(task.pid)
        kill_namespace(task.pid)  # what stopping a task for good does before the group's
        assert task.wait(timeout=10) == -signal.SIGKILL  # the command's end, passed back
        assert not psutil.pid_exists(command) or psutil.Process(command).status() == "zombie"
    finally:
        end(task)
