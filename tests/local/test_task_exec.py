"""Running a command in a task (`fargo exec`, command health checks): what to run and as whom."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fargo.local.ecs.task_exec import (
    ExecError,
    ExecTarget,
    credentials,
    entered,
    exec_argv,
    id_inside,
)


def target(**changes: object) -> ExecTarget:
    fields: dict[str, object] = {
        "pid": 4242,
        "environment": {"PORT": "8080"},
        "cwd": "/app",
        "other_user_namespace": False,
        "other_mount_namespace": False,
        "uid": os.geteuid(),
        "gid": os.getegid(),
    }
    return ExecTarget(**(fields | changes))  # type: ignore[arg-type]


def test_a_task_without_namespaces_of_its_own_runs_the_command_as_it_is() -> None:
    process = target()
    assert exec_argv(process, ["true"], network=False, as_task_user=True) == ["true"]
    assert not entered(process, network=False)
    assert credentials(process) == {}  # the task runs as we do


def test_a_check_enters_the_tasks_namespaces_as_its_user_and_fargo_exec_as_ours() -> None:
    process = target(other_mount_namespace=True, uid=10001, gid=10002)
    check = exec_argv(process, ["id"], network=True, as_task_user=True)
    assert check[1:] == [
        "--target=4242",
        "--net",
        "--mount",
        "--root",
        "--wd",
        "--setgid=10002",
        "--setuid=10001",
        "--",
        "id",
    ]
    assert "--setuid=10001" not in exec_argv(process, ["id"], network=True)
    assert entered(process, network=False)
    assert credentials(process) == {"user": 10001, "group": 10002, "extra_groups": []}


def test_reading_a_task_reads_its_environment_folder_and_user() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(30)"],
        cwd="/tmp",
        env={"CHECK": "ok", "PATH": os.environ["PATH"]},
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"ready\n"  # exec'd: its own environment now
        read = ExecTarget.read(child.pid, what="task t1")
        assert read.environment["CHECK"] == "ok" and read.cwd == "/tmp"
        assert (read.uid, read.gid) == (os.geteuid(), os.getegid())
        assert not read.other_mount_namespace and not read.other_user_namespace
    finally:
        child.kill()
        child.wait()
    with pytest.raises(ExecError, match=r"task t1: its process \d+ has exited"):
        ExecTarget.read(child.pid, what="task t1")


def test_a_task_in_a_user_namespace_of_its_own_is_named_by_its_ids_there(tmp_path: Path) -> None:
    """nsenter --setuid takes the ids the task's own namespace has: 10001, not the host's
    2000010000 (a loopback task not as root, its user's subordinate ids mapped)."""
    id_map = tmp_path / "uid_map"
    id_map.write_text("         0      65534          1\n         1 2000000000      65535\n")
    assert id_inside(id_map, 2_000_010_000) == 10001
    assert id_inside(id_map, 65534) == 0
    assert id_inside(id_map, 42) == 42  # not in the map: as it is


def test_a_task_of_its_own_namespace_is_switched_to_even_when_its_ids_match_ours() -> None:
    """USER 1000 in a namespace of the task's own, for a user of uid 1000: the same numbers,
    not the same user (ours is that namespace's 0)."""
    process = target(other_user_namespace=True, other_mount_namespace=True)
    argv = exec_argv(process, ["id"], network=False, as_task_user=True)
    assert f"--setuid={os.geteuid()}" in argv and f"--setgid={os.getegid()}" in argv
