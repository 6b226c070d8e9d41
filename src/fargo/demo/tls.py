"""Point 7: an SSL/TLS certificate is attached to the load balancer.

A verified handshake with the public HTTPS listener, and the HTTP listener's redirect
(if it has one).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from fargo.demo.report import Point
from fargo.demo.requests import PublicListener


async def check_tls(
    point: Point,
    session: aiohttp.ClientSession,
    public: PublicListener,
    context: ssl.SSLContext,
    trusted: str,
) -> Point:
    """``trusted``: who ``context`` trusts, for the evidence ("the twin's CA")."""
    parts = urlsplit(public.https_url)
    host, port = parts.hostname or "localhost", parts.port or 443
    name = public.server_name or host
    loop = asyncio.get_running_loop()
    certificate, version, cipher = await loop.run_in_executor(
        None, _handshake, host, port, name, context
    )
    redirect: dict[str, Any] = {}
    redirects = (
        public.http_listener is not None
        and public.http_listener.default_action.redirect is not None
    )
    if redirects and public.http_listener is not None:
        expected = public.http_listener.default_action.redirect
        url = public.http_url + "/fargo-demo"
        async with session.get(url, headers=public.headers(), allow_redirects=False) as response:
            redirect = {
                "url": url,
                "status": response.status,
                "location": response.headers.get("Location"),
            }
        wanted = int(expected.status_code.removeprefix("HTTP_")) if expected else 301
        redirect_ok = redirect["status"] == wanted and bool(redirect["location"])
    else:
        redirect_ok = True
    subject = dict(x[0] for x in certificate["subject"])
    issuer = dict(x[0] for x in certificate["issuer"])
    return point.done(
        version in {"TLSv1.2", "TLSv1.3"} and redirect_ok,
        subject=subject,
        issuer=issuer,
        not_before=certificate["notBefore"],
        not_after=certificate["notAfter"],
        names=[v for _, v in certificate.get("subjectAltName", ())],
        tls_version=version,
        cipher=cipher,
        verified_against=trusted,
        redirect=redirect or "the HTTP listener does not redirect",
    )


def _handshake(
    host: str, port: int, name: str, context: ssl.SSLContext
) -> tuple[dict[str, Any], str, str]:
    with (
        socket.create_connection((host, port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=name) as tls,
    ):
        cipher = tls.cipher()
        return tls.getpeercert() or {}, tls.version() or "", cipher[0] if cipher else ""
