"""Application Auto Scaling on the twin's scaler: a scalable target per autoscaled service
(its desired count), its target tracking policies, and the scaling activities it made."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fargo.local.appautoscaling.policy import (
    PREDEFINED_METRIC_TYPES,
    SCALE_IN_COOLDOWN_SECONDS,
    SCALE_OUT_COOLDOWN_SECONDS,
    TargetTracking,
)
from fargo.local.aws_api import arns
from fargo.local.aws_api.errors import AwsError
from fargo.local.aws_api.paging import page
from fargo.local.aws_api.server import Handler
from fargo.spec.security import forwarding_load_balancers

if TYPE_CHECKING:
    from fargo.local.runtime import Runtime

INVALID = "ValidationException"
DIMENSION = "ecs:service:DesiredCount"


class AutoScalingApi:
    service = "application-autoscaling"
    invalid_parameter = INVALID

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def operations(self) -> Mapping[str, Handler]:
        return {
            "DescribeScalableTargets": self.describe_scalable_targets,
            "DescribeScalingPolicies": self.describe_scaling_policies,
            "DescribeScalingActivities": self.describe_scaling_activities,
        }

    def _resource_id(self, service: str) -> str:
        return f"service/{self.runtime.spec.cluster.name}/{service}"

    def _services(self, params: dict[str, Any]) -> list[str]:
        if params["ServiceNamespace"] != "ecs":
            return []
        wanted = params.get("ResourceIds") or (
            [params["ResourceId"]] if params.get("ResourceId") else None
        )
        names = list(self.runtime.autoscaling.targets)
        if params.get("ScalableDimension") not in (None, DIMENSION):
            return []
        return [n for n in names if wanted is None or self._resource_id(n) in wanted]

    def _page(self, items: list[Any], params: dict[str, Any]) -> tuple[list[Any], str | None]:
        return page(
            items, params.get("NextToken"), params.get("MaxResults"), default=50, invalid=INVALID
        )

    def describe_scalable_targets(self, params: dict[str, Any]) -> dict[str, Any]:
        region = self.runtime.spec.region
        found = []
        for name in self._services(params):
            target = self.runtime.autoscaling.targets[name]
            resource = self._resource_id(name)
            found.append(
                {
                    "ServiceNamespace": "ecs",
                    "ResourceId": resource,
                    "ScalableDimension": DIMENSION,
                    "MinCapacity": target.bounds[0],
                    "MaxCapacity": target.bounds[1],
                    "RoleARN": arns.arn(
                        "iam",
                        "",
                        "role/aws-service-role/ecs.application-autoscaling."
                        "amazonaws.com/AWSServiceRoleForApplicationAutoScaling_ECSService",
                    ).replace(f":{region}:", "::"),
                    "CreationTime": self.runtime.created_at,
                    "ScalableTargetARN": arns.arn(
                        "application-autoscaling",
                        region,
                        f"scalable-target/{arns.stable_id(resource, length=32)}",
                    ),
                }
            )
        items, token = self._page(found, params)
        return {"ScalableTargets": items, "NextToken": token}

    def describe_scaling_policies(self, params: dict[str, Any]) -> dict[str, Any]:
        region = self.runtime.spec.region
        found = []
        for name in self._services(params):
            resource = self._resource_id(name)
            for policy in self.runtime.autoscaling.targets[name].policies:
                policy_name = f"{name}-{policy.metric}"
                if params.get("PolicyNames") and policy_name not in params["PolicyNames"]:
                    continue
                policy_id = arns.stable_id(resource, policy.metric, length=32)
                found.append(
                    {
                        "PolicyARN": arns.arn(
                            "autoscaling",
                            region,
                            f"scalingPolicy:{policy_id}:resource/ecs/{resource}:"
                            f"policyName/{policy_name}",
                        ),
                        "PolicyName": policy_name,
                        "ServiceNamespace": "ecs",
                        "ResourceId": resource,
                        "ScalableDimension": DIMENSION,
                        "PolicyType": "TargetTrackingScaling",
                        "TargetTrackingScalingPolicyConfiguration": {
                            "TargetValue": policy.target,
                            "PredefinedMetricSpecification": self._metric(policy),
                            "ScaleOutCooldown": SCALE_OUT_COOLDOWN_SECONDS,
                            "ScaleInCooldown": SCALE_IN_COOLDOWN_SECONDS,
                            "DisableScaleIn": False,
                        },
                        "CreationTime": self.runtime.created_at,
                    }
                )
        items, token = self._page(found, params)
        return {"ScalingPolicies": items, "NextToken": token}

    def _metric(self, policy: TargetTracking) -> dict[str, str]:
        """A policy's PredefinedMetricSpecification; a request count's ResourceLabel names
        its target group and the load balancer forwarding to it, as AWS's does
        (``app/<lb>/<id>/targetgroup/<group>/<id>``)."""
        metric = {"PredefinedMetricType": PREDEFINED_METRIC_TYPES[policy.metric]}
        group = policy.target_group
        if group is not None:
            region = self.runtime.spec.region
            (load_balancer, *_) = forwarding_load_balancers(self.runtime.spec, group) or [""]
            lb = arns.load_balancer(region, load_balancer).partition(":loadbalancer/")[2]
            tg = arns.target_group(region, group).rpartition(":")[2]
            metric["ResourceLabel"] = f"{lb}/{tg}"
        return metric

    def describe_scaling_activities(self, params: dict[str, Any]) -> dict[str, Any]:
        names = set(self._services(params))
        if params.get("ResourceId") and not names:
            raise AwsError(INVALID, f"no scalable target {params['ResourceId']!r}")
        found = [
            {
                "ActivityId": arns.stable_id(a.service, a.start.isoformat(), length=32),
                "ServiceNamespace": "ecs",
                "ResourceId": self._resource_id(a.service),
                "ScalableDimension": DIMENSION,
                "Description": f"Setting desired count to {a.description.split()[-2]}.",
                "Cause": a.cause,
                "StartTime": a.start,
                "EndTime": a.start,
                "StatusCode": "Successful",
                "StatusMessage": f"Successfully set desired count: {a.description}",
            }
            for a in reversed(self.runtime.autoscaling.activities)
            if a.service in names
        ]
        items, token = self._page(found, params)
        return {"ScalingActivities": items, "NextToken": token}
