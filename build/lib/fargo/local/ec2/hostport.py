"""``host:port`` as sockets, Caddy and URLs spell it (IPv6 addresses in brackets).

    host_port("127.0.1.7", 80)   # "127.0.1.7:80"
    host_port("::1", 8443)       # "[::1]:8443"

Target addresses (`fargo.local.elb.target_health`), Caddy listen and dial addresses
(`fargo.local.caddy.config`) and listener URLs (`fargo.local.caddy.listeners`) all
use it, so the pure ELB state does not depend on the Caddy renderer.
"""

from __future__ import annotations


def host_port(host: str, port: int) -> str:
    """``host:port``, with an IPv6 ``host`` in brackets (like Go's ``net.JoinHostPort``)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
