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

from fargo.local.ecs.process import container_pid
from fargo.local.ecs.task_exec import ExecTarget, exec_argv
from fargo.local.images.launch import ROOTFS_SCRIPT

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="VPC mode's tasks start as root")

COMMAND = (
    "import json, os, signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))\n"
    "print(json.dumps({'pid': os.getpid(), 'proc': sorted(filter(str.isdigit,"
    " os.listdir('/proc')))}), flush=True)\n"
    "time.sleep(60)\n"
)


@pytest.fixture(params=["root", "USER"])
def task(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """The task's first process: as VPC mode starts it, in mount and network namespaces of
    its own; its command as root, or as an image's USER (switching ids clears a process's
    parent-death signal: it must be set after)."""
    root = tmp_path / "root"
    (root / "app").mkdir(parents=True)
    unshare = shutil.which("unshare")
    assert unshare is not None
    argv = [unshare, "--mount", "--net", "--propagation", "private", sys.executable, "-I"]
    argv += ["-S", str(ROOTFS_SCRIPT), str(root), "/app"]
    if request.param == "USER":
        python = Path(sys.executable).resolve()
        argv += ["--user", "65534:65534:/", "--expose", str(python.parent.parent)]
    argv += ["--", sys.executable, "-c", COMMAND]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, start_new_session=True)
    yield process
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # the command goes with it (PDEATHSIG)
    process.wait()


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
