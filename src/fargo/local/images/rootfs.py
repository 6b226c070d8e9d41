"""Lay out an image's folders at their absolute paths, then run its command: the first
process of a task in VPC mode, inside its private mount namespace.

    python -I -S rootfs.py IMAGE_ROOT WORKDIR -- python -m app

A new root is assembled on a tmpfs: every entry of this machine's ``/`` bind-mounted
(its programs, libraries, the interpreters and the image's environment stay where they
are), and every entry of the image's root over it (``/app``, ``/srv``); where both have a
folder (``/opt``, ``/usr/local``) a tmpfs holds the union of the two, the image's entry
winning on a clash. Nothing is written to this machine's folders. Then ``chroot`` to the
new root, ``chdir`` to ``WORKDIR``, and ``exec`` the command.

Run as a file, with only the standard library: it must not depend on what the task's
``PYTHONPATH`` holds. The mount namespace is the task's own (``unshare --mount
--propagation private`` before it), so the mounts vanish with the task.
"""

from __future__ import annotations

import ctypes
import os
import sys

MS_BIND = 0x1000
MS_REC = 0x4000
_libc = ctypes.CDLL(None, use_errno=True)


def mount(source: str, target: str, fstype: str | None, flags: int) -> None:
    result = _libc.mount(
        source.encode(), target.encode(), fstype.encode() if fstype else None, flags, None
    )
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"mount {source} on {target}: {os.strerror(error)}")


def is_folder(path: str) -> bool:
    return os.path.isdir(path) and not os.path.islink(path)


def place(target: str, source: str) -> None:
    """``source`` at ``target``: a link as a link, a folder or file bind-mounted."""
    if os.path.islink(source):
        os.symlink(os.readlink(source), target)
    elif is_folder(source):
        os.mkdir(target)
        mount(source, target, None, MS_BIND | MS_REC)
    elif os.path.exists(source):
        with open(target, "w"):
            pass
        mount(source, target, None, MS_BIND)


def populate(target: str, host: str | None, image: str | None) -> None:
    """Fill the empty folder ``target`` with the union of ``host`` and ``image``."""
    names = set(os.listdir(host)) if host else set()
    names |= set(os.listdir(image)) if image else set()
    for name in sorted(names):
        inside = os.path.join(target, name)
        from_host = os.path.join(host, name) if host else None
        from_image = os.path.join(image, name) if image else None
        in_host = from_host is not None and os.path.lexists(from_host)
        in_image = from_image is not None and os.path.lexists(from_image)
        if in_host and in_image and is_folder(from_host or "") and is_folder(from_image or ""):
            os.mkdir(inside)
            mount("tmpfs", inside, "tmpfs", 0)
            populate(inside, from_host, from_image)
        elif in_image:
            place(inside, from_image or "")
        elif in_host:
            place(inside, from_host or "")


def main(arguments: list[str]) -> None:
    if len(arguments) < 4 or arguments[2] != "--":
        raise SystemExit("usage: rootfs.py IMAGE_ROOT WORKDIR -- COMMAND [ARGUMENT...]")
    image_root, workdir, _, *argv = arguments
    new_root = image_root.rstrip("/") + ".mnt"
    os.makedirs(new_root, exist_ok=True)
    mount("tmpfs", new_root, "tmpfs", 0)
    populate(new_root, "/", image_root)
    os.chroot(new_root)
    os.chdir(workdir if os.path.isdir(workdir) else "/")
    try:
        os.execvp(argv[0], argv)  # noqa: S606 - the image's command, as the Dockerfile says
    except OSError as err:
        raise SystemExit(f'exec: "{argv[0]}": {err.strerror}') from None


if __name__ == "__main__":
    main(sys.argv[1:])
