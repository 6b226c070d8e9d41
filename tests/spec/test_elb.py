"""Load balancer models (fargo.spec.elb): TLS, actions, conditions, health checks."""

from __future__ import annotations

import pytest

from fargo.spec import HealthCheck, parse_spec
from fargo.spec.defaults import TLS_POLICY

CONDITION_FIELDS = (
    "path_pattern, host_header, http_header, http_request_method, query_string, source_ip"
)
LISTENER = "load_balancers.edge.listeners"

INVALID = {
    "HTTPS listener without a certificate": (
        "    certificate: {domain: shop.example.com}\n",
        "",
        "load_balancers.edge",
        "edge:",
        "an HTTPS listener needs a certificate on its load balancer",
    ),
    "weak TLS policy": (
        "ssl_policy: ELBSecurityPolicy-TLS13-1-2-2021-06",
        "ssl_policy: ELBSecurityPolicy-2016-08",
        f"{LISTENER}[0].ssl_policy",
        "ssl_policy:",
        "ssl_policy 'ELBSecurityPolicy-2016-08' allows TLS older than 1.2 or is unknown; "
        f"use {TLS_POLICY!r}",
    ),
    "TLS policy on an HTTP listener": (
        "        protocol: HTTP\n",
        f"        protocol: HTTP\n        ssl_policy: {TLS_POLICY}\n",
        f"{LISTENER}[1]",
        "port: 80",
        "ssl_policy applies to HTTPS listeners only",
    ),
    "action with two types": (
        "default_action: {forward: web}",
        "default_action: {forward: web, fixed_response: {status_code: 503}}",
        f"{LISTENER}[0].default_action",
        "default_action:",
        "an action takes exactly one of forward, redirect, fixed_response; "
        "found forward, fixed_response",
    ),
    "action with no type": (
        "default_action: {forward: web}",
        "default_action: {}",
        f"{LISTENER}[0].default_action",
        "default_action:",
        "an action takes exactly one of forward, redirect, fixed_response; found none",
    ),
    "condition with none": (
        '- path_pattern: ["/api/*"]',
        "- {}",
        f"{LISTENER}[0].rules[0].conditions[0]",
        "{}\n            action",
        f"a condition takes exactly one of {CONDITION_FIELDS}; found none",
    ),
    "condition with two": (
        '- path_pattern: ["/api/*"]',
        '- {path_pattern: ["/api/*"], host_header: [api.example.com]}',
        f"{LISTENER}[0].rules[0].conditions[0]",
        "{path_pattern",
        f"a condition takes exactly one of {CONDITION_FIELDS}; found path_pattern, host_header",
    ),
    "fixed response with a redirect status": (
        "default_action: {forward: web}",
        "default_action: {fixed_response: {status_code: 302}}",
        f"{LISTENER}[0].default_action.fixed_response.status_code",
        "status_code: 302",
        "status 302: ALB fixed responses are 2XX, 4XX or 5XX; use a redirect action",
    ),
    "health check matcher with a 5XX code": (
        "health_check: {path: /health}",
        'health_check: {path: /health, matcher: "200-503"}',
        "target_groups.api.health_check.matcher",
        "matcher:",
        "matcher '200-503': ALB accepts codes 200 to 499",
    ),
    "health check timeout not below its interval": (
        "health_check: {path: /health}",
        "health_check: {path: /health, interval: 5, timeout: 5}",
        "target_groups.api.health_check",
        "health_check:",
        "timeout (5s) must be smaller than interval (5s)",
    ),
}


@pytest.mark.parametrize(
    ("old", "new", "field", "at", "message"), INVALID.values(), ids=INVALID.keys()
)
def test_invalid_load_balancer_setting(
    shop, old: str, new: str, field: str, at: str, message: str
) -> None:
    bad = shop.edit(old, new)

    assert bad.rendered() == [f"shop.yaml:{bad.at(at)}: {field}: {message}"]


def test_https_listener_without_a_policy_gets_the_modern_default(shop) -> None:
    spec = parse_spec(
        shop.edit("        ssl_policy: ELBSecurityPolicy-TLS13-1-2-2021-06\n", "").text
    )

    https, http = spec.load_balancers["edge"].listeners
    assert https.ssl_policy == TLS_POLICY == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert http.ssl_policy is None


@pytest.mark.parametrize(
    ("matcher", "healthy", "unhealthy"),
    [
        ("200", [200], [201, 204, 500]),
        ("200,204", [200, 204], [201, 302]),
        ("200-299", [200, 250, 299], [199, 300]),
    ],
)
def test_health_check_matcher(matcher: str, healthy: list[int], unhealthy: list[int]) -> None:
    check = HealthCheck(matcher=matcher)

    assert [check.matches(code) for code in healthy] == [True] * len(healthy)
    assert [check.matches(code) for code in unhealthy] == [False] * len(unhealthy)
