"""Cross-checks (fargo.spec.checks): each kind of inconsistency, located in the file."""

from __future__ import annotations

from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Case:
    old: str
    new: str
    field: str  # the field path the error names
    at: str  # text in the edited file where the error points
    message: str
    hint: str | None = None


LISTENER = "load_balancers.edge.listeners"
RULE = f"{LISTENER}[0].rules[0]"
EXTRA_RULE = """            action: {forward: api}
          - {priority: 10, conditions: [{path_pattern: ["/v2/*"]}], action: {forward: web}}
"""

CASES = {
    "rule forwards to an unknown target group": Case(
        "action: {forward: api}",
        "action: {forward: apx}",
        f"{RULE}.action.forward",
        "forward: apx",
        "no target group named 'apx'",
        "did you mean 'api'?",
    ),
    "weighted forward to an unknown target group": Case(
        "default_action: {forward: web}",
        "default_action: {forward: {target_groups: [{target_group: web}, "
        "{target_group: wbe, weight: 2}]}}",
        f"{LISTENER}[0].default_action.forward.target_groups[1].target_group",
        "target_group: wbe",
        "no target group named 'wbe'",
        "did you mean 'web'?",
    ),
    "service registers in an unknown target group": Case(
        "target_groups: [web]",
        "target_groups: [storefront]",
        "services.web.target_groups[0]",
        "storefront]",
        "no target group named 'storefront'",
        "known: api, web",
    ),
    "service registers in an unknown discovery service": Case(
        "discovery: api.internal",
        "discovery: api.intern",
        "services.api.discovery",
        "discovery: api.intern",
        "no discovery service named 'api.intern'",
        "did you mean 'api.internal'?",
    ),
    "service uses an unknown image": Case(
        "image: api",
        "image: apj",
        "services.api.image",
        "image: apj",
        "no image named 'apj'",
        "did you mean 'api'?",
    ),
    "service calls an unknown service": Case(
        "    image: web\n",
        "    image: web\n    calls: [api, edge, nowhere]\n",
        "services.web.calls[2]",
        "nowhere]",
        "no service or load balancer named 'nowhere'",
        "known: api, edge, web",
    ),
    "duplicate rule priorities on a listener": Case(
        "            action: {forward: api}\n",
        EXTRA_RULE,
        f"{LISTENER}[0].rules[1].priority",
        "priority: 10,",
        "priority 10 is already used by rule 0 of this listener",
        "priorities on a listener must be unique",
    ),
    "path pattern longer than 128 characters": Case(
        '["/api/*"]',
        '["/api/' + "a" * 124 + '"]',
        f"{RULE}.conditions[0].path_pattern[0]",
        '"/api/a',
        "path pattern is 129 characters; ALB allows 128",
    ),
    "path pattern with characters ALB refuses": Case(
        '["/api/*"]',
        '["/api/<v1> x"]',
        f"{RULE}.conditions[0].path_pattern[0]",
        '"/api/<v1> x"',
        "path pattern '/api/<v1> x' has characters ALB refuses: ' ' '<' '>'",
        "allowed: A-Z a-z 0-9 _ - . $ / ~ \" ' @ : + & * ?",
    ),
    "more condition values than ALB allows in a rule": Case(
        '- path_pattern: ["/api/*"]\n',
        '- path_pattern: ["/a", "/b", "/c"]\n'
        "              - http_header: {name: X-Version, values: [a, b, c]}\n",
        f"{RULE}.conditions",
        "conditions:",
        "6 condition values; ALB allows 5 per rule",
    ),
    "more values than ALB allows in one condition": Case(
        '["/api/*"]',
        '["/a", "/b", "/c", "/d"]',
        f"{RULE}.conditions[0].path_pattern",
        "path_pattern:",
        "4 values in one path_pattern condition; ALB allows 3 per condition",
        "spread them over rules with the same action",
    ),
    "more wildcards than ALB allows in a rule": Case(
        '- path_pattern: ["/api/*"]\n',
        '- path_pattern: ["/a*/*", "/b?/*"]\n'
        '              - host_header: ["*.shop.example.com"]\n'
        '              - query_string: [{key: "v\\\\*", value: "*"}]\n',
        f"{RULE}.conditions",
        "conditions:",
        "6 wildcards ('*' or '?') in the rule's conditions; ALB allows 5 per rule",
        "split the rule in two, or match fewer patterns",
    ),
    "unknown region": Case(
        "region: eu-west-1",
        "region: eu-wset-1",
        "region",
        "region:",
        "'eu-wset-1' is not an AWS Region",
        "did you mean 'eu-west-1'?",
    ),
    "region far from any": Case(
        "region: eu-west-1",
        "region: xx-nowhere-9",
        "region",
        "region:",
        "'xx-nowhere-9' is not an AWS Region",
        "e.g. us-east-1 or eu-west-1 (the list: src/fargo/spec/regions.py)",
    ),
    "VPC CIDR wider than /16": Case(
        "cidr: 10.20.0.0/16",
        "cidr: 10.0.0.0/8",
        "network.cidr",
        "cidr:",
        "VPC CIDR 10.0.0.0/8 is a /8; AWS takes /16 to /28",
        "use a /16 or smaller block, e.g. 10.0.0.0/16",
    ),
    "subnet narrower than /28": Case(
        "public: [10.20.0.0/24,",
        "public: [10.20.0.0/29,",
        "network.subnets.public[0]",
        "10.20.0.0/29",
        "subnet 10.20.0.0/29 is a /29; AWS takes /16 to /28",
        "use a /28 or larger block, e.g. 10.20.0.0/28",
    ),
    "CIDR with host bits set": Case(
        "cidr: 10.20.0.0/16",
        "cidr: 10.20.0.5/16",
        "network.cidr",
        "cidr:",
        "10.20.0.5/16 has host bits set; did you mean 10.20.0.0/16?",
    ),
    "subnet with host bits set": Case(
        "10.20.10.0/24,",
        "10.20.10.7/24,",
        "network.subnets.private[0]",
        "10.20.10.7/24",
        "10.20.10.7/24 has host bits set; did you mean 10.20.10.0/24?",
    ),
    "reference never closed": Case(
        '"http://${lb:edge.dns_name}"',
        '"http://${lb:edge.dns_name/"',
        "services.web.environment.API_URL",
        "API_URL:",
        "'${lb:edge.dns_name/': a reference opened with '${' is never closed",
        "close it with '}', e.g. ${lb:NAME.dns_name}",
    ),
    "redirect to the same URL": Case(
        'redirect: {protocol: HTTPS, port: "443"}',
        'redirect: {protocol: HTTP, port: "80", status_code: HTTP_302}',
        f"{LISTENER}[1].default_action.redirect",
        "redirect:",
        "this redirect keeps the protocol (HTTP), host, port (80) and path: it sends the "
        "client back to the same URL, a redirect loop",
        'change at least one of them, e.g. protocol: HTTPS, port: "443"',
    ),
    "rule redirecting to the same URL": Case(
        "action: {forward: api}",
        "action: {redirect: {query: 'v=2'}}",
        f"{RULE}.action.redirect",
        "redirect:",
        "this redirect keeps the protocol (HTTPS), host, port (443) and path: it sends the "
        "client back to the same URL, a redirect loop",
        "change at least one of them, e.g. path: /new-path or host: www.example.com",
    ),
    "HTTPS rule redirecting to HTTPS on 443": Case(
        "action: {forward: api}",
        'action: {redirect: {protocol: HTTPS, port: "443", status_code: HTTP_302}}',
        f"{RULE}.action.redirect",
        "redirect:",
        "this redirect keeps the protocol (HTTPS), host, port (443) and path: it sends the "
        "client back to the same URL, a redirect loop",
        "change at least one of them, e.g. path: /new-path or host: www.example.com",
    ),
    "HTTP listener redirecting to its own URL": Case(
        'redirect: {protocol: HTTPS, port: "443"}',
        "redirect: {query: 'from=http'}",
        f"{LISTENER}[1].default_action.redirect",
        "redirect:",
        "this redirect keeps the protocol (HTTP), host, port (80) and path: it sends the "
        "client back to the same URL, a redirect loop",
        'change at least one of them, e.g. protocol: HTTPS, port: "443"',
    ),
    "two services claim one discovery name": Case(
        "    target_groups: [web]\n",
        "    target_groups: [web]\n    discovery: api.internal\n",
        "services.api.discovery",
        "discovery: api.internal\n    autoscaling",
        "discovery name 'api.internal' is already claimed by service 'web'",
        "each Cloud Map service belongs to one ECS service",
    ),
    "discovery service defined twice": Case(
        "      ttl: 10\n",
        "      ttl: 10\n    - {name: api.internal}\n",
        "discovery.services[1].name",
        "name: api.internal}",
        "discovery service 'api.internal' is defined twice",
    ),
    "CPU/memory pair Fargate does not offer": Case(
        "memory: 512",
        "memory: 4096",
        "services.api.memory",
        "memory: 4096",
        "Fargate offers no task with 256 CPU units and 4096 MiB",
        "with cpu 256 use memory 512, 1024, 2048",
    ),
    "memory off the step of its CPU size": Case(
        "cpu: 256\n    memory: 512",
        "cpu: 1024\n    memory: 2500",
        "services.api.memory",
        "memory: 2500",
        "Fargate offers no task with 1024 CPU units and 2500 MiB",
        "with cpu 1024 use memory 2048..8192 in steps of 1024",
    ),
    "CPU value Fargate does not offer": Case(
        "cpu: 256",
        "cpu: 300",
        "services.api.cpu",
        "cpu: 300",
        "Fargate offers no task with 300 CPU units",
        "use one of 256, 512, 1024, 2048, 4096, 8192, 16384",
    ),
    "subnet outside the VPC CIDR": Case(
        "10.20.11.0/24]",
        "10.21.11.0/24]",
        "network.subnets.private[1]",
        "10.21.11.0/24",
        "subnet 10.21.11.0/24 is outside the VPC CIDR 10.20.0.0/16",
        "pick a range inside 10.20.0.0/16",
    ),
    "overlapping subnets": Case(
        "10.20.11.0/24]",
        "10.20.1.128/25]",
        "network.subnets.private[1]",
        "10.20.1.128/25",
        "subnet 10.20.1.128/25 overlaps 10.20.1.0/24 (public.1)",
        "subnets must not share addresses",
    ),
    "desired count above the autoscaling bounds": Case(
        "desired_count: 2",
        "desired_count: 5",
        "services.api.desired_count",
        "desired_count: 5",
        "desired_count 5 is outside autoscaling bounds 1..3",
        "raise or lower one of them",
    ),
    "desired count below the autoscaling bounds": Case(
        "desired_count: 2",
        "desired_count: 0",
        "services.api.desired_count",
        "desired_count: 0",
        "desired_count 0 is outside autoscaling bounds 1..3",
        "raise or lower one of them",
    ),
    "listener port used twice": Case(
        "- port: 80\n",
        "- port: 443\n",
        f"{LISTENER}[1].port",
        "port: 443\n        protocol: HTTP\n",
        "port 443 is already used by listener 0 of this load balancer",
    ),
    "reference to an unknown load balancer": Case(
        "${lb:edge.dns_name}",
        "${lb:nope.dns_name}",
        "services.web.environment.API_URL",
        "API_URL:",
        "no load balancer named 'nope'",
        "known: edge",
    ),
    "reference of an unknown kind": Case(
        "${lb:edge.dns_name}",
        "${bucket:edge.dns_name}",
        "services.web.environment.API_URL",
        "API_URL:",
        "${bucket:edge.dns_name}: unknown reference kind 'bucket'",
        "use ${lb:NAME.dns_name}, ${discovery:NAME} or ${service_connect:NAME}",
    ),
    "reference to a load balancer attribute that does not exist": Case(
        "${lb:edge.dns_name}",
        "${lb:edge.arn}",
        "services.web.environment.API_URL",
        "API_URL:",
        "${lb:edge.arn}: load balancers have no attribute 'arn'",
        "use ${lb:NAME.dns_name}",
    ),
    "reference to an unknown discovery service": Case(
        "${lb:edge.dns_name}",
        "${discovery:api.intrenal}",
        "services.web.environment.API_URL",
        "API_URL:",
        "no discovery service named 'api.intrenal'",
        "did you mean 'api.internal'?",
    ),
    "reference to the task's own address, which ECS assigns at launch": Case(
        "${lb:edge.dns_name}",
        "${task:private_ip}",
        "services.web.environment.API_URL",
        "API_URL:",
        "${task:private_ip} has no value when ECS starts the task: the address is "
        "assigned to the task's network interface at launch",
        "read it in the service from the task metadata endpoint "
        "($ECS_CONTAINER_METADATA_URI_V4/task: Containers[0].Networks[0].IPv4Addresses[0])",
    ),
    "two path-pattern conditions in one rule": Case(
        """              - path_pattern: ["/api/*"]
""",
        """              - path_pattern: ["/api/*"]
              - path_pattern: ["/v1/*"]
""",
        f"{RULE}.conditions[1].path_pattern",
        'path_pattern: ["/v1/*"]',
        "a rule takes at most one path_pattern condition (condition 0 is one already)",
        "put all values in one condition: they are OR'ed",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_cross_check_names_file_position_field_and_fix(shop, case: Case) -> None:
    bad = shop.edit(case.old, case.new)

    [problem] = bad.problems()

    assert problem.field_path == case.field
    assert problem.message == case.message
    assert problem.hint == case.hint
    suffix = f" ({case.hint})" if case.hint else ""
    expected = f"shop.yaml:{bad.at(case.at)}: {case.field}: {case.message}{suffix}"
    assert problem.render(bad.name) == expected


def test_subnet_overlapping_two_others_is_reported_against_each(shop) -> None:
    bad = shop.edit("10.20.11.0/24]", "10.20.0.0/23]")

    assert bad.rendered() == [
        f"shop.yaml:{bad.at('10.20.0.0/23')}: network.subnets.private[1]: "
        f"subnet 10.20.0.0/23 overlaps {other} ({where}) (subnets must not share addresses)"
        for other, where in [("10.20.0.0/24", "public.0"), ("10.20.1.0/24", "public.1")]
    ]


def test_path_pattern_of_exactly_128_characters_is_allowed(shop) -> None:
    from fargo.spec import parse_spec

    pattern = "/api/" + "a" * 123
    assert len(pattern) == 128
    spec = parse_spec(shop.edit('["/api/*"]', f'["{pattern}"]').text)

    [rule] = spec.load_balancers["edge"].listeners[0].rules
    assert rule.conditions[0].path_pattern == [pattern]


def test_every_cross_check_problem_is_reported_in_one_run_in_file_order(shop) -> None:
    bad = (
        shop.edit("10.20.11.0/24]", "10.21.11.0/24]")
        .edit("action: {forward: api}", "action: {forward: apx}")
        .edit("- port: 80\n", "- port: 443\n")
        .edit("memory: 512", "memory: 4096")
        .edit("desired_count: 2", "desired_count: 9")
    )

    problems = bad.problems()

    assert [(p.field_path, f"{p.line}:{p.column}") for p in problems] == [
        ("network.subnets.private[1]", bad.at("10.21.11.0/24")),
        (f"{RULE}.action.forward", bad.at("forward: apx")),
        (f"{LISTENER}[1].port", bad.at("port: 443\n        protocol: HTTP\n")),
        ("services.api.memory", bad.at("memory: 4096")),
        ("services.api.desired_count", bad.at("desired_count: 9")),
    ]
