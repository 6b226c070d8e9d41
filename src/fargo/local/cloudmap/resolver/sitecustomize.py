"""Resolve the twin's discovery names inside a task, in ordinary code.

Python imports ``sitecustomize`` at start-up; the twin puts this folder on each
loopback task's ``PYTHONPATH`` (see :func:`fargo.local.cloudmap.resolver.task_environment`).
With ``FARGO_DNS_SERVER=host:port`` and ``FARGO_DNS_ZONES=zone1,zone2`` set, names
inside those zones are looked up by real DNS queries to the twin's server, the
addresses kept in the order it sent them (multivalue answers balance that way).
Every other name goes to the original resolver. Covered:

- ``socket.getaddrinfo``, ``gethostbyname``, ``gethostbyname_ex`` (so asyncio's
  default loop, urllib, requests, httpx and aiohttp's threaded resolver);
- uvloop's ``Loop.getaddrinfo`` and ``Loop.create_connection``, which go through
  libuv otherwise;
- aiohttp's ``AsyncResolver`` (c-ares, aiohttp's default when aiodns is installed).

uvloop and aiohttp are patched right after they are imported, so a task that
does not use them does not pay for importing them. Without ``FARGO_DNS_SERVER``
this module imports nothing. A failure here never stops the interpreter: it
prints one warning line to stderr.

Python imports only the first ``sitecustomize`` on ``sys.path``; this one does
not chain to another.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs a task ~10 ms
if TYPE_CHECKING:
    from typing import Any

SERVER_VARIABLE = "FARGO_DNS_SERVER"
ZONES_VARIABLE = "FARGO_DNS_ZONES"
LIBRARY_VARIABLE = "FARGO_DNS_LIBRARY"
BIND_VARIABLE = "FARGO_BIND_ADDRESS"


def _ensure_dnspython() -> None:
    """The image's own dnspython when it has one, else the folder holding fargo's (and
    nothing else of fargo's environment), appended: an image's missing dependency must
    still fail as it would in its container."""
    try:
        import dns.message  # noqa: F401
    except ImportError:
        library = os.environ.get(LIBRARY_VARIABLE)
        if library and library not in sys.path:
            sys.path.append(library)


TIMEOUT_SECONDS = 2.0


class _Resolver:
    def __init__(self, server: str, zones: str) -> None:
        import socket

        host, _, port = server.rpartition(":")
        self.host, self.port = host.strip("[]"), int(port)
        self.zones = tuple(z.strip().rstrip(".").lower() for z in zones.split(",") if z.strip())
        self.socket = socket
        self.original_getaddrinfo = socket.getaddrinfo
        self.original_gethostbyname = socket.gethostbyname
        self.original_gethostbyname_ex = socket.gethostbyname_ex

    def zone_name(self, host: object) -> str | None:
        """The normalized name when ``host`` lies inside one of the zones."""
        if isinstance(host, bytes):
            host = host.decode("ascii", "replace")
        if not isinstance(host, str):
            return None
        name = host.rstrip(".").lower()
        return name if any(name == z or name.endswith("." + z) for z in self.zones) else None

    def lookup(self, name: str) -> list[str]:
        """The A records of ``name``, in the server's order, or ``socket.gaierror``."""
        socket = self.socket
        _ensure_dnspython()
        import dns.exception  # dnspython: imported on the first lookup, not at start-up
        import dns.flags
        import dns.message
        import dns.query
        import dns.rcode
        import dns.rdatatype

        query = dns.message.make_query(name + ".", dns.rdatatype.A)
        try:
            response = dns.query.udp(query, self.host, TIMEOUT_SECONDS, self.port)
            if response.flags & dns.flags.TC:
                response = dns.query.tcp(query, self.host, TIMEOUT_SECONDS, self.port)
        except (OSError, dns.exception.DNSException) as error:
            raise socket.gaierror(
                socket.EAI_AGAIN, f"Temporary failure in name resolution ({error})"
            ) from error
        if response.rcode() == dns.rcode.NXDOMAIN:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if response.rcode() != dns.rcode.NOERROR:
            raise socket.gaierror(socket.EAI_FAIL, "Non-recoverable failure in name resolution")
        addresses = [
            rdata.address
            for rrset in response.answer
            if rrset.rdtype == dns.rdatatype.A
            for rdata in rrset
        ]
        if not addresses:
            no_data = getattr(socket, "EAI_NODATA", socket.EAI_NONAME)
            raise socket.gaierror(no_data, "No address associated with hostname")
        return addresses

    def getaddrinfo(
        self, host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> list[Any]:
        socket = self.socket
        name = self.zone_name(host)
        if name is None or flags & socket.AI_NUMERICHOST:
            return self.original_getaddrinfo(host, port, family, type, proto, flags)
        if family not in (socket.AF_UNSPEC, socket.AF_INET):
            no_family = getattr(socket, "EAI_ADDRFAMILY", socket.EAI_NONAME)
            raise socket.gaierror(no_family, "Address family for hostname not supported")
        infos = []
        for address in self.lookup(name):
            numeric = flags | socket.AI_NUMERICHOST
            for f, t, p, canonname, sockaddr in self.original_getaddrinfo(
                address, port, socket.AF_INET, type, proto, numeric
            ):
                infos.append((f, t, p, name if canonname else "", sockaddr))
        return infos

    def gethostbyname(self, hostname: str) -> str:
        name = self.zone_name(hostname)
        return self.original_gethostbyname(hostname) if name is None else self.lookup(name)[0]

    def gethostbyname_ex(self, hostname: str) -> tuple[str, list[str], list[str]]:
        name = self.zone_name(hostname)
        if name is None:
            return self.original_gethostbyname_ex(hostname)
        return name, [], self.lookup(name)

    def patch_uvloop(self, uvloop: Any) -> None:
        resolver, socket = self, self.socket
        loop_class = uvloop.Loop
        original_getaddrinfo = loop_class.getaddrinfo
        original_create_connection = loop_class.create_connection

        async def getaddrinfo(
            self: Any, host: Any, port: Any, *, family: int = 0, type: int = 0, **kw: int
        ) -> Any:
            if resolver.zone_name(host) is None:
                return await original_getaddrinfo(self, host, port, family=family, type=type, **kw)
            return await self.run_in_executor(
                None, resolver.getaddrinfo, host, port, family, type, kw.get("proto", 0)
            )

        async def create_connection(
            self: Any, protocol_factory: Any, host: Any = None, port: Any = None, **kw: Any
        ) -> Any:
            if resolver.zone_name(host) is None:
                return await original_create_connection(self, protocol_factory, host, port, **kw)
            infos = await getaddrinfo(
                self, host, port, family=kw.get("family", 0), type=socket.SOCK_STREAM
            )
            if kw.get("ssl") and kw.get("server_hostname") is None:
                kw["server_hostname"] = host
            errors: list[OSError] = []
            for *_, (address, address_port) in infos:
                try:
                    return await original_create_connection(
                        self, protocol_factory, address, address_port, **kw
                    )
                except OSError as error:
                    errors.append(error)
            if len(errors) == 1:
                raise errors[0]
            raise OSError(f"Multiple exceptions: {', '.join(map(str, errors))}")

        loop_class.getaddrinfo = getaddrinfo
        loop_class.create_connection = create_connection

    def patch_aiohttp_resolver(self, module: Any) -> None:
        resolver, socket = self, self.socket
        original_resolve = module.AsyncResolver.resolve

        async def resolve(self: Any, host: str, port: int = 0, family: int = socket.AF_INET) -> Any:
            if resolver.zone_name(host) is None:
                return await original_resolve(self, host, port, family)
            return await module.ThreadedResolver(self._loop).resolve(host, port, family)

        module.AsyncResolver.resolve = resolve


class _PatchAfterImport:
    """A meta path finder that runs a patch right after a module is executed."""

    def __init__(self, patches: dict[str, Any]) -> None:
        self.patches = patches

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname not in self.patches:
            return None
        patch = self.patches.pop(fullname)
        finders = (f for f in sys.meta_path if f is not self and hasattr(f, "find_spec"))
        for finder in finders:
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None:
            exec_module = spec.loader.exec_module

            def exec_and_patch(module: Any) -> None:
                exec_module(module)
                _guarded(patch, module)

            spec.loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        return spec


def _guarded(function: Any, *args: Any) -> None:
    try:
        function(*args)
    except Exception as error:
        print(f"fargo resolver: discovery names may not resolve: {error!r}", file=sys.stderr)


def _install() -> None:
    import socket

    resolver = _Resolver(os.environ[SERVER_VARIABLE], os.environ.get(ZONES_VARIABLE, ""))
    socket.getaddrinfo = resolver.getaddrinfo
    socket.gethostbyname = resolver.gethostbyname
    socket.gethostbyname_ex = resolver.gethostbyname_ex
    patches = {"uvloop": resolver.patch_uvloop, "aiohttp.resolver": resolver.patch_aiohttp_resolver}
    sys.meta_path.insert(0, _PatchAfterImport(patches))


def _install_bind(address: str) -> None:
    """Loopback mode: a server binding every address (``0.0.0.0``, as in a container)
    binds its task's own loopback address instead, so two tasks of a service listen on
    the same port side by side, as each does in its own ENI."""
    import socket

    original_bind = socket.socket.bind

    def bind(self: Any, address_: Any) -> None:
        if (
            self.family == socket.AF_INET
            and isinstance(address_, tuple)
            and address_[0] in ("", "0.0.0.0")
        ):
            address_ = (address, *address_[1:])
        original_bind(self, address_)

    socket.socket.bind = bind  # type: ignore[method-assign]


if os.environ.get(SERVER_VARIABLE):
    _guarded(_install)
if os.environ.get(BIND_VARIABLE):
    _guarded(_install_bind, os.environ[BIND_VARIABLE])
