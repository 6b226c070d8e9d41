"""Point 6: the load balancer routes by rules.

A request per rule of the public HTTPS listener (and one for its default action); each
answer is checked against the rule's action, and a forward against the services'
request logs (`fargo.demo.world.RequestLog`): the task that logged the request
answered it, and it belongs to one of the target groups' services.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from fargo.demo.report import Point
from fargo.demo.requests import PublicListener, Sample, samples
from fargo.demo.world import RequestLog, World
from fargo.spec import Spec
from fargo.spec.routing import Decision, decide

# A forward to a target group without targets: the ALB answers 503.
NO_TARGETS_STATUS = 503
ALB_ERROR_STATUSES = frozenset({502, 503, 504})


async def check_rules(
    point: Point,
    spec: Spec,
    world: World,
    session: aiohttp.ClientSession,
    public: PublicListener,
) -> Point:
    host = public.server_name or urlsplit(public.https_url).hostname or "localhost"
    made, unmade = samples(public.listener, secrets.token_hex(4), host, world.source_ip)
    routed = []
    for sample in made:
        decision = decide(public.listener, sample.request)
        routed.append(await _route_one(sample, decision, spec, world, session, public))
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
    world: World,
    session: aiohttp.ClientSession,
    public: PublicListener,
) -> dict[str, Any]:
    request = sample.request
    target = request.path + (f"?{request.query}" if request.query else "")
    headers = public.headers() | dict(request.headers)
    url_host = public.server_name or urlsplit(public.https_url).hostname
    if request.host != url_host:
        headers["Host"] = request.host
    log = world.request_log()
    await log.mark()
    async with session.request(
        request.method,
        public.https_url + target,
        headers=headers,
        server_hostname=public.server_name,
        allow_redirects=False,
    ) as response:
        body = (await response.text())[:200]
        answer_status = response.status
        location = response.headers.get("Location")
    result: dict[str, Any] = {
        "for_rule": "default" if sample.for_rule is None else sample.for_rule,
        "request": f"{request.method} {target}"
        + (f" (Host: {request.host})" if request.host != url_host else "")
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
        result.update(await _answered_by(spec, world, log, groups, request.path, answer_status))
    return result


async def _answered_by(
    spec: Spec, world: World, log: RequestLog, groups: list[str], path: str, answer_status: int
) -> dict[str, Any]:
    """Which task logged the request: one of the target groups' services, or not."""
    expected = sorted({n for n, s in spec.services.items() if set(s.target_groups) & set(groups)})
    if world.registered_targets(groups) == 0:
        return {
            "expected": f"{NO_TARGETS_STATUS} (no target registered in {', '.join(groups)})",
            "passed": answer_status == NO_TARGETS_STATUS,
        }
    found = await log.find(path)
    if found is None:
        return {
            "expected": f"a task of {', '.join(expected)}",
            "answered_by": "unknown: no task logged the request (does the service log requests?)",
            "passed": answer_status not in ALB_ERROR_STATUSES,
        }
    service, task = found
    return {
        "expected": f"a task of {', '.join(expected)}",
        "answered_by": f"{service}/{task}",
        "passed": service in expected and answer_status not in ALB_ERROR_STATUSES,
    }
