"""A Dockerfile's USER on this machine: who it names (or nobody), and what the build says."""

from __future__ import annotations

import os
import pwd
import shutil
import sys
from pathlib import Path

import pytest

from fargo.local.ec2 import id_map
from fargo.local.ec2.id_map import Range, parse_maps, subordinate_range, why_not
from fargo.local.images.launch import _as_user
from fargo.local.images.rootfs import OVERFLOW_ID, traversable
from fargo.local.images.user import NOBODY, TaskUser, own_namespace_maps, task_user, user_note


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
    assert user_note("10001:10001", switches=False, euid=65534, subordinate="why") == (
        "10001:10001: tasks run as uid 10001, gid 10001 in a user namespace of their own that "
        "maps you to them: to this machine they are nobody (uid 65534) (subordinate ids would "
        "make them ids of their own, but why)"
    )
    assert user_note(
        "10001:10001", switches=False, euid=65534, subordinate="why", one_id="refused"
    ) == (
        "10001:10001: not switched: only root can start a task as another user, and fargo "
        "runs as nobody (uid 65534); tasks run as nobody (uid 65534) (a user namespace would "
        "map you to it, but refused; subordinate ids would switch, but why)"
    )
    assert user_note("10001:10001", switches=False, euid=65534, subordinate="") == (
        "10001:10001: tasks run as uid 10001, gid 10001 in a user namespace that maps your "
        "subordinate ids (VPC mode: the twin's; loopback mode: the task's own)"
    )
    assert user_note("10001:10001", switches=True) == (
        "10001:10001: tasks run as uid 10001, gid 10001"
    )
    assert user_note("appuser", switches=True) == (
        'appuser: tasks run as nobody (uid 65534, gid 65534), as no user "appuser" on this machine'
    )


def test_the_note_says_when_the_ids_are_beyond_what_a_namespace_maps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `unshare --map-auto` maps the user's first range, whatever its size
    small = parse_maps("0 1000 1\n1 2100000000 999\n--\n0 1000 1\n1 2100000000 999\n")
    assert small.maps(500, 500) and not small.maps(10001, 10001)
    monkeypatch.setattr(id_map, "own_namespace", lambda: small)
    note = user_note("10001:10001", switches=False, euid=65534)
    assert note.endswith("but uid 10001, gid 10001 is beyond the ids it maps)"), note
    assert not own_namespace_maps(10001, 10001) and own_namespace_maps(500, 0)
    monkeypatch.setattr(id_map, "own_namespace", lambda: "user namespaces are refused here")
    assert not own_namespace_maps(500, 500)
    assert user_note("500", switches=False, euid=65534, one_id="no").endswith(
        "but user namespaces are refused here)"
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


@pytest.mark.parametrize(
    ("subuid", "expected"),
    [
        ("nobody:200000:65536\n", Range(200000, 65536)),
        ("alice:100000:65536\n65534:300000:70000\n", Range(300000, 70000)),  # by uid
        ("nobody:200000:1000\n", None),  # too small for the ids images use
        ("alice:100000:65536\n", None),
        ("nobody:x:65536\n", None),
    ],
)
def test_a_users_subordinate_range_is_read_by_name_or_uid(
    tmp_path: Path, subuid: str, expected: Range | None
) -> None:
    path = tmp_path / "subuid"
    path.write_text(subuid)
    assert subordinate_range(path, "nobody", 65534) == expected


def test_without_a_range_the_advice_says_how_to_get_one(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("")
    why = why_not(65534, subuid=empty, subgid=empty)
    if shutil.which("newuidmap") is None:
        assert "apt-get install uidmap" in why
    else:
        assert "usermod --add-subuids 100000-165535 --add-subgids 100000-165535 nobody" in why


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder to nobody needs root")
def test_a_folder_of_the_overflow_id_is_not_taken_as_nobodys_own(tmp_path: Path) -> None:
    """In a user namespace, a folder of an unmapped owner (root's 0700 state folder, say)
    shows as nobody's: a task of nobody must not count itself its owner."""
    folder = tmp_path / "unmapped"
    folder.mkdir(mode=0o700)
    os.chown(folder, OVERFLOW_ID, OVERFLOW_ID)
    assert not traversable(str(folder), OVERFLOW_ID, OVERFLOW_ID)
    os.chown(folder, 10001, 10001)
    assert traversable(str(folder), 10001, 10001)
