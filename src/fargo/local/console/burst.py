"""``POST /api/burst``: a burst of requests through the public listener, from the twin.

    request = BurstRequest.parse({"route": "/api/private", "count": 20})
    result = await send_burst(public, ssl_context, request)

Requests go one at a time, so each latency is one request's (as the demo page's own
calls are). The answer counts status codes and which task answered (the reference
system's private services answer ``TaskId: <id>``), and gives latency statistics in
milliseconds: min, p50, p95 (nearest rank), max and mean.
"""

from __future__ import annotations

import math
import re
import ssl
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from fargo.demo.requests import PublicListener

MAX_BURST = 200
REQUEST_TIMEOUT_SECONDS = 10.0
ROUTE = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@/%?-]{0,199}$")
TASK_ID = re.compile(r"^TaskId:\s*(\S+)")
KEPT_ERRORS = 5


class BurstRefused(ValueError):
    """The burst's request is not one the console sends; the message says why."""


@dataclass(frozen=True)
class BurstRequest:
    route: str
    count: int

    @classmethod
    def parse(cls, body: object) -> BurstRequest:
        """``{"route": "/api/…", "count": N}``; `BurstRefused` names what is wrong."""
        if not isinstance(body, Mapping):
            raise BurstRefused(
                'the body must be a JSON object: {"route": "/api/public", "count": 20}'
            )
        route, count = body.get("route"), body.get("count", 20)
        if not isinstance(route, str) or not ROUTE.match(route) or route.startswith("//"):
            raise BurstRefused(
                f"route: a path on the public listener, such as /api/public; found {route!r}"
            )
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_BURST:
            raise BurstRefused(f"count: a whole number from 1 to {MAX_BURST}; found {count!r}")
        return cls(route, count)


def percentile(sorted_values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of ascending ``sorted_values`` (not empty)."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def latency_statistics(latencies_ms: list[float]) -> dict[str, float] | None:
    """min, p50, p95, max and mean of ``latencies_ms``, rounded to 0.1 ms; None if empty."""
    if not latencies_ms:
        return None
    ordered = sorted(latencies_ms)
    stats = {
        "min": ordered[0],
        "p50": percentile(ordered, 0.50),
        "p95": percentile(ordered, 0.95),
        "max": ordered[-1],
        "mean": sum(ordered) / len(ordered),
    }
    return {key: round(value, 1) for key, value in stats.items()}


async def send_burst(
    public: PublicListener, ssl_context: ssl.SSLContext, request: BurstRequest
) -> dict[str, Any]:
    """Send the burst; the answer as ``POST /api/burst`` serves it."""
    url = public.https_url + request.route
    statuses: Counter[int] = Counter()
    task_ids: Counter[str] = Counter()
    bodies: Counter[str] = Counter()
    latencies: list[float] = []
    errors: list[str] = []
    connector = aiohttp.TCPConnector(ssl=ssl_context, limit=1)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        for _ in range(request.count):
            began = time.perf_counter()
            try:
                async with session.get(
                    url,
                    headers=public.headers(),
                    server_hostname=public.server_name,
                    allow_redirects=False,
                ) as response:
                    body = (await response.text(errors="replace")).strip()
            except (aiohttp.ClientError, OSError, TimeoutError) as err:
                errors.append(f"{type(err).__name__}: {err}".rstrip(": "))
                continue
            latencies.append((time.perf_counter() - began) * 1000)
            statuses[response.status] += 1
            match = TASK_ID.match(body)
            if response.status == 200 and match:
                task_ids[match.group(1)] += 1
            elif response.status == 200:
                bodies[body[:80]] += 1
            else:
                errors.append(f"{response.status} {response.reason}: {body[:200]}")
    ok = statuses[200]
    return {
        "route": request.route,
        "url": url,
        "count": request.count,
        "ok": ok,
        "failed": request.count - ok,
        "statuses": {str(code): n for code, n in sorted(statuses.items())},
        "latency_ms": latency_statistics(latencies),
        "task_ids": dict(task_ids.most_common()),
        "answers": dict(bodies.most_common()),
        "errors": errors[:KEPT_ERRORS],
        "seconds": round(time.perf_counter() - started, 3),
    }
