"""What a demonstration point needs from the world it checks: the twin or AWS."""

from __future__ import annotations

import ssl
from typing import Any, Protocol

from fargo.demo.report import Point
from fargo.demo.requests import PublicListener


class RequestLog(Protocol):
    """The services' request logs, read from a mark on."""

    async def mark(self) -> None:
        """Remember where the logs end now: `find` looks only after this."""

    async def find(self, needle: str) -> tuple[str, str] | None:
        """``(service, task)`` of the task that logged a request with ``needle`` in it since
        the mark (waiting as long as the world's logs take to arrive), or None."""


class World(Protocol):
    """A running system the points are checked against."""

    public: PublicListener | None  # the HTTPS listener the demo calls
    ssl_context: ssl.SSLContext  # trusts the certificate the listener should present
    trusted: str  # who the certificate is verified against, for the evidence
    source_ip: str | None  # the demo's address as the load balancer sees it, if known

    def desired(self, service: str) -> int:
        """The service's desired task count."""

    def registered_targets(self, target_groups: list[str]) -> int:
        """How many targets the target groups have."""

    async def image_pulls(self, point: Point) -> Point:
        """Point 1: the tasks pulled their images through the NAT gateway (or skip why not)."""

    async def discovery_answers(self, point: Point, name: str) -> list[dict[str, Any]]:
        """Point 5: the answers for the discovery name ``name``, each ``{"records": [...]}``
        (and ``ttl`` if known); evidence of where they were asked goes on ``point``."""

    def request_log(self) -> RequestLog:
        """The services' request logs (point 6)."""
