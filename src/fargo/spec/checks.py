"""Cross-checks over a spec whose fields are individually valid.

Each check yields `Problem`s located by field path; the loader adds line and column.
"""

from __future__ import annotations

import difflib
import ipaddress
import itertools
import re
from collections.abc import Iterator

from fargo.spec import (
    autoscaling,
    defaults,
    egress,
    environment,
    lookalikes,
    refs,
    regions,
    secrets,
    service_connect,
)
from fargo.spec.elb import Action, Listener, LoadBalancer, RedirectAction, RuleCondition
from fargo.spec.errors import Loc, Problem
from fargo.spec.model import Service, Spec

PATH_PATTERN_CHARS = re.compile(r"^[A-Za-z0-9_\-.$/~\"'@:+&*?]*$")
HOST_PATTERN_CHARS = re.compile(r"^[A-Za-z0-9\-.*?]+$")
# ALB: zero or one of these per rule; http_header and query_string may repeat.
SINGLE_CONDITIONS = frozenset({"host_header", "http_request_method", "path_pattern", "source_ip"})
METHOD = re.compile(r"^[A-Z_-]{1,40}$")
# In a query-string condition, \* and \? match the characters themselves.
ESCAPED_WILDCARD = re.compile(r"\\[*?]")


def check(spec: Spec) -> list[Problem]:
    """Every cross-field problem in ``spec``, in file order."""
    return [
        *_region(spec),
        *_network(spec),
        *_discovery(spec),
        *(p for name, svc in spec.services.items() for p in _service(spec, name, svc)),
        *(p for name, lb in spec.load_balancers.items() for p in _load_balancer(spec, name, lb)),
        *autoscaling.check(spec),
        *service_connect.check(spec),
    ]


def _region(spec: Spec) -> Iterator[Problem]:
    if spec.region in regions.REGIONS:
        return
    close = difflib.get_close_matches(spec.region, regions.REGIONS, n=1, cutoff=0.7)
    yield Problem(
        ("region",),
        f"{spec.region!r} is not an AWS Region",
        hint=f"did you mean {close[0]!r}?"
        if close
        else "e.g. us-east-1 or eu-west-1 (the list: src/fargo/spec/regions.py)",
    )


def _prefix(loc: Loc, what: str, cidr: ipaddress.IPv4Network) -> Iterator[Problem]:
    low, high = defaults.CIDR_PREFIX_MIN, defaults.CIDR_PREFIX_MAX
    if low <= cidr.prefixlen <= high:
        return
    if cidr.prefixlen < low:
        hint = f"use a /{low} or smaller block, e.g. {next(cidr.subnets(new_prefix=low))}"
    else:
        hint = f"use a /{high} or larger block, e.g. {cidr.supernet(new_prefix=high)}"
    yield Problem(
        loc, f"{what} {cidr} is a /{cidr.prefixlen}; AWS takes /{low} to /{high}", hint=hint
    )


def _network(spec: Spec) -> Iterator[Problem]:
    network = spec.network
    vpc = network.cidr
    yield from _prefix(("network", "cidr"), "VPC CIDR", vpc)
    zones = network.availability_zones
    for tier in ("public", "private"):
        count = len(getattr(network.subnets, tier))
        if count != zones:
            yield Problem(
                ("network", "subnets", tier),
                f"{count} {tier} subnet(s) for {zones} availability zones; give one per zone",
            )
    if network.nat_gateways > zones:
        yield Problem(
            ("network", "nat_gateways"),
            f"{network.nat_gateways} NAT gateways for {zones} availability zones",
            hint="at most one per zone",
        )
    seen: list[tuple[ipaddress.IPv4Network, Loc]] = []
    for tier in ("public", "private"):
        for index, subnet in enumerate(getattr(spec.network.subnets, tier)):
            loc: Loc = ("network", "subnets", tier, index)
            yield from _prefix(loc, "subnet", subnet)
            if not subnet.subnet_of(vpc):
                yield Problem(
                    loc,
                    f"subnet {subnet} is outside the VPC CIDR {vpc}",
                    hint=f"pick a range inside {vpc}",
                )
            for other, other_loc in seen:
                if subnet.overlaps(other):
                    where = ".".join(str(part) for part in other_loc[2:])
                    yield Problem(
                        loc,
                        f"subnet {subnet} overlaps {other} ({where})",
                        hint="subnets must not share addresses",
                    )
            seen.append((subnet, loc))
    yield from _vpc_endpoints(spec)


def _vpc_endpoints(spec: Spec) -> Iterator[Problem]:
    first: dict[str, int] = {}
    for index, name in enumerate(spec.network.vpc_endpoints):
        loc: Loc = ("network", "vpc_endpoints", index)
        if name not in egress.KNOWN_ENDPOINTS:
            yield _unknown(loc, "VPC endpoint service", name, egress.KNOWN_ENDPOINTS)
        elif name in first:
            yield Problem(
                loc,
                f"VPC endpoint {name!r} is listed twice (first at index {first[name]})",
                hint="list each service once: one endpoint serves every zone",
            )
        first.setdefault(name, index)


def _discovery(spec: Spec) -> Iterator[Problem]:
    if spec.discovery is None:
        return
    seen: set[str] = set()
    for index, service in enumerate(spec.discovery.services):
        if service.name in seen:
            yield Problem(
                ("discovery", "services", index, "name"),
                f"discovery service {service.name!r} is defined twice",
            )
        seen.add(service.name)


def _service(spec: Spec, name: str, svc: Service) -> Iterator[Problem]:
    at: Loc = ("services", name)
    if svc.image not in spec.images:
        yield _unknown((*at, "image"), "image", svc.image, spec.images)
    offered = defaults.FARGATE_MEMORY_BY_CPU.get(svc.cpu)
    if offered is None:
        yield Problem(
            (*at, "cpu"),
            f"Fargate offers no task with {svc.cpu} CPU units",
            hint=f"use one of {', '.join(map(str, defaults.FARGATE_MEMORY_BY_CPU))}",
        )
    elif svc.memory not in offered:
        # 256 CPU units offer 512, 1024, 2048: not a range with one step, so list them.
        steps = {high - low for low, high in itertools.pairwise(offered)}
        choices = (
            f"{offered[0]}..{offered[-1]} in steps of {steps.pop()}"
            if len(steps) == 1
            else ", ".join(map(str, offered))
        )
        yield Problem(
            (*at, "memory"),
            f"Fargate offers no task with {svc.cpu} CPU units and {svc.memory} MiB",
            hint=f"with cpu {svc.cpu} use memory {choices}",
        )
    for index, group in enumerate(svc.target_groups):
        if group not in spec.target_groups:
            yield _unknown((*at, "target_groups", index), "target group", group, spec.target_groups)
    if svc.discovery is not None:
        if spec.discovery_service(svc.discovery) is None:
            known = [d.name for d in spec.discovery.services] if spec.discovery else []
            yield _unknown((*at, "discovery"), "discovery service", svc.discovery, known)
        else:
            first = next(n for n, s in spec.services.items() if s.discovery == svc.discovery)
            if first != name:
                yield Problem(
                    (*at, "discovery"),
                    f"discovery name {svc.discovery!r} is already claimed by service {first!r}",
                    hint="each Cloud Map service belongs to one ECS service",
                )
    if svc.autoscaling is not None:
        low, high = svc.autoscaling.min_capacity, svc.autoscaling.max_capacity
        if not low <= svc.desired_count <= high:
            yield Problem(
                (*at, "desired_count"),
                f"desired_count {svc.desired_count} is outside autoscaling bounds {low}..{high}",
                hint="raise or lower one of them",
            )
    for index, callee in enumerate(svc.calls):
        if callee not in spec.services and callee not in spec.load_balancers:
            yield _unknown(
                (*at, "calls", index),
                "service or load balancer",
                callee,
                [*spec.services, *spec.load_balancers],
            )
    for key, value in svc.environment.items():
        taken = environment.reserved(key, service=name)
        if taken is not None:
            yield Problem((*at, "environment", key), taken.reason, hint=taken.hint)
        yield from _references(spec, (*at, "environment", key), value)
    yield from _secrets(spec, name, svc)


def _secrets(spec: Spec, service_name: str, svc: Service) -> Iterator[Problem]:
    """A secret's name is a name of the task's environment; ECS reads it in the partition
    the task runs in, and a KMS key decrypts in its own region only."""
    partition = secrets.partition_of(spec.region)
    for key, secret in svc.secrets.items():
        loc: Loc = ("services", service_name, "secrets", key)
        taken = environment.reserved(key, service=service_name)
        if taken is not None:
            yield Problem(loc, taken.reason, hint=taken.hint)
        if key in svc.environment:
            yield Problem(
                loc,
                f"{key} is in the service's environment too: a variable is either a plain "
                "value or a secret",
                hint=f"remove {key} from services.{service_name}.environment",
            )
        reference = secret.reference()
        if reference.arn is not None and reference.arn.partition != partition:
            yield Problem(
                (*loc, secret.field),
                f"the secret is in partition {reference.arn.partition}, the tasks run in "
                f"{spec.region} (partition {partition}): ECS cannot read across partitions",
                hint=f"keep the secret in the {partition} partition",
            )
        key_arn = secret.key()
        if key_arn is None:
            continue
        region = reference.region or spec.region
        if key_arn.partition != partition:
            yield Problem(
                (*loc, "kms_key"),
                f"the key is in partition {key_arn.partition}, the tasks run in {spec.region} "
                f"(partition {partition})",
                hint=f"give the key that encrypts the secret, in the {partition} partition",
            )
        elif key_arn.region != region:
            yield Problem(
                (*loc, "kms_key"),
                f"the key is in {key_arn.region}, the secret in {region}: a KMS key "
                "encrypts in its own region only",
                hint=f"give the key in {region} that encrypts the secret (for a multi-Region "
                "key, its replica there)",
            )


def _references(spec: Spec, loc: Loc, value: str) -> Iterator[Problem]:
    unclosed = refs.unclosed(value)
    if unclosed is not None:
        shown = unclosed if len(unclosed) <= 40 else unclosed[:37] + "..."
        yield Problem(
            loc,
            f"{shown!r}: a reference opened with '${{' is never closed",
            hint="close it with '}', e.g. ${lb:NAME.dns_name}",
        )
    for ref in refs.references(value):
        if ref.kind == "lb":
            if ref.name not in spec.load_balancers:
                yield _unknown(loc, "load balancer", ref.name, spec.load_balancers)
            elif ref.attribute not in refs.LB_ATTRIBUTES:
                yield Problem(
                    loc,
                    f"{ref.text}: load balancers have no attribute {ref.attribute!r}",
                    hint="use ${lb:NAME.dns_name}",
                )
        elif ref.kind == "discovery":
            if spec.discovery_service(ref.name) is None:
                known = [d.name for d in spec.discovery.services] if spec.discovery else []
                yield _unknown(loc, "discovery service", ref.name, known)
        elif ref.kind == "service_connect":
            endpoints = service_connect.endpoints(spec)
            if ref.name not in endpoints:
                yield _unknown(loc, "Service Connect discovery name", ref.name, endpoints)
        elif ref.kind == "task":
            yield Problem(
                loc,
                f"{ref.text} has no value when ECS starts the task: the address is "
                "assigned to the task's network interface at launch",
                hint="read it in the service from the task metadata endpoint "
                "($ECS_CONTAINER_METADATA_URI_V4/task: "
                "Containers[0].Networks[0].IPv4Addresses[0])",
            )
        else:
            yield Problem(
                loc,
                f"{ref.text}: unknown reference kind {ref.kind!r}",
                hint="use ${lb:NAME.dns_name}, ${discovery:NAME} or ${service_connect:NAME}",
            )


def _load_balancer(spec: Spec, name: str, lb: LoadBalancer) -> Iterator[Problem]:
    ports: dict[int, int] = {}
    for index, listener in enumerate(lb.listeners):
        at: Loc = ("load_balancers", name, "listeners", index)
        if listener.port in ports:
            yield Problem(
                (*at, "port"),
                f"port {listener.port} is already used by listener "
                f"{ports[listener.port]} of this load balancer",
            )
        ports.setdefault(listener.port, index)
        yield from _listener(spec, at, listener)
    yield from _idle_timeout(spec, name, lb)


def _idle_timeout(spec: Spec, name: str, lb: LoadBalancer) -> Iterator[Problem]:
    """The load balancer must close an idle connection before the task does: a task that
    closes first may do so just as the load balancer reuses the connection (a 502)."""
    for group in lb.forwarded_target_groups():
        for service_name in spec.services_in(group):
            service = spec.services[service_name]
            if lb.idle_timeout < service.keep_alive:
                continue
            # Point at what the spec says: its idle_timeout, else the service's keep_alive.
            at_keep_alive = (
                "idle_timeout" not in lb.model_fields_set
                and "keep_alive" in service.model_fields_set
            )
            yield Problem(
                ("services", service_name, "keep_alive")
                if at_keep_alive
                else ("load_balancers", name, "idle_timeout"),
                f"load balancer {name!r} keeps idle connections for {lb.idle_timeout}s, "
                f"service {service_name!r} (target group {group!r}) for {service.keep_alive}s: "
                "the load balancer could reuse a connection the task has just closed (a 502)",
                hint=f"keep idle_timeout below {service.keep_alive}, "
                f"or raise services.{service_name}.keep_alive above {lb.idle_timeout}",
            )


def _listener(spec: Spec, at: Loc, listener: Listener) -> Iterator[Problem]:
    yield from _action(spec, (*at, "default_action"), listener.default_action, listener)
    priorities: dict[int, int] = {}
    for index, rule in enumerate(listener.rules):
        rule_at: Loc = (*at, "rules", index)
        if rule.priority in priorities:
            yield Problem(
                (*rule_at, "priority"),
                f"priority {rule.priority} is already used by "
                f"rule {priorities[rule.priority]} of this listener",
                hint="priorities on a listener must be unique",
            )
        priorities.setdefault(rule.priority, index)
        values = sum(condition.value_count() for condition in rule.conditions)
        if values > defaults.RULE_MAX_CONDITION_VALUES:
            yield Problem(
                (*rule_at, "conditions"),
                f"{values} condition values; ALB allows "
                f"{defaults.RULE_MAX_CONDITION_VALUES} per rule",
            )
        wildcards = sum(_wildcards(condition) for condition in rule.conditions)
        if wildcards > defaults.RULE_MAX_WILDCARDS:
            yield Problem(
                (*rule_at, "conditions"),
                f"{wildcards} wildcards ('*' or '?') in the rule's conditions; ALB allows "
                f"{defaults.RULE_MAX_WILDCARDS} per rule",
                hint="split the rule in two, or match fewer patterns",
            )
        seen_fields: dict[str, int] = {}
        for c_index, condition in enumerate(rule.conditions):
            yield from _condition((*rule_at, "conditions", c_index), condition)
            if condition.value_count() > defaults.CONDITION_MAX_VALUES:
                yield Problem(
                    (*rule_at, "conditions", c_index, condition.field),
                    f"{condition.value_count()} values in one {condition.field} condition; "
                    f"ALB allows {defaults.CONDITION_MAX_VALUES} per condition",
                    hint="spread them over rules with the same action",
                )
            kind = condition.field
            if kind in SINGLE_CONDITIONS and kind in seen_fields:
                yield Problem(
                    (*rule_at, "conditions", c_index, kind),
                    f"a rule takes at most one {kind} condition (condition {seen_fields[kind]} "
                    "is one already)",
                    hint="put all values in one condition: they are OR'ed",
                )
            seen_fields.setdefault(kind, c_index)
        yield from _action(spec, (*rule_at, "action"), rule.action, listener)


def _condition(at: Loc, condition: RuleCondition) -> Iterator[Problem]:
    for index, pattern in enumerate(condition.path_pattern or []):
        loc: Loc = (*at, "path_pattern", index)
        if len(pattern) > defaults.PATH_PATTERN_MAX_LENGTH:
            yield Problem(
                loc,
                f"path pattern is {len(pattern)} characters; ALB allows "
                f"{defaults.PATH_PATTERN_MAX_LENGTH}",
            )
        if not PATH_PATTERN_CHARS.match(pattern):
            bad = sorted({ch for ch in pattern if not PATH_PATTERN_CHARS.match(ch)})
            yield Problem(
                loc,
                f"path pattern {pattern!r} has characters ALB refuses: {' '.join(map(repr, bad))}",
                hint="allowed: A-Z a-z 0-9 _ - . $ / ~ \" ' @ : + & * ?",
            )
        elif not pattern.startswith(("/", "*")):
            yield Problem(loc, f"path pattern {pattern!r} must start with '/'")
    for index, host in enumerate(condition.host_header or []):
        if len(host) > defaults.PATH_PATTERN_MAX_LENGTH or not HOST_PATTERN_CHARS.match(host):
            yield Problem(
                (*at, "host_header", index),
                f"host pattern {host!r} is not valid",
                hint="allowed: A-Z a-z 0-9 - . * ?, at most 128 characters",
            )
    for index, method in enumerate(condition.http_request_method or []):
        if not METHOD.match(method):
            yield Problem(
                (*at, "http_request_method", index),
                f"{method!r} is not an HTTP method name",
                hint="upper case letters, '_' and '-', e.g. GET",
            )
    for index, cidr in enumerate(condition.source_ip or []):
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            yield Problem(
                (*at, "source_ip", index), f"{cidr!r} is not a CIDR block", hint="e.g. 192.0.2.0/24"
            )


def _wildcards(condition: RuleCondition) -> int:
    """The '*' and '?' of a condition's values; a query string's ``\\*`` is a literal."""
    texts: list[str] = [*(condition.path_pattern or []), *(condition.host_header or [])]
    if condition.http_header is not None:
        texts += condition.http_header.values
    for pair in condition.query_string or []:
        texts += [pair.key or "", pair.value]
    literal = [ESCAPED_WILDCARD.sub("", text) for text in texts]
    return sum(text.count("*") + text.count("?") for text in literal)


def _redirects_to_itself(redirect: RedirectAction, listener: Listener) -> bool:
    """AWS: a redirect must change at least one of protocol, host, port and path."""
    return (
        redirect.protocol in ("#{protocol}", listener.protocol)
        and redirect.host == "#{host}"
        and redirect.port in ("#{port}", str(listener.port))
        and redirect.path == "/#{path}"
    )


def _redirect_elsewhere(listener: Listener) -> str:
    """A change that takes a redirect on ``listener`` off the listener's own URL: to HTTPS
    from HTTP, else (HTTPS is kept) to another path or host."""
    if listener.protocol == "HTTP":
        return 'protocol: HTTPS, port: "443"'
    return "path: /new-path or host: www.example.com"


def _action(spec: Spec, at: Loc, action: Action, listener: Listener) -> Iterator[Problem]:
    if action.redirect is not None and _redirects_to_itself(action.redirect, listener):
        yield Problem(
            (*at, "redirect"),
            f"this redirect keeps the protocol ({listener.protocol}), host, port "
            f"({listener.port}) and path: it sends the client back to the same URL, "
            "a redirect loop",
            hint=f"change at least one of them, e.g. {_redirect_elsewhere(listener)}",
        )
    for index, weighted in enumerate(action.weighted_target_groups()):
        if weighted.target_group not in spec.target_groups:
            loc: Loc = (
                (*at, "forward")
                if isinstance(action.forward, str)
                else (*at, "forward", "target_groups", index, "target_group")
            )
            yield _unknown(loc, "target group", weighted.target_group, spec.target_groups)


def _unknown(loc: Loc, kind: str, name: str, known: object) -> Problem:
    names = sorted(str(item) for item in known)  # type: ignore[attr-defined]
    odd = lookalikes.describe(name)
    if odd is not None:
        return Problem(
            loc, f"no {kind} named {name!r}: {odd}", hint="type it in plain ASCII", refers_to=name
        )
    close = difflib.get_close_matches(name, names, n=1)
    hint = (
        f"did you mean {close[0]!r}?"
        if close
        else (f"known: {', '.join(names)}" if names else f"define the {kind} first")
    )
    return Problem(loc, f"no {kind} named {name!r}", hint=hint, refers_to=name)
