"""``fargo demo`` point 6: the load balancer routes by rules.

A request per rule of the public HTTPS listener (and one for its default action); each
answer is checked against the rule's action, and a forward against the task logs of the
target groups' services: the task that logged the request answered it.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from fargo.local.demo.report import Point
from fargo.local.demo.requests import PublicListener, Sample, samples
from fargo.local.status import TwinStatus
from fargo.spec import Spec
from fargo.spec.routing import Decision, decide

# The services log a request within their flush interval (service_kit: 0.2 s).
LOG_WAIT_SECONDS = 2.0
# A forward to a target group without targets: the ALB answers 503.
NO_TARGETS_STATUS = 503
ALB_ERROR_STATUSES = frozenset({502, 503, 504})


async def check_rules(
    point: Point,
    spec: Spec,
    status: TwinStatus,
    session: aiohttp.ClientSession,
    public: PublicListener,
) -> Point:
    host = urlsplit(public.https_url).hostname or "localhost"
    made, unmade = samples(public.listener, secrets.token_hex(4), host)
    routed = []
    for sample in made:
        decision = decide(public.listener, sample.request)
        routed.append(await _route_one(sample, decision, spec, status, session, public.https_url))
    return point.done(
        all(r["passed"] for r in routed),
        listener=f"{public.listener.protocol}:{public.listener.port} ({public.https_url})",
        requests=routed,
        **({"rules_not_sampled": unmade} if unmade else {}),
    )


async def _route_one(
    sample: Sample,
    decision: Decision,
    spec: Spec,
    status: TwinStatus,
    session: aiohttp.ClientSession,
    base_url: str,
) -> dict[str, Any]:
    request = sample.request
    target = request.path + (f"?{request.query}" if request.query else "")
    headers = dict(request.headers)
    if request.host != urlsplit(base_url).hostname:
        headers["Host"] = request.host
    logs = _task_logs(status)
    offsets = {path: _size(path) for path in logs}
    async with session.request(
        request.method, base_url + target, headers=headers, allow_redirects=False
    ) as response:
        body = (await response.text())[:200]
        answer_status = response.status
        location = response.headers.get("Location")
    result: dict[str, Any] = {
        "for_rule": "default" if sample.for_rule is None else sample.for_rule,
        "request": f"{request.method} {target}"
        + (f" (Host: {request.host})" if "Host" in headers else "")
        + "".join(f" ({k}: {v})" for k, v in request.headers),
        "rule": decision.describe(),
        "status": answer_status,
        "body": body.split("\n")[0][:80],
    }
    action = decision.action
    if action.fixed_response is not None:
        fixed = action.fixed_response
        result["passed"] = (
            answer_status == fixed.status_code
            and body.strip() == (fixed.message_body.strip()[:200])
        )
    elif action.redirect is not None:
        expected = int(action.redirect.status_code.removeprefix("HTTP_"))
        result["location"] = location
        result["passed"] = answer_status == expected and bool(location)
    else:
        groups = [group for group, _ in decision.target_groups]
        result.update(
            await _answered_by(spec, status, groups, logs, offsets, request.path, answer_status)
        )
    return result


async def _answered_by(
    spec: Spec,
    status: TwinStatus,
    groups: list[str],
    logs: dict[Path, str],
    offsets: dict[Path, int],
    path: str,
    answer_status: int,
) -> dict[str, Any]:
    """Which task's log shows the request: one of the target groups' services, or not."""
    expected = sorted({n for n, s in spec.services.items() if set(s.target_groups) & set(groups)})
    described = status.load_balancers.target_groups
    targets = sum(len(described[g].targets) for g in groups if g in described)
    if targets == 0:
        return {
            "expected": f"{NO_TARGETS_STATUS} (no target registered in {', '.join(groups)})",
            "passed": answer_status == NO_TARGETS_STATUS,
        }
    deadline = time.monotonic() + LOG_WAIT_SECONDS
    needle = path.encode()
    while True:
        for log, task in logs.items():
            if needle in _read_from(log, offsets[log]):
                service = log.parent.name
                return {
                    "expected": f"a task of {', '.join(expected)}",
                    "answered_by": task,
                    "passed": service in expected and answer_status not in ALB_ERROR_STATUSES,
                }
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.1)
    return {
        "expected": f"a task of {', '.join(expected)}",
        "answered_by": "unknown: no task logged the request (does the service log requests?)",
        "passed": answer_status not in ALB_ERROR_STATUSES,
    }


def _task_logs(status: TwinStatus) -> dict[Path, str]:
    """Every task's log file → ``service/task-id``."""
    return {
        task.log: f"{service.name}/{task.id}"
        for service in status.services
        for task in service.tasks
    }


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            return handle.read()
    except OSError:
        return b""
