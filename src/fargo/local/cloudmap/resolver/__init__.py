"""Discovery names inside loopback-mode tasks, with no root and no resolv.conf change.

This folder holds a ``sitecustomize`` module. Put on a task's ``PYTHONPATH``, it
makes ``socket.getaddrinfo``/``gethostbyname`` (and so asyncio, aiohttp, httpx,
urllib, and uvloop) ask the twin's DNS server for names in the twin's zones, so
``http://private.backend.microservice.local:8090/`` works in ordinary code:

    env = {**os.environ, **task_environment(dns_server.address, cloud_map.zones(),
                                            pythonpath=os.environ.get("PYTHONPATH"))}

Python runs only the first ``sitecustomize`` on ``sys.path``; ours comes first
and does not chain to another one (a distribution's own ``sitecustomize`` in
site-packages is then skipped; ``usercustomize`` still runs).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

DNS_SERVER_VARIABLE = "FARGO_DNS_SERVER"
DNS_ZONES_VARIABLE = "FARGO_DNS_ZONES"
DNS_LIBRARY_VARIABLE = "FARGO_DNS_LIBRARY"
BIND_ADDRESS_VARIABLE = "FARGO_BIND_ADDRESS"  # loopback mode: where 0.0.0.0 binds
SITE_DIRECTORY = Path(__file__).resolve().parent


def dnspython_folder() -> Path:
    """A folder holding only dnspython (a link to fargo's): what the resolver falls back
    on in a task whose image has no dnspython of its own."""
    import dns.version

    package = Path(dns.__file__).resolve().parent
    folder = (
        Path(tempfile.gettempdir()) / f"fargo-{os.getuid()}" / f"dnspython-{dns.version.version}"
    )
    link = folder / "dns"
    folder.mkdir(parents=True, exist_ok=True)
    for mine in (folder.parent, folder):  # in a world-writable folder: made by no one else
        if mine.lstat().st_uid != os.getuid() or not mine.is_dir() or mine.is_symlink():
            raise RuntimeError(f"{mine} is not a folder of this user's; remove it")
    # Readable by a task running as its image's USER (`fargo.local.images.user`): it holds
    # only a link to a public library.
    folder.chmod(0o755)
    if not link.is_symlink() or link.resolve() != package:
        link.unlink(missing_ok=True)
        with contextlib.suppress(FileExistsError):
            link.symlink_to(package, target_is_directory=True)
    return folder


def task_environment(
    dns: tuple[str, int], zones: Sequence[str], *, pythonpath: str | None = None
) -> dict[str, str]:
    """The environment variables that route a task's lookups in ``zones`` to ``dns``.

    ``pythonpath`` is the task's existing ``PYTHONPATH``, kept after ours.
    """
    host, port = dns
    search_path = [str(SITE_DIRECTORY), *([pythonpath] if pythonpath else [])]
    return {
        "PYTHONPATH": os.pathsep.join(search_path),
        DNS_SERVER_VARIABLE: f"{host}:{port}",
        DNS_ZONES_VARIABLE: ",".join(zone.rstrip(".").lower() for zone in zones),
        DNS_LIBRARY_VARIABLE: str(dnspython_folder()),
    }
