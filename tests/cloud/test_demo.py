"""The cloud demo's AWS half against recorded answers: point 1 from ECS and EC2, point 5
from Cloud Map, point 6's log search, the stack outputs and the public endpoint. (Its
HTTP half runs against the twin: tests/e2e/test_reference_system.py.)"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.stub import ANY
from tests.cloud.demo_answers import (
    CLUSTER,
    interfaces_answer,
    nat_answer,
    route_tables_answer,
    service_answer,
    task_answer,
)
from tests.cloud.stubs import StubbedSession, activated

from fargo.cloud.demo import Aws, CloudWatchLogs, StackNotDeployed, public_endpoint, stack_outputs
from fargo.demo.report import Point
from fargo.spec import Spec

OUTPUTS = {
    "ClusterName": CLUSTER,
    "FrontendServiceName": "fargo-demo-frontend",
    "PublicUrl": "https://fargo.example.com",
    "PublicDnsName": "public-1234.us-east-1.elb.amazonaws.com",
    "FrontendLogGroupName": "fargo-demo-app-FrontendLogs",
    "BackendPublicLogGroupName": "fargo-demo-app-BackendPublicLogs",
}


def world(spec: Spec, session: StubbedSession, running: int = 1) -> Aws:
    services = {"frontend": service_answer("fargo-demo-frontend", 1, running)}
    return Aws(spec, session, OUTPUTS, services)


def queue_point1(
    session: StubbedSession,
    *,
    default_route: dict[str, str],
    public_ip: str | None = None,
    nat_state: str = "available",
    pulled: bool = True,
) -> None:
    task = task_answer(
        "0123456789abcdef0123456789abcdef",
        "fargo-demo-frontend",
        subnet="subnet-private-a",
        eni="eni-0a1b2c3d",
        ip="10.0.10.23",
        pulled=pulled,
    )
    ecs, ec2 = session.stub("ecs"), session.stub("ec2")
    ecs.add_response(
        "list_tasks",
        {"taskArns": [task["taskArn"]]},
        {"cluster": CLUSTER, "serviceName": "fargo-demo-frontend", "desiredStatus": "RUNNING"},
    )
    ecs.add_response(
        "describe_tasks", {"tasks": [task]}, {"cluster": CLUSTER, "tasks": [task["taskArn"]]}
    )
    ec2.add_response(
        "describe_network_interfaces",
        interfaces_answer({"eni-0a1b2c3d": public_ip}),
        {"NetworkInterfaceIds": ["eni-0a1b2c3d"]},
    )
    ec2.add_response(
        "describe_route_tables",
        route_tables_answer({"subnet-private-a": default_route}),
        {"Filters": [{"Name": "association.subnet-id", "Values": ["subnet-private-a"]}]},
    )
    if "NatGatewayId" in default_route:
        ec2.add_response(
            "describe_nat_gateways",
            nat_answer(default_route["NatGatewayId"], "203.0.113.25", nat_state),
            {"NatGatewayIds": [default_route["NatGatewayId"]]},
        )


async def test_point_1_passes_when_each_task_reaches_the_internet_only_through_a_nat(
    reference_spec: Spec,
) -> None:
    session = StubbedSession()
    queue_point1(session, default_route={"NatGatewayId": "nat-0feedbeef"})
    with activated(session):
        point = await world(reference_spec, session).image_pulls(Point(1, "pull"))
    assert point.status == "pass", point.evidence
    assert point.evidence["nat_gateways"] == {"nat-0feedbeef": "203.0.113.25"}
    (row,) = point.evidence["tasks"]
    assert row["default_route"] == "nat-0feedbeef (203.0.113.25)"
    assert row["public_ip"] == "none" and row["pull_seconds"] == 4.2
    assert row["service"] == "fargo-demo-frontend" and row["private_ip"] == "10.0.10.23"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"default_route": {"GatewayId": "igw-0c0ffee"}}, "goes to igw-0c0ffee"),
        ({"public_ip": "198.51.100.9"}, "has the public address 198.51.100.9"),
        ({"nat_state": "failed"}, "is failed"),
        ({"pulled": False}, "image pull has not finished"),
    ],
)
async def test_point_1_fails_naming_what_breaks_the_path(
    reference_spec: Spec, change: dict[str, Any], problem: str
) -> None:
    session = StubbedSession()
    queue_point1(session, **{"default_route": {"NatGatewayId": "nat-0feedbeef"}, **change})
    with activated(session):
        point = await world(reference_spec, session).image_pulls(Point(1, "pull"))
    assert point.status == "fail"
    assert any(problem in p for p in point.evidence["problems"]), point.evidence


async def test_point_1_is_skipped_without_a_nat_gateway(reference_spec: Spec) -> None:
    network = reference_spec.network.model_copy(update={"nat_gateways": 0})
    spec = reference_spec.model_copy(update={"network": network})
    point = await world(spec, StubbedSession()).image_pulls(Point(1, "pull"))
    assert point.status == "skipped"


async def test_point_5_asks_cloud_map_for_the_healthy_instances(reference_spec: Spec) -> None:
    session = StubbedSession()
    session.stub("servicediscovery").add_response(
        "discover_instances",
        {
            "Instances": [
                {"InstanceId": f"t{n}", "Attributes": {"AWS_INSTANCE_IPV4": f"10.0.1{n}.7"}}
                for n in (0, 1)
            ]
        },
        {
            "NamespaceName": "microservice.local",
            "ServiceName": "private.backend",
            "HealthStatus": "HEALTHY",
            "MaxResults": 100,
        },
    )
    point = Point(5, "discovery")
    with activated(session):
        answers = await world(reference_spec, session).discovery_answers(
            point, "private.backend.microservice.local"
        )
    assert answers == [{"records": ["10.0.10.7", "10.0.11.7"]}]
    assert "DiscoverInstances" in point.evidence["asked"]


async def test_the_request_log_names_the_service_and_task_from_the_awslogs_stream() -> None:
    session = StubbedSession()
    logs = session.stub("logs")
    groups = {"frontend": "g-front", "backend-public": "g-back"}
    logs.add_response(
        "filter_log_events",
        {"events": []},
        {"logGroupName": "g-front", "filterPattern": '"/api/x-t0k3n"', "startTime": ANY},
    )
    logs.add_response(
        "filter_log_events",
        {
            "events": [
                {
                    "logStreamName": "backend-public/app/0123456789abcdef",
                    "message": '{"method":"GET","path":"/api/x-t0k3n","status":200}',
                }
            ]
        },
        {"logGroupName": "g-back", "filterPattern": '"/api/x-t0k3n"', "startTime": ANY},
    )
    with activated(session):
        log = CloudWatchLogs(session.client("logs"), groups)
        await log.mark()
        assert await log.find("/api/x-t0k3n") == ("backend-public", "0123456789abcdef")


def test_stack_outputs_are_read_from_the_deployed_app_stack(reference_spec: Spec) -> None:
    session = StubbedSession()
    stack = {
        "StackName": "fargo-demo-app",
        "CreationTime": "2026-12-01T00:00:00Z",
        "StackStatus": "UPDATE_COMPLETE",
        "Outputs": [{"OutputKey": "ClusterName", "OutputValue": CLUSTER}],
    }
    session.stub("cloudformation").add_response(
        "describe_stacks", {"Stacks": [stack]}, {"StackName": "fargo-demo-app"}
    )
    with activated(session):
        assert stack_outputs(session, reference_spec) == {"ClusterName": CLUSTER}


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        ("does not exist", "is not deployed in us-east-1: run `fargo deploy` first"),
        ("ROLLBACK_COMPLETE", "is ROLLBACK_COMPLETE, not deployed"),
    ],
)
def test_a_missing_or_failed_stack_is_a_clear_error(
    reference_spec: Spec, answer: str, said: str
) -> None:
    session = StubbedSession()
    stub = session.stub("cloudformation")
    if answer == "does not exist":
        stub.add_client_error(
            "describe_stacks", "ValidationError", "Stack with id fargo-demo-app does not exist"
        )
    else:
        stack = {"StackName": "fargo-demo-app", "CreationTime": "2026-12-01", "StackStatus": answer}
        stub.add_response("describe_stacks", {"Stacks": [stack]})
    with activated(session), pytest.raises(StackNotDeployed, match=said):
        stack_outputs(session, reference_spec)


def test_the_public_endpoint_is_the_domain_with_its_http_listener(reference_spec: Spec) -> None:
    public = public_endpoint(reference_spec, OUTPUTS)
    assert public is not None
    assert public.https_url == "https://fargo.example.com"
    assert public.http_url == "http://fargo.example.com"
    assert public.server_name is None and public.headers() == {}


def test_without_an_alias_record_the_certificate_name_is_sent_to_the_dns_name(
    reference_spec: Spec,
) -> None:
    outputs = OUTPUTS | {"PublicUrl": "https://public-1234.us-east-1.elb.amazonaws.com"}
    public = public_endpoint(reference_spec, outputs)
    assert public is not None
    assert public.https_url == "https://public-1234.us-east-1.elb.amazonaws.com"
    assert public.server_name == "fargo.example.com"
    assert public.headers() == {"Host": "fargo.example.com"}


def test_log_groups_and_counts_come_from_the_outputs_and_services(reference_spec: Spec) -> None:
    aws = world(reference_spec, StubbedSession(), running=3)
    assert aws.log_groups == {
        "frontend": "fargo-demo-app-FrontendLogs",
        "backend-public": "fargo-demo-app-BackendPublicLogs",
    }
    assert aws.desired("frontend") == 1 and aws.desired("backend-public") == 0
    assert aws.registered_targets(["frontend"]) == 3
    assert aws.registered_targets(["backend-public"]) == 0
