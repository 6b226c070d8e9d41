"""What the demo calls: the public HTTPS listener, and a sample request per rule.

For point 6 every rule of the listener gets a request that all its conditions match
(`samples`), plus one that no rule matches, for the default action.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fargo.spec import Spec
from fargo.spec.elb import Listener, ListenerRule, Request
from fargo.spec.routing import condition_matches, decide


@dataclass(frozen=True)
class PublicListener:
    """The HTTPS listener the demo calls, and the HTTP one beside it (if any)."""

    https_url: str
    listener: Listener
    http_url: str = ""
    http_listener: Listener | None = None
    # The certificate's name, when the URL's host is not it (an ALB's own DNS name): sent
    # as the Host header and the TLS server name.
    server_name: str | None = None

    def headers(self) -> dict[str, str]:
        """Headers every request to the listener carries."""
        return {"Host": self.server_name} if self.server_name else {}


def public_listener(spec: Spec, urls: dict[str, list[str]]) -> PublicListener | None:
    """The first HTTPS listener, internet-facing load balancers first."""
    ordered = sorted(
        spec.load_balancers.items(), key=lambda item: item[1].scheme != "internet-facing"
    )
    for name, lb in ordered:
        pairs = list(zip(lb.listeners, urls.get(name, []), strict=False))
        https = next(((lst, url) for lst, url in pairs if lst.protocol == "HTTPS"), None)
        if https is None:
            continue
        http = next(((lst, url) for lst, url in pairs if lst.protocol == "HTTP"), None)
        return PublicListener(
            https_url=https[1],
            listener=https[0],
            http_url=http[1] if http else "",
            http_listener=http[0] if http else None,
        )
    return None


@dataclass(frozen=True)
class Sample:
    """A request made to match one rule (or none: the default action)."""

    for_rule: int | None
    request: Request


def samples(
    listener: Listener, token: str, host: str = "localhost", source_ip: str | None = None
) -> tuple[list[Sample], list[dict[str, Any]]]:
    """A request per rule that its conditions match, plus one for the default action.

    Returns the samples and the rules no request could be made for (with the reason).
    """
    made: list[Sample] = []
    unmade: list[dict[str, Any]] = []
    for rule in listener.rules_by_priority():
        request = _sample_request(rule, token, host, source_ip)
        if isinstance(request, str):
            unmade.append({"rule": rule.priority, "reason": request})
        else:
            made.append(Sample(rule.priority, request))
    default = Request(path=f"/fargo-demo-{token}-default", host=host)
    if decide(listener, default).priority is None:
        made.append(Sample(None, default))
    else:
        unmade.append({"rule": "default", "reason": f"{default.path} matches a rule"})
    return made, unmade


def _sample_request(
    rule: ListenerRule, token: str, host: str, source_ip: str | None
) -> Request | str:
    """A request every condition of the rule matches, or why none can be made here."""
    method, path, query = "GET", f"/fargo-demo-{token}", ""
    headers: list[tuple[str, str]] = []
    for condition in rule.conditions:
        if condition.path_pattern:
            path = _fill(condition.path_pattern[0], f"fargo-demo-{token}")
        elif condition.host_header:
            host = _fill(condition.host_header[0], "demo")
        elif condition.http_header is not None:
            header = condition.http_header
            headers.append((header.name, _fill(header.values[0], "demo")))
        elif condition.http_request_method:
            method = condition.http_request_method[0]
        elif condition.query_string:
            pair = condition.query_string[0]
            key = _fill(pair.key, "demo") if pair.key else "fargo-demo"
            query = f"{quote(key)}={quote(_fill(pair.value, 'demo'))}"
        elif condition.source_ip and (
            source_ip is None or not condition_matches(condition, Request(source_ip=source_ip))
        ):
            return f"needs a request from {', '.join(condition.source_ip)}"
    return Request(method=method, path=path, query=query, host=host, headers=tuple(headers))


def _fill(pattern: str, filler: str) -> str:
    """A value the ALB pattern matches: ``*`` → filler, ``?`` → ``x``; ``\\*`` stays literal."""
    out: list[str] = []
    escaped = False
    for char in pattern:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "*":
            out.append(filler)
        elif char == "?":
            out.append("x")
        else:
            out.append(char)
    return "".join(out)
