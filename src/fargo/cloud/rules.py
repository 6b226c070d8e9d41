"""An evaluator of ALB listener rules read back from a synthesized template.

It answers, from the CloudFormation alone, which action a listener takes for a request,
so tests can hold the template against the spec and against the twin's routing
(`fargo.spec.routing`): the same request must reach the same target group.

    listeners = template_listeners(result.template("app"))
    decision = decide(listeners[("public", 443)], Request(path="/api/public"))
    decision.target_groups   # [("backend-public", 1)]

Semantics, from the ELBv2 documentation: rules by ascending priority, the default action
last; conditions of a rule AND'ed, values of one condition OR'ed. ``path-pattern`` the
whole (percent-decoded) path, case-sensitive; ``host-header`` the host without port
(and without a trailing dot), case-insensitive; ``http-header`` name and value
case-insensitive, any value of a repeated header; ``http-request-method`` exact;
``query-string`` any decoded ``key=value`` pair, key optional, case-insensitive,
``\\*``/``\\?`` literal; ``source-ip`` the client's address.
``*`` matches any run of characters, ``?`` exactly one.

Target groups, listeners and load balancers are named by the ``fargo`` metadata that
`fargo.cloud` writes on each resource.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from fargo.cloud.policy import METADATA_KEY
from fargo.spec.elb import Request

LISTENER = "AWS::ElasticLoadBalancingV2::Listener"
LISTENER_RULE = "AWS::ElasticLoadBalancingV2::ListenerRule"
TERMINAL_ACTIONS = ("forward", "redirect", "fixed-response")
DEFAULT_PORTS = {"HTTP": "80", "HTTPS": "443"}


@dataclass(frozen=True)
class Decision:
    """What the listener does: the matching rule's priority (None: default action) and action.

    ``target_groups`` holds (spec name, weight) of a forward; ``status_code`` the redirect's
    (301/302) or fixed response's status; ``location`` the redirect target.
    """

    priority: int | None
    action: str  # "forward", "redirect", "fixed-response"
    target_groups: list[tuple[str, int]] = field(default_factory=list)
    status_code: int | None = None
    location: str | None = None
    body: str | None = None


@dataclass(frozen=True)
class TemplateRule:
    priority: int
    conditions: list[dict[str, Any]]
    actions: list[dict[str, Any]]


@dataclass(frozen=True)
class TemplateListener:
    load_balancer: str
    port: int
    protocol: str
    default_actions: list[dict[str, Any]]
    rules: list[TemplateRule]
    target_group_names: Mapping[str, str]  # logical id → spec name


def template_listeners(template: Mapping[str, Any]) -> dict[tuple[str, int], TemplateListener]:
    """The template's listeners with their rules, keyed by (load balancer name, port)."""
    resources: Mapping[str, Any] = template.get("Resources", {})

    def fargo_name(logical_id: str, key: str) -> str:
        metadata = resources.get(logical_id, {}).get("Metadata", {}).get(METADATA_KEY, {})
        return str(metadata.get(key, logical_id))

    target_groups = {
        logical_id: fargo_name(logical_id, "target_group")
        for logical_id, resource in resources.items()
        if resource.get("Type") == "AWS::ElasticLoadBalancingV2::TargetGroup"
    }
    rules_by_listener: dict[str, list[TemplateRule]] = {}
    for resource in resources.values():
        if resource.get("Type") != LISTENER_RULE:
            continue
        props = resource["Properties"]
        rules_by_listener.setdefault(_ref(props["ListenerArn"]), []).append(
            TemplateRule(
                priority=int(props["Priority"]),
                conditions=list(props.get("Conditions", [])),
                actions=list(props.get("Actions", [])),
            )
        )
    listeners: dict[tuple[str, int], TemplateListener] = {}
    for logical_id, resource in resources.items():
        if resource.get("Type") != LISTENER:
            continue
        props = resource["Properties"]
        balancer = fargo_name(_ref(props["LoadBalancerArn"]), "load_balancer")
        port = int(props["Port"])
        listeners[(balancer, port)] = TemplateListener(
            load_balancer=balancer,
            port=port,
            protocol=str(props.get("Protocol", "HTTP")),
            default_actions=list(props.get("DefaultActions", [])),
            rules=sorted(rules_by_listener.get(logical_id, []), key=lambda r: r.priority),
            target_group_names=target_groups,
        )
    return listeners


def decide(listener: TemplateListener, request: Request) -> Decision:
    """The action ``listener`` takes for ``request``."""
    for rule in listener.rules:
        if all(_condition_matches(condition, request) for condition in rule.conditions):
            return _decision(rule.priority, rule.actions, listener, request)
    return _decision(None, listener.default_actions, listener, request)


# -- conditions ---------------------------------------------------------------------------


def _condition_matches(condition: Mapping[str, Any], request: Request) -> bool:
    kind = condition["Field"]
    if kind == "path-pattern":
        values = _values(condition, "PathPatternConfig")
        return any(_glob(value, request.path, ignore_case=False) for value in values)
    if kind == "host-header":
        host = _host_name(request.host)
        return any(_glob(value, host) for value in _values(condition, "HostHeaderConfig"))
    if kind == "http-header":
        config = condition["HttpHeaderConfig"]
        name = str(config["HttpHeaderName"]).lower()
        sent = [value for header, value in request.headers if header.lower() == name]
        return any(_glob(pattern, value) for pattern in config["Values"] for value in sent)
    if kind == "http-request-method":
        return request.method in condition["HttpRequestMethodConfig"]["Values"]
    if kind == "query-string":
        pairs = _query_pairs(request.query)
        for wanted in condition["QueryStringConfig"]["Values"]:
            key_pattern = wanted.get("Key")
            for key, value in pairs:
                key_ok = key_pattern is None or _glob(key_pattern, key, escapes=True)
                if key_ok and _glob(wanted["Value"], value, escapes=True):
                    return True
        return False
    if kind == "source-ip":
        address = ipaddress.ip_address(request.source_ip)
        cidrs = condition["SourceIpConfig"]["Values"]
        return any(address in ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)
    raise ValueError(f"unknown rule condition field {kind!r}")


def _values(condition: Mapping[str, Any], config: str) -> list[str]:
    """A condition's values: in its ``*Config`` or, in the older form, ``Values``."""
    if config in condition:
        return list(condition[config]["Values"])
    return list(condition.get("Values", []))


def _glob(pattern: str, text: str, *, ignore_case: bool = True, escapes: bool = False) -> bool:
    """Whether ``text`` is all of ``pattern`` (``*`` any run, ``?`` one character)."""
    regex = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if escapes and char == "\\" and index + 1 < len(pattern):
            index += 1
            regex.append(re.escape(pattern[index]))
        elif char == "*":
            regex.append(".*")
        elif char == "?":
            regex.append(".")
        else:
            regex.append(re.escape(char))
        index += 1
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.fullmatch("".join(regex), text, flags) is not None


def _host_name(host: str) -> str:
    if host.startswith("["):
        return host[1:].partition("]")[0]
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name.removesuffix(".")  # ALB matches "example.com." as "example.com"


def _query_pairs(query: str) -> list[tuple[str, str]]:
    pairs = []
    for piece in query.split("&"):
        if piece:
            key, _, value = piece.partition("=")
            pairs.append((unquote(key), unquote(value)))
    return pairs


# -- actions ------------------------------------------------------------------------------


def _decision(
    priority: int | None,
    actions: Sequence[Mapping[str, Any]],
    listener: TemplateListener,
    request: Request,
) -> Decision:
    terminal = [action for action in actions if action.get("Type") in TERMINAL_ACTIONS]
    if not terminal:
        raise ValueError(f"no forward, redirect or fixed-response action in {actions!r}")
    action = min(terminal, key=lambda a: int(a.get("Order", 0)))
    kind = str(action["Type"])
    if kind == "forward":
        return Decision(priority, kind, target_groups=_forward_targets(action, listener))
    if kind == "redirect":
        config = action["RedirectConfig"]
        return Decision(
            priority,
            kind,
            status_code=int(str(config["StatusCode"]).removeprefix("HTTP_")),
            location=_location(config, listener, request),
        )
    config = action["FixedResponseConfig"]
    return Decision(
        priority,
        kind,
        status_code=int(config["StatusCode"]),
        body=config.get("MessageBody", ""),
    )


def _forward_targets(
    action: Mapping[str, Any], listener: TemplateListener
) -> list[tuple[str, int]]:
    names = listener.target_group_names
    if "ForwardConfig" in action:
        return [
            (names[_ref(group["TargetGroupArn"])], int(group.get("Weight", 1)))
            for group in action["ForwardConfig"]["TargetGroups"]
        ]
    return [(names[_ref(action["TargetGroupArn"])], 1)]


def _location(config: Mapping[str, Any], listener: TemplateListener, request: Request) -> str:
    """The redirect's Location, with ``#{protocol}`` etc. taken from the request."""
    known = {
        "protocol": listener.protocol.lower(),
        "host": _host_name(request.host),
        "port": str(listener.port),
        "path": request.path.removeprefix("/"),
        "query": request.query,
    }

    def fill(text: str) -> str:
        return re.sub(r"#\{(\w+)\}", lambda m: known.get(m[1], m[0]), text)

    protocol = fill(str(config.get("Protocol", "#{protocol}"))).lower()
    host = fill(str(config.get("Host", "#{host}")))
    port = fill(str(config.get("Port", "#{port}")))
    path = fill(str(config.get("Path", "/#{path}")))
    query = fill(str(config.get("Query", "#{query}")))
    shown_port = "" if DEFAULT_PORTS.get(protocol.upper()) == port else f":{port}"
    return f"{protocol}://{host}{shown_port}{path}" + (f"?{query}" if query else "")


def _ref(value: Any) -> str:
    if isinstance(value, Mapping) and "Ref" in value:
        return str(value["Ref"])
    raise ValueError(f"expected {{'Ref': ...}}, found {value!r}")
