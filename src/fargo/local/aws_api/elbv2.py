"""Elastic Load Balancing (v2) on the twin's load balancers: describe what runs, and change
listener rules of the running twin (ModifyRule, CreateRule, DeleteRule) as a new spec
applied by `fargo.local.reapply` — the data plane reloads its routes without dropping
connections. The spec file is not rewritten: the next ``fargo up`` reads the file again.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fargo.local.aws_api import arns
from fargo.local.aws_api.elbv2_rules import (
    aws_actions,
    aws_conditions,
    spec_action,
    spec_conditions,
)
from fargo.local.aws_api.elbv2_targets import VPC_ID, TargetGroups
from fargo.local.aws_api.errors import AwsError
from fargo.local.aws_api.paging import page
from fargo.local.aws_api.server import Handler
from fargo.local.reapply import SpecRefused
from fargo.spec import Spec
from fargo.spec.elb import Listener, ListenerRule

if TYPE_CHECKING:
    from fargo.local.runtime import Runtime

INVALID = "ValidationError"


@dataclass(frozen=True)
class _Rule:
    lb: str
    listener: Listener
    rule: ListenerRule | None  # None: the default rule

    def arn(self, region: str) -> str:
        priority = "default" if self.rule is None else self.rule.priority
        return arns.rule(region, self.lb, self.listener.port, priority)


class Elbv2Api:
    service = "elbv2"
    invalid_parameter = INVALID

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.target_groups = TargetGroups(runtime)

    def operations(self) -> Mapping[str, Handler]:
        return {
            "DescribeLoadBalancers": self.describe_load_balancers,
            "DescribeListeners": self.describe_listeners,
            "DescribeRules": self.describe_rules,
            "DescribeTargetGroups": self.target_groups.describe_target_groups,
            "DescribeTargetHealth": self.target_groups.describe_target_health,
            "DescribeTags": self.describe_tags,
            "ModifyRule": self.modify_rule,
            "CreateRule": self.create_rule,
            "DeleteRule": self.delete_rule,
        }

    @property
    def spec(self) -> Spec:
        return self.runtime.spec

    @property
    def region(self) -> str:
        return self.spec.region

    # -- load balancers and listeners ------------------------------------------------------

    def _lb_by_arn(self) -> dict[str, str]:
        return {arns.load_balancer(self.region, n): n for n in self.spec.load_balancers}

    def describe_load_balancers(self, params: dict[str, Any]) -> dict[str, Any]:
        names = list(self.spec.load_balancers)
        if params.get("LoadBalancerArns"):
            by_arn = self._lb_by_arn()
            names = [by_arn[a] for a in params["LoadBalancerArns"] if a in by_arn]
            if len(names) < len(params["LoadBalancerArns"]):
                raise AwsError("LoadBalancerNotFound", "One or more load balancers not found")
        if params.get("Names"):
            missing = [n for n in params["Names"] if n not in self.spec.load_balancers]
            if missing:
                raise AwsError("LoadBalancerNotFound", f"Load balancers '{missing}' not found")
            names = list(params["Names"])
        found, token = page(
            names, params.get("Marker"), params.get("PageSize"), default=400, invalid=INVALID
        )
        return {"LoadBalancers": [self._load_balancer(n) for n in found], "NextMarker": token}

    def _load_balancer(self, name: str) -> dict[str, Any]:
        lb = self.spec.load_balancers[name]
        zones = range(self.spec.network.availability_zones)
        return {
            "LoadBalancerArn": arns.load_balancer(self.region, name),
            "DNSName": self.runtime.lb_dns_name(name),
            "CanonicalHostedZoneId": "Z" + arns.stable_id("zone", length=13).upper(),
            "CreatedTime": self.runtime.created_at,
            "LoadBalancerName": name,
            "Scheme": lb.scheme,
            "VpcId": VPC_ID,
            "State": {"Code": "active" if self.runtime.running else "provisioning"},
            "Type": "application",
            "AvailabilityZones": [
                {
                    "ZoneName": f"{self.region}{'abcdef'[z]}",
                    "SubnetId": f"subnet-{arns.stable_id('public', z, length=17)}",
                }
                for z in zones
            ],
            "SecurityGroups": [f"sg-{arns.stable_id('lb', name, length=17)}"],
            "IpAddressType": "ipv4",
        }

    def _listeners(self, lb: str) -> list[Listener]:
        return list(self.spec.load_balancers[lb].listeners)

    def describe_listeners(self, params: dict[str, Any]) -> dict[str, Any]:
        found: list[tuple[str, Listener]] = []
        if params.get("LoadBalancerArn"):
            lb = self._lb_by_arn().get(params["LoadBalancerArn"])
            if lb is None:
                raise AwsError("LoadBalancerNotFound", "One or more load balancers not found")
            found = [(lb, listener) for listener in self._listeners(lb)]
        elif params.get("ListenerArns"):
            every = {
                arns.listener(self.region, lb, listener.port): (lb, listener)
                for lb in self.spec.load_balancers
                for listener in self._listeners(lb)
            }
            missing = [a for a in params["ListenerArns"] if a not in every]
            if missing:
                raise AwsError("ListenerNotFound", f"One or more listeners not found: {missing}")
            found = [every[a] for a in params["ListenerArns"]]
        else:
            raise AwsError(INVALID, "a load balancer ARN or listener ARNs must be specified")
        items, token = page(
            found, params.get("Marker"), params.get("PageSize"), default=400, invalid=INVALID
        )
        return {"Listeners": [self._listener(lb, li) for lb, li in items], "NextMarker": token}

    def _listener(self, lb: str, listener: Listener) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "ListenerArn": arns.listener(self.region, lb, listener.port),
            "LoadBalancerArn": arns.load_balancer(self.region, lb),
            "Port": listener.port,
            "Protocol": listener.protocol,
            "DefaultActions": aws_actions(listener.default_action, self.region),
        }
        if listener.protocol == "HTTPS":
            answer["SslPolicy"] = listener.ssl_policy
            answer["Certificates"] = [
                {
                    "CertificateArn": arns.arn(
                        "acm", self.region, f"certificate/{arns.stable_id(lb)}"
                    )
                }
            ]
        return answer

    # -- rules -----------------------------------------------------------------------------

    def _rules(self) -> Iterator[_Rule]:
        for lb in self.spec.load_balancers:
            for listener in self._listeners(lb):
                for rule in listener.rules_by_priority():
                    yield _Rule(lb, listener, rule)
                yield _Rule(lb, listener, None)

    def _rule(self, rule_arn: str) -> _Rule:
        for rule in self._rules():
            if rule.arn(self.region) == rule_arn:
                return rule
        raise AwsError("RuleNotFound", f"One or more rules not found: {rule_arn}")

    def describe_rules(self, params: dict[str, Any]) -> dict[str, Any]:
        rules = list(self._rules())
        if params.get("ListenerArn"):
            rules = [
                r
                for r in rules
                if arns.listener(self.region, r.lb, r.listener.port) == params["ListenerArn"]
            ]
            if not rules:
                raise AwsError("ListenerNotFound", "One or more listeners not found")
        elif params.get("RuleArns"):
            rules = [self._rule(a) for a in params["RuleArns"]]
        else:
            raise AwsError(INVALID, "a listener ARN or rule ARNs must be specified")
        items, token = page(
            rules, params.get("Marker"), params.get("PageSize"), default=400, invalid=INVALID
        )
        return {"Rules": [self._describe_rule(r) for r in items], "NextMarker": token}

    def _describe_rule(self, rule: _Rule) -> dict[str, Any]:
        if rule.rule is None:
            return {
                "RuleArn": rule.arn(self.region),
                "Priority": "default",
                "Conditions": [],
                "Actions": aws_actions(rule.listener.default_action, self.region),
                "IsDefault": True,
            }
        return {
            "RuleArn": rule.arn(self.region),
            "Priority": str(rule.rule.priority),
            "Conditions": aws_conditions(rule.rule.conditions),
            "Actions": aws_actions(rule.rule.action, self.region),
            "IsDefault": False,
        }

    async def modify_rule(self, params: dict[str, Any]) -> dict[str, Any]:
        found = self._rule(params["RuleArn"])
        if found.rule is None:
            raise AwsError("OperationNotPermitted", "the default rule is changed by ModifyListener")
        conditions = (
            spec_conditions(params["Conditions"])
            if "Conditions" in params
            else found.rule.conditions
        )
        action = (
            spec_action(params["Actions"], self.target_groups.group_names())
            if "Actions" in params
            else found.rule.action
        )
        changed = ListenerRule(priority=found.rule.priority, conditions=conditions, action=action)
        await self._apply(found, lambda rules: [changed if r == found.rule else r for r in rules])
        return {"Rules": [self._describe_rule(_Rule(found.lb, found.listener, changed))]}

    async def create_rule(self, params: dict[str, Any]) -> dict[str, Any]:
        every = {
            arns.listener(self.region, lb, li.port): (lb, li)
            for lb in self.spec.load_balancers
            for li in self._listeners(lb)
        }
        if params["ListenerArn"] not in every:
            raise AwsError("ListenerNotFound", "One or more listeners not found")
        lb, listener = every[params["ListenerArn"]]
        if any(r.priority == params["Priority"] for r in listener.rules):
            raise AwsError("PriorityInUse", f"Priority '{params['Priority']}' is currently in use")
        rule = ListenerRule(
            priority=params["Priority"],
            conditions=spec_conditions(params["Conditions"]),
            action=spec_action(params["Actions"], self.target_groups.group_names()),
        )
        await self._apply(_Rule(lb, listener, None), lambda rules: [*rules, rule])
        return {"Rules": [self._describe_rule(_Rule(lb, listener, rule))]}

    async def delete_rule(self, params: dict[str, Any]) -> dict[str, Any]:
        found = self._rule(params["RuleArn"])
        if found.rule is None:
            raise AwsError("OperationNotPermitted", "Default rules cannot be deleted")
        await self._apply(found, lambda rules: [r for r in rules if r != found.rule])
        return {}

    async def _apply(self, where: _Rule, change: Any) -> None:
        """The spec with ``change`` made to the rules of ``where``'s listener, applied."""
        data = self.spec.model_dump(mode="python", exclude_unset=True, by_alias=True)
        listeners = data["load_balancers"][where.lb]["listeners"]
        index = self._listeners(where.lb).index(where.listener)
        rules = change(list(where.listener.rules))
        listeners[index]["rules"] = [r.model_dump(mode="python", exclude_unset=True) for r in rules]
        try:
            new = Spec.model_validate(data)
            await self.runtime.apply(new)
        except SpecRefused as err:
            raise AwsError(INVALID, "; ".join(err.problems)) from None
        except ValueError as err:
            raise AwsError(INVALID, str(err)) from None

    # -- tags ------------------------------------------------------------------------------

    def describe_tags(self, params: dict[str, Any]) -> dict[str, Any]:
        known = {
            **{a: ("load balancer", n) for a, n in self._lb_by_arn().items()},
            **{a: ("target group", n) for a, n in self.target_groups.group_names().items()},
        }
        described = []
        for resource in params["ResourceArns"]:
            if resource not in known:
                raise AwsError("LoadBalancerNotFound", f"Resource {resource} not found")
            _, name = known[resource]
            tags = {"fargo:spec": self.spec.name, "fargo:name": name}
            described.append(
                {"ResourceArn": resource, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
            )
        return {"TagDescriptions": described}
