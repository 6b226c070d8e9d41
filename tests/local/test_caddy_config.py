"""Rendering the spec's load balancers to Caddy JSON (pure; real Caddy is in test_elb.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from tests.local.conftest import balancer_spec

from fargo.local.caddy import config as caddy_config
from fargo.local.caddy.conditions import condition_matcher
from fargo.local.caddy.forward import DynamicTargets, bucket_bounds, hex_range_pattern
from fargo.local.caddy.tls import tls_connection_policy
from fargo.local.ec2.hostport import host_port

UNAVAILABLE = Path("/state/caddy/unavailable.sock")
CERT = (Path("/state/certs/certificate.pem"), Path("/state/certs/private-key.pem"))


def mapped(load_balancer: str, port: int) -> int:
    return port + 8000 if port < 1024 else port


def spec_with(load_balancers: str, target_groups: str = "  a: {}\n  b: {}\n") -> Any:
    return balancer_spec("rendertest", load_balancers, target_groups)


def one_http_listener(default_action: str) -> Any:
    """``public`` with one HTTP:80 listener; ``default_action`` is YAML under its key."""
    return spec_with(
        f"""
  public:
    scheme: internet-facing
    listeners:
      - port: 80
        protocol: HTTP
        default_action:{default_action}"""
    )


def render(
    spec: Any,
    routable: dict[str, list[str]] | None = None,
    dynamic: dict[str, DynamicTargets] | None = None,
) -> dict[str, Any]:
    return caddy_config.render(
        spec,
        bind={name: "127.0.0.1" for name in spec.load_balancers},
        listener_port=mapped,
        routable=routable or {},
        certificate=CERT,
        tls_server_name="fargo.example.com",
        unavailable_socket=UNAVAILABLE,
        dynamic=dynamic,
        resolver="udp/127.0.0.1:5353" if dynamic else None,
    )


REFERENCE = """
  public:
    scheme: internet-facing
    certificate: {domain: fargo.example.com}
    listeners:
      - port: 443
        protocol: HTTPS
        default_action: {forward: a}
        rules:
          - priority: 7
            conditions: [{path_pattern: ["/late/*"]}]
            action: {forward: b}
          - priority: 1
            conditions: [{path_pattern: ["/api/*"]}]
            action: {forward: b}
      - port: 80
        protocol: HTTP
        default_action:
          redirect: {protocol: HTTPS, port: "443", status_code: HTTP_301}
"""


def servers(config: dict[str, Any]) -> dict[str, Any]:
    return config["apps"]["http"]["servers"]  # type: ignore[no-any-return]


def default_handler(
    spec: Any,
    server: str,
    routable: dict[str, list[str]] | None = None,
    dynamic: dict[str, DynamicTargets] | None = None,
) -> dict[str, Any]:
    """The first handler of ``server``'s last route: its listener's default action."""
    routes = servers(render(spec, routable, dynamic))[server]["routes"]
    return routes[-1]["handle"][0]  # type: ignore[no-any-return]


def test_one_server_per_listener_on_the_mapped_port_of_its_address() -> None:
    config = render(spec_with(REFERENCE))
    assert set(servers(config)) == {"public-443", "public-80", caddy_config.UNAVAILABLE_SERVER}
    assert servers(config)["public-443"]["listen"] == ["127.0.0.1:8443"]
    assert servers(config)["public-80"]["listen"] == ["127.0.0.1:8080"]
    assert servers(config)[caddy_config.UNAVAILABLE_SERVER]["listen"] == [f"unix/{UNAVAILABLE}"]
    json.dumps(config)  # all of it is JSON


def test_ipv6_listen_addresses_are_bracketed() -> None:
    assert host_port("::1", 8443) == "[::1]:8443"


def test_rules_in_priority_order_then_the_default_action() -> None:
    routes = servers(render(spec_with(REFERENCE), {"a": ["127.0.1.1:80"], "b": ["127.0.1.2:80"]}))[
        "public-443"
    ]["routes"]
    prelude, first, second, default = routes
    assert "match" not in prelude and not prelude.get("terminal")
    assert first["match"] == [{"path_regexp": {"pattern": r"(?s)^(?:\/api\/.*)$"}}]
    assert second["match"] == [{"path_regexp": {"pattern": r"(?s)^(?:\/late\/.*)$"}}]
    assert "match" not in default and default["terminal"]
    assert default["handle"][0]["upstreams"] == [{"dial": "127.0.1.1:80"}]


def test_https_listener_tls_policy_certificate_and_no_automatic_https() -> None:
    config = render(spec_with(REFERENCE))
    server = servers(config)["public-443"]
    assert server["automatic_https"] == {"disable": True}
    assert server["protocols"] == ["h1", "h2"]  # no HTTP/3
    (policy,) = server["tls_connection_policies"]
    assert policy["protocol_min"] == "tls1.2"
    assert all("GCM" in suite and "ECDHE" in suite for suite in policy["cipher_suites"])
    assert policy["default_sni"] == policy["fallback_sni"] == "fargo.example.com"
    (loaded,) = config["apps"]["tls"]["certificates"]["load_files"]
    assert loaded["certificate"] == str(CERT[0]) and loaded["key"] == str(CERT[1])
    assert "tls_connection_policies" not in servers(config)["public-80"]


def test_tls13_only_policy() -> None:
    policy = tls_connection_policy("ELBSecurityPolicy-TLS13-1-3-2021-06", None)
    assert policy["protocol_min"] == "tls1.3" and "cipher_suites" not in policy


def test_forward_sets_alb_headers_and_timeouts() -> None:
    spec = spec_with(REFERENCE)
    proxy = default_handler(spec, "public-443", {"a": ["127.0.1.1:80", "127.0.1.3:80"]})
    assert proxy["handler"] == "reverse_proxy"
    balancing = proxy["load_balancing"]
    assert balancing["selection_policy"] == {"policy": "round_robin"}
    assert balancing["retries"] == 2  # failed dials only:
    assert balancing["retry_match"] == [{"expression": "false"}]
    request = proxy["headers"]["request"]
    assert request["set"]["X-Forwarded-Proto"] == ["https"]
    assert request["set"]["X-Forwarded-Port"] == ["443"]
    assert "X-Forwarded-Host" in request["delete"] and "Via" in request["delete"]
    assert proxy["transport"]["response_header_timeout"] == "60s"  # the idle timeout
    keep_alive = proxy["transport"]["keep_alive"]  # the idle timeout on the target side too,
    assert keep_alive["idle_timeout"] == "60s"  # with Caddy's other defaults kept
    assert (keep_alive["max_idle_conns_per_host"], keep_alive["probe_interval"]) == (32, "30s")
    assert proxy["transport"]["dial_timeout"] == "10s"
    assert "rewrite" not in proxy  # the full path goes to the target


def test_forward_without_routable_targets_answers_503() -> None:
    handler = default_handler(spec_with(REFERENCE), "public-443")
    assert handler["handler"] == "static_response" and handler["status_code"] == 503
    assert "503 Service Temporarily Unavailable" in handler["body"]


def test_redirect_to_the_mapped_https_port() -> None:
    redirect = default_handler(spec_with(REFERENCE), "public-80")
    assert redirect["status_code"] == 301
    assert redirect["headers"]["Location"] == [
        "https://{http.request.host}:8443/{fargo.redirect_path}{fargo.redirect_query}"
    ]


def test_redirect_templates_and_literal_braces() -> None:
    spec = one_http_listener(
        """
          redirect:
            host: "docs.example.com"
            port: "#{port}"
            path: "/v2/#{path}"
            query: "from=#{host}&x={y}"
            status_code: HTTP_302
"""
    )
    redirect = default_handler(spec, "public-80")
    assert redirect["status_code"] == 302
    assert redirect["headers"]["Location"] == [
        "http://docs.example.com:8080/v2/{fargo.redirect_path}?from={http.request.host}&x=\\{y\\}"
    ]


def test_fixed_response_escapes_placeholders() -> None:
    spec = one_http_listener(
        """
          fixed_response:
            {status_code: 404, content_type: application/json, message_body: '{"a": 1}'}
"""
    )
    handler = default_handler(spec, "public-80")
    assert handler == {
        "handler": "static_response",
        "status_code": 404,
        "headers": {"Content-Type": ["application/json"]},
        "body": '\\{"a": 1\\}',
    }


def test_weighted_forward_picks_a_group_by_weight_and_looks_its_targets_up() -> None:
    spec = one_http_listener(
        """
          forward: {target_groups: [{target_group: a, weight: 3}, {target_group: b, weight: 1}]}
"""
    )
    lookups = {"a": DynamicTargets("a.targets.fargo.", 80)}
    pick = default_handler(spec, "public-80", {"a": ["127.0.1.1:80"], "b": []}, lookups)
    assert pick["handler"] == "subroute"
    to_a, to_b = pick["routes"]
    # a: buckets 0..3071 of 4096 (000-bff), its targets looked up; b: the rest, no target
    assert to_a["match"] == [
        {"vars_regexp": {"{http.request.uuid}": {"pattern": "^(?:[0-9ab][0-9a-f][0-9a-f])"}}}
    ]
    assert to_a["handle"][0]["dynamic_upstreams"]["name"] == "a.targets.fargo."
    assert "match" not in to_b
    assert to_b["handle"][0]["upstreams"] == [{"dial": f"unix/{UNAVAILABLE}"}]
    # targets coming and going change nothing in the config: no config load
    again = default_handler(spec, "public-80", {"a": ["127.0.1.2:80", "127.0.1.3:80"]}, lookups)
    assert again == pick


@pytest.mark.parametrize(("low", "high"), [(0, 4096), (0, 1), (5, 6), (3072, 4096), (17, 3001)])
def test_a_hex_range_pattern_matches_exactly_its_range(low: int, high: int) -> None:
    pattern = re.compile(hex_range_pattern(low, high, digits=3))
    matched = [n for n in range(4096) if pattern.match(f"{n:03x}-rest")]
    assert matched == list(range(low, high))
    assert not pattern.match("A00") and not pattern.match(":00")  # hex digits only


def test_weights_split_the_buckets_in_proportion() -> None:
    assert bucket_bounds([3, 1]) == [0, 3072, 4096]
    assert bucket_bounds([1, 1, 1]) == [0, 1365, 2731, 4096]


CONDITIONS = """
  public:
    scheme: internet-facing
    listeners:
      - port: 80
        protocol: HTTP
        default_action: {forward: a}
        rules:
          - priority: 1
            conditions:
              - host_header: ["*.example.com"]
              - http_header: {name: X-Env, values: ["canary*"]}
              - http_header: {name: X-Other, values: ["1"]}
              - http_header: {name: X-Env, values: ["*blue"]}
              - query_string: [{key: version, value: "v?"}]
            action: {forward: b}
          - priority: 2
            conditions:
              - http_request_method: [POST]
              - source_ip: ["192.0.2.0/24"]
              - query_string: [{value: debug}]
              - query_string: [{key: "a*", value: "*"}]
            action: {forward: b}
"""


def test_conditions_are_anded_in_one_matcher_set() -> None:
    routes = servers(render(spec_with(CONDITIONS)))["public-80"]["routes"]
    (first,) = routes[1]["match"]
    assert first["vars_regexp"] == {
        # ALB matches a fully qualified name (trailing dot) like the name without it
        "{http.request.host}": {"pattern": r"(?is)^(?:.*\.example\.com)\.?$"}
    }
    # distinct headers share header_regexp (which ANDs its fields)
    assert first["header_regexp"] == {
        "X-Env": {"pattern": "(?is)^(?:canary.*)$"},
        "X-Other": {"pattern": "(?is)^(?:1)$"},
    }
    # the second X-Env condition and the query go one level down: not(not(...)) is AND
    deeper = first["not"][0]["not"][0]
    assert deeper["header_regexp"] == {"X-Env": {"pattern": "(?is)^(?:.*blue)$"}}
    assert "{http.request.uri.query}" in deeper["vars_regexp"]


def test_two_query_conditions_are_not_ored_by_vars_regexp() -> None:
    routes = servers(render(spec_with(CONDITIONS)))["public-80"]["routes"]
    (second,) = routes[2]["match"]
    assert second["remote_ip"] == {"ranges": ["192.0.2.0/24"]}
    assert second["method"] == ["POST"]
    assert len(second["vars_regexp"]) == 1
    assert len(second["not"][0]["not"][0]["vars_regexp"]) == 1


def test_path_regexp_is_case_sensitive_and_escaped() -> None:
    matcher = condition_matcher(parse_spec_condition({"path_pattern": ["/A.b+c/*", "/x?"]}))
    pattern = matcher["path_regexp"]["pattern"]
    assert pattern == r"(?s)^(?:\/A\.b\+c\/.*|\/x.)$"
    assert re.fullmatch(pattern.replace("^", "").replace("$", ""), "/A.b+c/deep/er")
    assert not re.search(pattern, "/a.b+c/deep")


def parse_spec_condition(data: dict[str, Any]) -> Any:
    from fargo.spec.elb import RuleCondition

    return RuleCondition.model_validate(data)


def test_prelude_sets_server_header_and_trace_placeholders() -> None:
    prelude = servers(render(spec_with(REFERENCE)))["public-443"]["routes"][0]["handle"]
    assert prelude[0] == {"handler": "headers", "response": {"set": {"Server": ["awselb/2.0"]}}}
    assert prelude[1]["response"] == {"delete": ["Via"], "deferred": True}
    maps = {h["source"]: h for h in prelude if h["handler"] == "map"}
    assert "{http.request.uuid}" in maps and "{http.request.header.X-Amzn-Trace-Id}" in maps


def test_errors_answer_with_an_alb_page() -> None:
    server = servers(render(spec_with(REFERENCE)))["public-443"]
    unavailable_route, error_route = server["errors"]["routes"]
    handler = error_route["handle"][0]
    assert handler["status_code"] == "{http.error.status_code}"
    assert handler["headers"]["Server"] == ["awselb/2.0"]
    # failing to reach the internal 503 server is still ALB's 503 (tests/local/test_elb.py)
    assert unavailable_route["handle"][0]["status_code"] == 503
    assert unavailable_route["handle"][0]["headers"]["Server"] == ["awselb/2.0"]


def test_no_tls_app_without_https_listeners() -> None:
    spec = spec_with(
        """
  internal:
    scheme: internal
    listeners:
      - port: 8090
        protocol: HTTP
        default_action: {forward: a}
"""
    )
    assert "tls" not in render(spec)["apps"]
    assert servers(render(spec))["internal-8090"]["listen"] == ["127.0.0.1:8090"]


def test_forward_to_a_looked_up_group_carries_no_targets() -> None:
    spec = spec_with(REFERENCE)
    config = caddy_config.render(
        spec,
        bind={"public": "127.0.0.1"},
        listener_port=mapped,
        routable={"a": ["127.0.1.1:80"], "b": []},
        certificate=CERT,
        tls_server_name=None,
        unavailable_socket=UNAVAILABLE,
        listener_fds={"public-443": [7]},
        dynamic={"a": DynamicTargets("a.targets.fargo.", 80)},
        resolver="udp/127.0.0.1:5353",
    )
    server = servers(config)["public-443"]
    assert server["listen"] == ["fd/7"]  # an inherited socket
    assert servers(config)["public-80"]["listen"] == ["127.0.0.1:8080"]
    proxy = server["routes"][-1]["handle"][0]
    assert proxy["dynamic_upstreams"] == {
        "source": "a",
        "name": "a.targets.fargo.",
        "port": "80",
        "refresh": "100ms",
        "resolver": {"addresses": ["udp/127.0.0.1:5353"]},
        "dial_timeout": "1s",
        "versions": {"ipv4": True},
    }
    # only when the lookup finds nothing: the 503 server
    assert proxy["upstreams"] == [{"dial": f"unix/{UNAVAILABLE}"}]
    # b is not looked up: its (empty) list is in the config
    assert server["routes"][1]["handle"][0]["status_code"] == 503
