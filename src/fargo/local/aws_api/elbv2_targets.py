"""ELBv2's target groups and target health on the twin's load balancers (a part of
`fargo.local.aws_api.elbv2`): the spec's groups with their health check settings, and
each registered target's state and reason as the twin's health checks found them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fargo.local.aws_api import arns
from fargo.local.aws_api.errors import AwsError
from fargo.local.aws_api.paging import page
from fargo.spec import Spec

if TYPE_CHECKING:
    from fargo.local.runtime import Runtime

INVALID = "ValidationError"
VPC_ID = "vpc-" + arns.stable_id("vpc", length=17)


def _lb_by_arn(spec: Spec) -> dict[str, str]:
    return {arns.load_balancer(spec.region, n): n for n in spec.load_balancers}


class TargetGroups:
    """DescribeTargetGroups and DescribeTargetHealth."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    @property
    def spec(self) -> Spec:
        return self.runtime.spec

    @property
    def region(self) -> str:
        return self.spec.region

    def group_names(self) -> dict[str, str]:
        return {arns.target_group(self.region, n): n for n in self.spec.target_groups}

    def describe_target_groups(self, params: dict[str, Any]) -> dict[str, Any]:
        names = list(self.spec.target_groups)
        if params.get("TargetGroupArns"):
            by_arn = self.group_names()
            missing = [a for a in params["TargetGroupArns"] if a not in by_arn]
            if missing:
                raise AwsError(
                    "TargetGroupNotFound", f"One or more target groups not found: {missing}"
                )
            names = [by_arn[a] for a in params["TargetGroupArns"]]
        if params.get("Names"):
            missing = [n for n in params["Names"] if n not in self.spec.target_groups]
            if missing:
                raise AwsError("TargetGroupNotFound", f"Target groups '{missing}' not found")
            names = list(params["Names"])
        if params.get("LoadBalancerArn"):
            lb = _lb_by_arn(self.spec).get(params["LoadBalancerArn"])
            if lb is None:
                raise AwsError("LoadBalancerNotFound", "One or more load balancers not found")
            names = [n for n in names if lb in self.balancers_of(n)]
        items, token = page(
            names, params.get("Marker"), params.get("PageSize"), default=400, invalid=INVALID
        )
        return {"TargetGroups": [self._target_group(n) for n in items], "NextMarker": token}

    def balancers_of(self, group: str) -> list[str]:
        found = []
        for lb, balancer in self.spec.load_balancers.items():
            for listener in balancer.listeners:
                actions = [listener.default_action, *(r.action for r in listener.rules)]
                names = {g.target_group for a in actions for g in a.weighted_target_groups()}
                if group in names and lb not in found:
                    found.append(lb)
        return found

    def _target_group(self, name: str) -> dict[str, Any]:
        group = self.spec.target_groups[name]
        check = group.health_check
        return {
            "TargetGroupArn": arns.target_group(self.region, name),
            "TargetGroupName": name,
            "Protocol": group.protocol,
            "Port": 80,
            "VpcId": VPC_ID,
            "HealthCheckProtocol": "HTTP",
            "HealthCheckPort": "traffic-port",
            "HealthCheckEnabled": True,
            "HealthCheckIntervalSeconds": check.interval,
            "HealthCheckTimeoutSeconds": check.timeout,
            "HealthyThresholdCount": check.healthy_threshold,
            "UnhealthyThresholdCount": check.unhealthy_threshold,
            "HealthCheckPath": check.path,
            "Matcher": {"HttpCode": check.matcher},
            "LoadBalancerArns": [
                arns.load_balancer(self.region, lb) for lb in self.balancers_of(name)
            ],
            "TargetType": "ip",
            "ProtocolVersion": "HTTP1",
            "IpAddressType": "ipv4",
        }

    def describe_target_health(self, params: dict[str, Any]) -> dict[str, Any]:
        name = self.group_names().get(params["TargetGroupArn"])
        if name is None:
            raise AwsError(
                "TargetGroupNotFound", f"Target groups '{params['TargetGroupArn']}' not found"
            )
        wanted = {t["Id"] for t in params.get("Targets") or []}
        described = []
        for d in self.runtime.elb.describe_target_health(name):
            if wanted and d.target.id not in wanted and d.target.ip not in wanted:
                continue
            health = {"State": d.state.value, "Reason": d.reason, "Description": d.description}
            described.append(
                {
                    "Target": {
                        "Id": d.target.ip,
                        "Port": d.target.port,
                        "AvailabilityZone": self._zone_of(d.target.id),
                    },
                    "HealthCheckPort": str(d.target.port),
                    "TargetHealth": health,
                }
            )
        return {"TargetHealthDescriptions": described}

    def _zone_of(self, task_id: str) -> str | None:
        task = self.runtime.cluster.find_task(task_id)
        return task.availability_zone if task else None
