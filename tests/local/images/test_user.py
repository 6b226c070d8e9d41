"""A Dockerfile's USER on this machine: who it names (or nobody), and what the build says."""

from __future__ import annotations

import pwd
import sys
from pathlib import Path

from fargo.local.images.launch import _as_user
from fargo.local.images.user import NOBODY, TaskUser, task_user, user_note


def test_a_user_is_found_by_name_or_uid_and_a_missing_one_is_nobody() -> None:
    nobody = pwd.getpwnam("nobody")
    assert task_user("nobody") == TaskUser(nobody.pw_uid, nobody.pw_gid, nobody.pw_dir)
    assert task_user("0:0") == TaskUser(0, 0, pwd.getpwuid(0).pw_dir)
    # a numeric uid needs no entry (as in Docker); its group then is nogroup unless given
    assert task_user("10001:10002") == TaskUser(10001, 10002, "/")
    assert task_user("10001") == TaskUser(10001, 65534, "/")
    assert task_user("fargo-nosuchuser") == TaskUser(
        NOBODY, 65534, "/", missing='no user "fargo-nosuchuser"'
    )
    assert task_user("nobody:fargo-nosuchgroup").missing == 'no group "fargo-nosuchgroup"'


def test_the_build_says_who_the_tasks_run_as() -> None:
    assert user_note("10001:10001", real_root=False, euid=65534) == (
        "10001:10001: not switched: only root can start a task as another user, and fargo "
        "runs as nobody (uid 65534); tasks run as nobody (uid 65534)"
    )
    assert user_note("10001:10001", real_root=True) == (
        "10001:10001: tasks run as uid 10001, gid 10001"
    )
    assert user_note("appuser", real_root=True) == (
        'appuser: tasks run as nobody (uid 65534, gid 65534), as no user "appuser" on this machine'
    )


def test_a_task_of_another_user_gets_its_environment_and_interpreter_exposed(
    tmp_path: Path,
) -> None:
    environment = tmp_path / "environments" / "k"
    environment.mkdir(parents=True)
    home = Path(sys.base_prefix) / "bin"
    (environment / "pyvenv.cfg").write_text(f"home = {home}\nversion = 3.11\n")

    class Image:
        pass

    image = Image()
    image.environment = environment  # type: ignore[attr-defined]
    options = _as_user(task_user("10001:10001"), image, {"PYTHONPATH": "/opt/site:rel"})  # type: ignore[arg-type]
    assert options[:2] == ["--user", "10001:10001:/"]
    exposed = options[3::2]
    assert exposed[:2] == ["/opt/site", str(environment)]
    assert str(home.parent) in exposed
