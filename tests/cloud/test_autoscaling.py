"""Autoscaling on requests in the template: a target tracking policy on
ALBRequestCountPerTarget whose ResourceLabel names the counted target group on its load
balancer, beside (or instead of) the CPU policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from tests.cloud.services import fargate_service

from fargo.cloud.synth import SynthResult, synthesize
from fargo.spec import Spec
from fargo.spec.model import Service

SCALED = "backend-private-with-alb"


def policies(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """PredefinedMetricType → the target tracking configuration."""
    found = {}
    for resource in resources.values():
        if resource["Type"] == "AWS::ApplicationAutoScaling::ScalingPolicy":
            config = resource["Properties"]["TargetTrackingScalingPolicyConfiguration"]
            found[config["PredefinedMetricSpecification"]["PredefinedMetricType"]] = config
    return found


def label_parts(config: dict[str, Any]) -> tuple[set[str], str]:
    """The ResourceLabel's listener references (its load balancer's name is cut from the
    listener ARN) and the target group whose TargetGroupFullName it ends with."""
    joined = config["PredefinedMetricSpecification"]["ResourceLabel"]["Fn::Join"][1]
    listeners = {
        part["Fn::Select"][1]["Fn::Split"][1]["Ref"] for part in joined if "Fn::Select" in part
    }
    group, attribute = joined[-1]["Fn::GetAtt"]
    assert attribute == "TargetGroupFullName"
    return listeners, group


@pytest.mark.slow
def test_a_service_scales_on_the_requests_of_the_target_group_it_names() -> None:
    stack = cdk.Stack()
    vpc = ec2.Vpc(stack, "Vpc")
    lb = elbv2.ApplicationLoadBalancer(stack, "Lb", vpc=vpc)
    listener = lb.add_listener("Http", port=80, open=False)
    web, api = (
        elbv2.ApplicationTargetGroup(stack, n, vpc=vpc, port=80, target_type=elbv2.TargetType.IP)
        for n in ("Web", "Api")
    )
    listener.add_target_groups("Default", target_groups=[web])
    listener.add_target_groups(
        "Api",
        target_groups=[api],
        priority=10,
        conditions=[elbv2.ListenerCondition.path_patterns(["/api/*"])],
    )
    service = Service.model_validate(
        {
            "image": "api",
            "port": 8000,
            "target_groups": ["web", "api"],
            "autoscaling": {
                "min_capacity": 1,
                "max_capacity": 3,
                "target_cpu_utilization": None,  # requests alone
                "target_requests_per_target": 1200,
                "target_group": "api",
            },
        }
    )
    fargate_service(stack, vpc, service, construct_id="ApiService", target_groups=[web, api])

    template = assertions.Template.from_stack(stack)
    resources = template.to_json()["Resources"]

    [(metric, config)] = policies(resources).items()
    assert (metric, config["TargetValue"]) == ("ALBRequestCountPerTarget", 1200)
    listeners, group = label_parts(config)
    assert listeners == {stack.get_logical_id(listener.node.default_child)}  # type: ignore[arg-type]
    assert group == stack.get_logical_id(api.node.default_child)  # type: ignore[arg-type]
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget", {"MinCapacity": 1, "MaxCapacity": 3}
    )


@pytest.fixture(scope="module")
def on_requests(reference_spec: Spec, tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    """The reference system, its internal load balancer's service scaling on requests too."""
    spec = reference_spec.model_copy(deep=True)
    scaling = spec.services[SCALED].autoscaling
    assert scaling is not None
    scaling.target_requests_per_target = 1000
    return synthesize(spec, Path(tmp_path_factory.mktemp("requests")), image_tags="r1")


@pytest.mark.slow
def test_synth_tracks_cpu_and_requests_per_target_of_the_internal_target_group(
    on_requests: SynthResult,
) -> None:
    resources = on_requests.template("app")["Resources"]

    found = policies(resources)

    assert set(found) == {"ECSServiceAverageCPUUtilization", "ALBRequestCountPerTarget"}
    assert found["ALBRequestCountPerTarget"]["TargetValue"] == 1000
    listeners, group = label_parts(found["ALBRequestCountPerTarget"])
    assert resources[group]["Metadata"]["fargo"]["target_group"] == SCALED
    [listener] = listeners
    balancer = resources[listener]["Properties"]["LoadBalancerArn"]["Ref"]
    assert resources[balancer]["Properties"]["Scheme"] == "internal"
