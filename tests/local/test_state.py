"""The state folder: its marker, its lock, atomic pid records, and the sweep."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from tests.waiting import wait_until

from fargo.local.state import folder as state


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def sleeper(*, session: bool = True) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "60"], start_new_session=session)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


# -- the marker ----------------------------------------------------------------------------


def test_prepare_creates_an_owner_only_folder_with_its_marker(tmp_path: Path) -> None:
    folder = tmp_path / "a" / "state"
    state.prepare(folder)
    assert mode(folder) == 0o700
    assert (folder / state.MARKER).is_file()
    assert state.is_state_dir(folder)


def test_prepare_refuses_a_non_empty_folder_without_the_marker(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    os.chmod(tmp_path, 0o755)
    with pytest.raises(state.StateDirError, match="not a fargo state folder"):
        state.prepare(tmp_path)
    assert os.listdir(tmp_path) == ["notes.txt"]
    assert mode(tmp_path) == 0o755


def test_prepare_adopts_an_empty_folder_without_changing_its_mode(tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    state.prepare(folder)
    assert (folder / state.MARKER).is_file()
    assert mode(folder) == 0o755  # not ours to lock down: only a folder it creates is


def test_prepare_uses_a_marked_folder_again(tmp_path: Path) -> None:
    state.prepare(tmp_path / "s")
    (tmp_path / "s" / "ca").mkdir()
    state.prepare(tmp_path / "s")
    assert (tmp_path / "s" / "ca").is_dir()


def test_an_os_error_becomes_a_clear_message(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(state.StateDirError, match=r"cannot use .* as the state folder"):
        state.prepare(tmp_path / "file" / "state")


def test_a_socket_path_over_the_limit_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 100) / "state"
    with pytest.raises(state.StateDirError, match="shorter --state-dir"):
        state.prepare(deep)
    assert not deep.parent.exists()


def test_sweep_leaves_a_folder_without_the_marker_alone(tmp_path: Path) -> None:
    process = sleeper()
    try:
        (tmp_path / state.PID_DIRECTORY).mkdir()
        record = {"pid": process.pid, "created": psutil.Process(process.pid).create_time()}
        (tmp_path / state.PID_DIRECTORY / "x.json").write_text(json.dumps(record | {"what": "x"}))
        assert state.sweep(tmp_path, grace=0.5) == []
        assert process.poll() is None
    finally:
        process.kill()
        process.wait()


# -- records -------------------------------------------------------------------------------


def test_a_record_is_replaced_whole_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    state.prepare(tmp_path / "s")
    folder = tmp_path / "s"
    state.record_process(folder, "caddy", os.getpid(), "first")
    path = state.record_process(folder, "caddy", os.getpid(), "second")
    assert json.loads(path.read_text())["what"] == "second"
    assert sorted(p.name for p in path.parent.iterdir()) == ["caddy.json"]


def test_a_failed_record_write_leaves_neither_a_record_nor_a_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state.prepare(tmp_path / "s")

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        state.record_process(tmp_path / "s", "task", os.getpid(), "a task")
    assert list((tmp_path / "s" / state.PID_DIRECTORY).iterdir()) == []


def test_a_zombie_counts_as_dead(tmp_path: Path) -> None:
    state.prepare(tmp_path / "s")
    process = sleeper()
    state.record_process(tmp_path / "s", "task", process.pid, "a task")
    process.kill()
    wait_until(
        lambda: psutil.Process(process.pid).status() == psutil.STATUS_ZOMBIE, what="a zombie"
    )
    [record] = state.recorded_processes(tmp_path / "s")
    assert not record.alive()
    process.wait()


def test_sweep_stops_a_live_process_group(tmp_path: Path) -> None:
    state.prepare(tmp_path / "s")
    process = sleeper()
    state.record_process(tmp_path / "s", "task", process.pid, "a task")
    stopped = state.sweep(tmp_path / "s", grace=2)
    assert process.wait(5) is not None
    assert stopped == [f"a task (pid {process.pid})"]
    assert state.recorded_processes(tmp_path / "s") == []


def test_sweep_kills_a_process_group_whose_leader_is_dead(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    state.prepare(folder)
    leader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys; "
            "print(subprocess.Popen(['sleep', '60']).pid, flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert leader.stdout is not None and leader.stdin is not None
    child = int(leader.stdout.readline())
    state.record_process(folder, "task", leader.pid, "a task")
    leader.stdin.close()
    leader.wait(5)  # the leader is gone (reaped); its child still runs in its group
    assert not gone(child) and os.getpgid(child) == leader.pid
    [record] = state.recorded_processes(folder)
    assert not record.alive() and record.group_alive()

    assert state.sweep(folder, grace=2) == [f"a task (pid {leader.pid})"]
    wait_until(lambda: gone(child), what="the child gone")


# -- the lock ------------------------------------------------------------------------------


def test_the_lock_is_exclusive_and_names_its_holder(tmp_path: Path) -> None:
    state.prepare(tmp_path)
    assert not state.locked(tmp_path)
    with state.exclusive_lock(tmp_path):
        assert state.locked(tmp_path)
        assert state.lock_holder(tmp_path) == os.getpid()
        with (
            pytest.raises(state.StateLocked, match=f"pid {os.getpid()}"),
            state.exclusive_lock(tmp_path, patience=0.1),
        ):
            pass
    assert not state.locked(tmp_path)
    assert state.lock_holder(tmp_path) is None


def test_many_concurrent_prepares_of_one_new_folder_all_succeed(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    for attempt in range(20):
        folder = tmp_path / f"state-{attempt}"
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(state.prepare, [folder] * 8))  # none raises
        assert state.is_state_dir(folder)


# -- who may write the folder ----------------------------------------------------------------


def nobody_uid() -> int:
    import pwd

    return pwd.getpwnam("nobody").pw_uid


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving files to another user needs root")


def test_prepare_refuses_a_folder_group_or_others_may_write(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    state.prepare(folder)
    os.chmod(folder, 0o775)
    with pytest.raises(state.StateDirError) as refused:
        state.prepare(folder)
    message = str(refused.value)
    assert f"the state folder {folder} is writable by group (mode 0775)" in message
    assert f"chmod go-w {folder}" in message
    assert "another --state-dir" in message


def test_prepare_refuses_an_empty_world_writable_folder_and_leaves_it_alone(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    os.chmod(folder, 0o1777)
    with pytest.raises(state.StateDirError, match=r"writable by group and others \(mode 1777\)"):
        state.prepare(folder)
    assert os.listdir(folder) == []


@needs_root
def test_prepare_refuses_a_folder_another_user_owns(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    state.prepare(folder)
    os.chown(folder, nobody_uid(), -1)
    with pytest.raises(state.StateDirError) as refused:
        state.prepare(folder)
    message = str(refused.value)
    assert f"the state folder {folder} belongs to nobody (uid {nobody_uid()})" in message
    assert "not to you (root (uid 0))" in message and "--state-dir" in message


def test_new_subfolders_are_owner_only(tmp_path: Path) -> None:
    state.prepare(tmp_path / "s")
    assert mode(tmp_path / "s" / state.PID_DIRECTORY) == 0o700


def test_prepare_makes_its_own_pid_folder_owner_only_again(tmp_path: Path) -> None:
    """An older fargo under umask 002 left ``pids/`` group-writable inside its 0700 folder."""
    folder = tmp_path / "s"
    state.prepare(folder)
    os.chmod(folder / state.PID_DIRECTORY, 0o775)
    state.prepare(folder)
    assert mode(folder / state.PID_DIRECTORY) == 0o700


def test_a_group_writable_pid_folder_is_refused_before_any_signal(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    state.prepare(folder)
    process = sleeper()
    try:
        state.record_process(folder, "task", process.pid, "a task")
        os.chmod(folder / state.PID_DIRECTORY, 0o770)
        with pytest.raises(state.StateDirError, match=r"the pid folder .* writable by group"):
            state.sweep(folder, grace=0.5)
        assert process.poll() is None
    finally:
        process.kill()
        process.wait()


@needs_root
def test_a_pid_record_another_user_owns_is_refused_before_any_signal(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    state.prepare(folder)
    process = sleeper()
    try:
        path = state.record_process(folder, "task", process.pid, "a task")
        os.chown(path, nobody_uid(), -1)
        with pytest.raises(state.StateDirError, match=rf"the pid record {path} belongs to nobody"):
            state.sweep(folder, grace=0.5)
        assert process.poll() is None
        assert path.exists()  # not the twin's to delete either
    finally:
        process.kill()
        process.wait()


def test_a_pid_record_that_is_a_link_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    state.prepare(folder)
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps({"pid": 1, "created": 0.0, "what": "init"}))
    os.chmod(elsewhere, 0o600)
    (folder / state.PID_DIRECTORY / "task.json").symlink_to(elsewhere)
    with pytest.raises(state.StateDirError, match="is a symbolic link"):
        state.recorded_processes(folder)


@needs_root
def test_a_record_planted_by_another_user_in_a_shared_folder_is_not_acted_on() -> None:
    """The attack itself: ``nobody`` writes a record naming a process of ours; down refuses."""
    import shutil
    import tempfile

    shared = Path(tempfile.mkdtemp(prefix="fargo-shared-"))  # pytest's tmp is root-only
    shared.chmod(0o755)
    folder = shared / "s"
    state.prepare(folder)
    os.chmod(folder, 0o777)  # a careless chmod, or a folder made with a shared umask
    os.chmod(folder / state.PID_DIRECTORY, 0o777)
    victim = sleeper()
    try:
        record = {
            "pid": victim.pid,
            "created": psutil.Process(victim.pid).create_time(),
            "what": "x",
            "pgid": victim.pid,
        }
        planted = folder / state.PID_DIRECTORY / "planted.json"
        subprocess.run(
            ["su", "nobody", "-s", "/bin/sh", "-c", f"cat > {planted}"],
            input=json.dumps(record).encode(),
            check=True,
            timeout=30,
        )
        assert planted.stat().st_uid == nobody_uid()
        with pytest.raises(state.StateDirError, match="writable by group and others"):
            state.sweep(folder, grace=0.5)
        os.chmod(folder, 0o700)
        os.chmod(folder / state.PID_DIRECTORY, 0o700)
        with pytest.raises(state.StateDirError, match="belongs to nobody"):
            state.sweep(folder, grace=0.5)  # tightening the folder does not bless the record
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()
        shutil.rmtree(shared)
