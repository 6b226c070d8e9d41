"""What the build says about a Dockerfile's USER: why it is not switched, whether the user
exists on this machine."""

from __future__ import annotations

from fargo.local.images.user import user_note


def test_not_root_says_only_root_can_change_the_user() -> None:
    said = user_note("10001:10001", euid=65534)
    assert said == (
        "10001:10001: not switched: only root can start a task as another user, and fargo "
        "runs as nobody (uid 65534); tasks run as nobody (uid 65534)"
    )


def test_root_says_why_not_and_whether_the_user_exists_here() -> None:
    assert user_note("nobody", euid=0).startswith(
        "nobody: not switched: the task's files (its image and Python environment in the "
        "owner-only state folder"
    )
    assert user_note("10001:10001", euid=0).endswith("readable by root only; tasks run as root")
    assert 'no user "appuser" on this machine; ' in user_note("appuser", euid=0)
    assert 'no group "nosuchgroup" on this machine; ' in user_note("nobody:nosuchgroup", euid=0)
