"""The twin's AWS endpoint with the real clients: boto3 (operations, paginators, waiters),
the AWS CLI v1 (PyPI) and the AWS CLI v2 (Debian 12's, with `aws logs tail`), against a
running twin of aws_api.yaml.

Every client gets the twin's endpoint explicitly, and the tests refuse to run when it is
not a loopback address: no request can reach AWS. Dummy credentials and region are set in
each test's environment only.
"""

from __future__ import annotations

import base64
import collections
import ipaddress
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError
from tests.e2e.aws_cli_v2 import (
    INSTALL,
    cli_v2,
    cli_v2_environment,
    cli_v2_version,
    detailed_lines,
    run_cli_v2,
)
from tests.e2e.conftest import ROOT, Twin, fargo, start_twin

pytestmark = pytest.mark.slow  # one twin of aws_api.yaml for the module

CLUSTER = "awsapi"
REGION = "eu-west-2"
WAIT = {"Delay": 1, "MaxAttempts": 120}


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    yield from start_twin(ROOT / "tests/e2e/aws_api.yaml", tmp_path_factory.mktemp("aws") / "s")


@pytest.fixture(scope="module")
def endpoint(twin: Twin) -> str:
    """The twin's AWS endpoint; the tests refuse any that is not on loopback."""
    url = twin.endpoints.aws_api
    if url is None:
        pytest.fail("the twin shows no AWS API endpoint")
    host = urllib.parse.urlsplit(url).hostname or ""
    if not ipaddress.ip_address(host).is_loopback:
        pytest.fail(f"refusing to run AWS clients against {url}: not a loopback address")
    return url


@pytest.fixture(autouse=True)
def dummy_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Credentials and region for this test only; no profile or config file of the
    machine's is read (the config and credentials files are empty ones of the test's)."""
    for empty in ("empty-config", "empty-credentials"):
        (tmp_path / empty).touch()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "fargo-twin-test",
        "AWS_SECRET_ACCESS_KEY": "fargo-twin-test",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_CONFIG_FILE": str(tmp_path / "empty-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "empty-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        # DiscoverInstances is sent to data-<endpoint host> unless this is set (botocore
        # 1.36 and newer; the CLI v2 of Debian 12 ignores it: see the CLI v2 tests)
        "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def client(endpoint: str, service: str) -> BaseClient:
    return boto3.Session().client(
        service,
        endpoint_url=endpoint,
        config=Config(retries={"max_attempts": 2}, inject_host_prefix=False),
    )


def aws(endpoint: str, *args: str) -> Any:
    """The AWS CLI (v1, from PyPI) with the twin's endpoint; its JSON output."""
    run = subprocess.run(
        [sys.executable, "-m", "awscli", "--endpoint-url", endpoint, "--output", "json", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout) if run.stdout.strip() else None


def listener_url(twin: Twin) -> str:
    return twin.url("edge", "http")


def test_fargo_status_prints_the_endpoint(twin: Twin, endpoint: str) -> None:
    printed = fargo("status", "--state-dir", str(twin.state_dir)).stdout
    assert f"AWS API (boto3, aws CLI) {endpoint}" in printed


# -- ECS ------------------------------------------------------------------------------------


def test_ecs_lists_and_describes_the_cluster_and_its_services(twin: Twin, endpoint: str) -> None:
    ecs = client(endpoint, "ecs")
    cluster_arn = f"arn:aws:ecs:{REGION}:000000000000:cluster/{CLUSTER}"
    assert ecs.list_clusters()["clusterArns"] == [cluster_arn]
    [cluster] = ecs.describe_clusters(clusters=[CLUSTER])["clusters"]
    assert (cluster["clusterName"], cluster["activeServicesCount"]) == (CLUSTER, 3)
    pages = ecs.get_paginator("list_services").paginate(
        cluster=CLUSTER, PaginationConfig={"PageSize": 1}
    )
    arns = [arn for page in pages for arn in page["serviceArns"]]
    assert [a.rsplit("/", 1)[-1] for a in arns] == ["web-a", "web-b", "api"]
    described = ecs.describe_services(cluster=cluster_arn, services=[*arns, "missing"])
    assert described["failures"] == [{"arn": "missing", "reason": "MISSING"}]
    web_a = described["services"][0]
    status = twin.status().service("web-a")
    assert (web_a["desiredCount"], web_a["runningCount"]) == (status.desired, status.running)
    assert web_a["taskDefinition"].endswith(f":task-definition/awsapi-web-a:{status.revision}")
    assert [d["rolloutState"] for d in web_a["deployments"]] == ["COMPLETED"]
    assert web_a["loadBalancers"][0]["targetGroupArn"].startswith(
        f"arn:aws:elasticloadbalancing:{REGION}:000000000000:targetgroup/a/"
    )


def test_ecs_tasks_show_their_status_and_eni_address(twin: Twin, endpoint: str) -> None:
    ecs = client(endpoint, "ecs")
    arns = ecs.list_tasks(cluster=CLUSTER, serviceName="web-a")["taskArns"]
    tasks = ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"]
    expected = {t.id: t for t in twin.status().service("web-a").tasks}
    assert {t["taskArn"].rsplit("/", 1)[-1] for t in tasks} == set(expected)
    for task in tasks:
        summary = expected[task["taskArn"].rsplit("/", 1)[-1]]
        details = {d["name"]: d["value"] for d in task["attachments"][0]["details"]}
        assert summary.address == f"{details['privateIPv4Address']}:7000"
        assert (task["lastStatus"], task["desiredStatus"]) == ("RUNNING", "RUNNING")
        assert task["availabilityZone"] == summary.availability_zone
        assert task["group"] == "service:web-a"


def test_ecs_describes_the_task_definition_with_its_awslogs_settings(endpoint: str) -> None:
    definition = client(endpoint, "ecs").describe_task_definition(taskDefinition="awsapi-web-b")
    container = definition["taskDefinition"]["containerDefinitions"][0]
    assert container["portMappings"][0]["containerPort"] == 7000
    assert {"name": "SERVICE_NAME", "value": "web-b"} in container["environment"]
    assert container["logConfiguration"]["options"]["awslogs-group"] == "/ecs/awsapi/web-b"
    with pytest.raises(ClientError) as raised:
        client(endpoint, "ecs").describe_task_definition(taskDefinition="nope:1")
    assert raised.value.response["Error"]["Code"] == "ClientException"


def test_ecs_errors_have_aws_codes(endpoint: str) -> None:
    ecs = client(endpoint, "ecs")
    with pytest.raises(ecs.exceptions.ServiceNotFoundException):
        ecs.update_service(cluster=CLUSTER, service="nope", desiredCount=1)
    with pytest.raises(ecs.exceptions.ClusterNotFoundException):
        ecs.list_services(cluster="elsewhere")
    with pytest.raises(ClientError) as raised:
        ecs.register_task_definition(family="x", containerDefinitions=[{"name": "x"}])
    assert raised.value.response["Error"]["Code"] == "UnknownOperationException"
    assert "RegisterTaskDefinition" in raised.value.response["Error"]["Message"]


def test_update_service_scales_and_the_services_stable_waiter_waits(
    twin: Twin, endpoint: str
) -> None:
    ecs = client(endpoint, "ecs")
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.update_service(cluster=CLUSTER, service="web-b", taskDefinition="awsapi-web-a")
    answer = ecs.update_service(
        cluster=CLUSTER, service="web-b", desiredCount=2, taskDefinition="awsapi-web-b"
    )
    assert answer["service"]["desiredCount"] == 2
    ecs.get_waiter("services_stable").wait(cluster=CLUSTER, services=["web-b"], WaiterConfig=WAIT)
    [service] = ecs.describe_services(cluster=CLUSTER, services=["web-b"])["services"]
    assert (service["runningCount"], len(service["deployments"])) == (2, 1)
    assert twin.status().service("web-b").running == 2


def test_force_new_deployment_rolls_every_task(twin: Twin, endpoint: str) -> None:
    ecs = client(endpoint, "ecs")
    before = set(ecs.list_tasks(cluster=CLUSTER, serviceName="web-b")["taskArns"])
    answer = ecs.update_service(cluster=CLUSTER, service="web-b", forceNewDeployment=True)
    assert answer["service"]["deployments"][0]["rolloutState"] == "IN_PROGRESS"
    ecs.get_waiter("services_stable").wait(cluster=CLUSTER, services=["web-b"], WaiterConfig=WAIT)
    [service] = ecs.describe_services(cluster=CLUSTER, services=["web-b"])["services"]
    [deployment] = service["deployments"]
    assert (deployment["status"], deployment["rolloutState"]) == ("PRIMARY", "COMPLETED")
    after = set(ecs.list_tasks(cluster=CLUSTER, serviceName="web-b")["taskArns"])
    assert len(after) == service["desiredCount"] and not before & after
    assert service["taskDefinition"].endswith(":2")


def test_a_stopped_task_is_replaced_by_the_scheduler(endpoint: str) -> None:
    ecs = client(endpoint, "ecs")
    [victim, *_] = ecs.list_tasks(cluster=CLUSTER, serviceName="web-a")["taskArns"]
    stopped = ecs.stop_task(cluster=CLUSTER, task=victim, reason="chaos test")["task"]
    assert (stopped["desiredStatus"], stopped["stoppedReason"]) == ("STOPPED", "chaos test")
    ecs.get_waiter("tasks_stopped").wait(cluster=CLUSTER, tasks=[victim], WaiterConfig=WAIT)
    ecs.get_waiter("services_stable").wait(cluster=CLUSTER, services=["web-a"], WaiterConfig=WAIT)
    running = ecs.list_tasks(cluster=CLUSTER, serviceName="web-a")["taskArns"]
    assert len(running) == 2 and victim not in running
    assert victim in ecs.list_tasks(cluster=CLUSTER, desiredStatus="STOPPED")["taskArns"]


def test_run_task_starts_a_standalone_task_that_nothing_replaces(twin: Twin, endpoint: str) -> None:
    ecs = client(endpoint, "ecs")
    [task] = ecs.run_task(cluster=CLUSTER, taskDefinition="awsapi-web-b", startedBy="aws-api-test")[
        "tasks"
    ]
    arn = task["taskArn"]
    ecs.get_waiter("tasks_running").wait(cluster=CLUSTER, tasks=[arn], WaiterConfig=WAIT)
    [running] = ecs.describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"]
    assert (running["group"], running["startedBy"]) == ("family:awsapi-web-b", "aws-api-test")
    details = {d["name"]: d["value"] for d in running["attachments"][0]["details"]}
    address = details["privateIPv4Address"]
    # It serves on its own ENI, as the service's tasks do, but is in no target group.
    assert httpx.get(f"http://{address}:7000/who", timeout=10).json()["service"] == "web-b"
    targets = twin.status().load_balancers.target_groups["b"].targets
    assert address not in {t.ip for t in targets}
    assert ecs.list_tasks(cluster=CLUSTER, startedBy="aws-api-test")["taskArns"] == [arn]
    assert arn not in ecs.list_tasks(cluster=CLUSTER, serviceName="web-b")["taskArns"]
    ecs.stop_task(cluster=CLUSTER, task=arn)
    ecs.get_waiter("tasks_stopped").wait(cluster=CLUSTER, tasks=[arn], WaiterConfig=WAIT)
    [stopped] = ecs.describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"]
    assert (stopped["stopCode"], stopped["stoppedReason"]) == (
        "UserInitiated",
        "Task stopped by user",
    )
    assert ecs.list_tasks(cluster=CLUSTER, startedBy="aws-api-test")["taskArns"] == []


# -- ELBv2 ----------------------------------------------------------------------------------


def test_elbv2_describes_load_balancers_listeners_rules_and_tags(twin: Twin, endpoint: str) -> None:
    elb = client(endpoint, "elbv2")
    [lb] = elb.describe_load_balancers(Names=["edge"])["LoadBalancers"]
    assert lb["DNSName"] == twin.endpoints.load_balancer_dns_names["edge"]
    assert (lb["Scheme"], lb["Type"], lb["State"]["Code"]) == (
        "internet-facing",
        "application",
        "active",
    )
    [listener] = elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    assert (listener["Port"], listener["Protocol"]) == (9180, "HTTP")
    assert listener["DefaultActions"][0]["FixedResponseConfig"]["StatusCode"] == "404"
    rules = elb.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]
    assert [r["Priority"] for r in rules] == ["10", "20", "50", "default"]
    assert rules[0]["Conditions"][0]["PathPatternConfig"]["Values"] == ["/a/*"]
    tags = elb.describe_tags(ResourceArns=[lb["LoadBalancerArn"]])["TagDescriptions"]
    assert {"Key": "fargo:spec", "Value": "awsapi"} in tags[0]["Tags"]
    with pytest.raises(elb.exceptions.LoadBalancerNotFoundException):
        elb.describe_load_balancers(Names=["nope"])


def test_elbv2_target_health_is_the_twins(twin: Twin, endpoint: str) -> None:
    elb = client(endpoint, "elbv2")
    pages = elb.get_paginator("describe_target_groups").paginate(PaginationConfig={"PageSize": 1})
    groups = {g["TargetGroupName"]: g for page in pages for g in page["TargetGroups"]}
    assert list(groups) == ["a", "b", "empty"]
    assert groups["a"]["HealthCheckPath"] == "/health"
    health = elb.describe_target_health(TargetGroupArn=groups["a"]["TargetGroupArn"])
    described = {
        f"{d['Target']['Id']}:{d['Target']['Port']}": d["TargetHealth"]["State"]
        for d in health["TargetHealthDescriptions"]
    }
    expected = twin.status().load_balancers.target_groups["a"].targets
    assert described == {f"{t.ip}:{t.port}": t.state.value for t in expected}
    assert set(described.values()) == {"healthy"}
    empty = elb.describe_target_health(TargetGroupArn=groups["empty"]["TargetGroupArn"])
    assert empty["TargetHealthDescriptions"] == []
    with pytest.raises(elb.exceptions.TargetGroupNotFoundException):
        elb.describe_target_health(TargetGroupArn=groups["a"]["TargetGroupArn"] + "0")


def test_modify_create_and_delete_rule_change_routing_on_the_listener(
    twin: Twin, endpoint: str
) -> None:
    elb = client(endpoint, "elbv2")
    [lb] = elb.describe_load_balancers(Names=["edge"])["LoadBalancers"]
    [listener] = elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    rules = {
        r["Priority"]: r for r in elb.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]
    }
    base = listener_url(twin)
    with httpx.Client(timeout=10) as http:
        assert http.get(f"{base}/empty").status_code == 503  # a group without targets
        teapot = {"StatusCode": "418", "ContentType": "text/plain", "MessageBody": "teapot"}
        elb.modify_rule(
            RuleArn=rules["50"]["RuleArn"],
            Actions=[{"Type": "fixed-response", "FixedResponseConfig": teapot}],
        )
        response = http.get(f"{base}/empty")
        assert (response.status_code, response.text) == (418, "teapot")
        b_arn = rules["20"]["Actions"][0]["TargetGroupArn"]
        created = elb.create_rule(
            ListenerArn=listener["ListenerArn"],
            Priority=30,
            Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/to-b"]}}],
            Actions=[{"Type": "forward", "TargetGroupArn": b_arn}],
        )["Rules"][0]
        assert http.get(f"{base}/to-b").json()["service"] == "web-b"
        elb.delete_rule(RuleArn=created["RuleArn"])
        assert http.get(f"{base}/to-b").text == "no route"
    with pytest.raises(elb.exceptions.PriorityInUseException):
        elb.create_rule(
            ListenerArn=listener["ListenerArn"],
            Priority=10,
            Conditions=[{"Field": "path-pattern", "Values": ["/x"]}],
            Actions=[{"Type": "forward", "TargetGroupArn": b_arn}],
        )


def test_modify_rule_under_load_answers_every_request_on_a_new_connection(
    twin: Twin, endpoint: str
) -> None:
    """Each ModifyRule loads a new config into the running load balancer; no request on a
    new connection goes unanswered meanwhile (ALB applies rule changes without dropping)."""
    elb = client(endpoint, "elbv2")
    [lb] = elb.describe_load_balancers(Names=["edge"])["LoadBalancers"]
    [listener] = elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    [rule] = [
        r
        for r in elb.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]
        if r["Priority"] == "50"
    ]
    seen: collections.Counter[str] = collections.Counter()
    done = threading.Event()

    def load() -> None:
        limits = httpx.Limits(max_keepalive_connections=0)  # each request a new connection
        with httpx.Client(timeout=10, limits=limits) as http:
            while not done.is_set():
                try:
                    seen[str(http.get(f"{listener_url(twin)}/a/x").status_code)] += 1
                except httpx.HTTPError as err:
                    seen[f"error {type(err).__name__}"] += 1

    workers = [threading.Thread(target=load) for _ in range(2)]
    for worker in workers:
        worker.start()
    try:
        for body in ("one", "two", "three", "four", "five", "six"):
            answer = {"StatusCode": "418", "ContentType": "text/plain", "MessageBody": body}
            elb.modify_rule(
                RuleArn=rule["RuleArn"],
                Actions=[{"Type": "fixed-response", "FixedResponseConfig": answer}],
            )
            time.sleep(0.2)
    finally:
        done.set()
        for worker in workers:
            worker.join()
    assert set(seen) == {"200"} and seen["200"] > 20, seen


# -- Cloud Map ------------------------------------------------------------------------------


def test_cloud_map_lists_namespaces_services_and_instances(twin: Twin, endpoint: str) -> None:
    sd = client(endpoint, "servicediscovery")
    [namespace] = sd.list_namespaces()["Namespaces"]
    assert (namespace["Name"], namespace["Type"]) == ("awsapi.internal", "DNS_PRIVATE")
    pages = sd.get_paginator("list_services").paginate(
        Filters=[{"Name": "NAMESPACE_ID", "Values": [namespace["Id"]]}]
    )
    [service] = [s for page in pages for s in page["Services"]]
    got = sd.get_service(Id=service["Id"])["Service"]
    assert (got["Name"], got["NamespaceId"]) == ("api", namespace["Id"])
    assert got["DnsConfig"]["DnsRecords"] == [{"Type": "A", "TTL": 15}]
    instances = sd.list_instances(ServiceId=service["Id"])["Instances"]
    tasks = {t.id: t.address for t in twin.status().service("api").tasks}
    assert {
        i["Id"]: f"{i['Attributes']['AWS_INSTANCE_IPV4']}:{i['Attributes']['AWS_INSTANCE_PORT']}"
        for i in instances
    } == tasks
    health = sd.get_instances_health_status(ServiceId=service["Id"])["Status"]
    assert health == dict.fromkeys(tasks, "HEALTHY")
    with pytest.raises(sd.exceptions.ServiceNotFound):
        sd.get_service(Id="srv-nope")


def test_discover_instances_answers_the_healthy_tasks(twin: Twin, endpoint: str) -> None:
    sd = client(endpoint, "servicediscovery")
    found = sd.discover_instances(NamespaceName="awsapi.internal", ServiceName="api")
    tasks = {t.id for t in twin.status().service("api").tasks}
    assert {i["InstanceId"] for i in found["Instances"]} == tasks


# -- CloudWatch Logs ------------------------------------------------------------------------


def test_logs_have_a_group_per_service_and_a_stream_per_task(twin: Twin, endpoint: str) -> None:
    logs = client(endpoint, "logs")
    groups = [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]]
    assert groups == ["/ecs/awsapi/web-a", "/ecs/awsapi/web-b", "/ecs/awsapi/api"]
    streams = logs.describe_log_streams(logGroupName="/ecs/awsapi/api")["logStreams"]
    names = {s["logStreamName"] for s in streams}
    assert {f"api/api/{t.id}" for t in twin.status().service("api").tasks} <= names
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.describe_log_streams(logGroupName="/ecs/awsapi/nope")


def test_get_and_filter_log_events_find_a_request_as_tail_follow_does(
    twin: Twin, endpoint: str
) -> None:
    logs = client(endpoint, "logs")
    group = "/ecs/awsapi/web-a"
    since = int(time.time() * 1000) - 1000
    marker = f"/a/tail-{uuid.uuid4().hex}"
    seen: dict[str, dict[str, Any]] = {}
    with httpx.Client(timeout=10) as http:
        assert http.get(listener_url(twin) + marker).status_code == 200
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not any(marker in e["message"] for e in seen.values()):
        # `aws logs tail --follow`: FilterLogEvents from a start time, each event once
        pages = logs.get_paginator("filter_log_events").paginate(
            logGroupName=group, startTime=since, PaginationConfig={"PageSize": 5}
        )
        for page in pages:
            for event in page["events"]:
                seen.setdefault(event["eventId"], event)
        time.sleep(0.5)
    [event] = [e for e in seen.values() if marker in e["message"]]
    assert event["timestamp"] >= since
    filtered = logs.filter_log_events(logGroupName=group, filterPattern=f'"{marker}"')["events"]
    assert [e["eventId"] for e in filtered] == [event["eventId"]]
    stream = logs.get_log_events(
        logGroupName=group, logStreamName=event["logStreamName"], startFromHead=True
    )
    assert marker in "\n".join(e["message"] for e in stream["events"])
    # The stream grows (health checks): the forward token continues where the first read
    # stopped, without repeating or skipping a line.
    again = logs.get_log_events(
        logGroupName=group,
        logStreamName=event["logStreamName"],
        nextToken=stream["nextForwardToken"],
    )
    full = logs.get_log_events(
        logGroupName=group, logStreamName=event["logStreamName"], startFromHead=True
    )
    both = stream["events"] + again["events"]
    assert full["events"][: len(both)] == both


# -- ECR and Application Auto Scaling -------------------------------------------------------


def test_ecr_describes_the_built_image_and_gives_a_token(twin: Twin, endpoint: str) -> None:
    ecr = client(endpoint, "ecr")
    [repository] = ecr.describe_repositories()["repositories"]
    assert repository["repositoryName"] == "echo"
    [image] = ecr.describe_images(repositoryName="echo")["imageDetails"]
    assert image["imageDigest"].startswith("sha256:")
    task = twin.status().service("web-a").tasks[0]
    ecs = client(endpoint, "ecs")
    [described] = ecs.describe_tasks(cluster=CLUSTER, tasks=[task.id])["tasks"]
    assert described["containers"][0]["imageDigest"] == image["imageDigest"]
    [data] = ecr.get_authorization_token()["authorizationData"]
    assert base64.b64decode(data["authorizationToken"]).startswith(b"AWS:")
    with pytest.raises(ecr.exceptions.RepositoryNotFoundException):
        ecr.describe_images(repositoryName="nope")


def test_application_auto_scaling_describes_the_scalable_target(endpoint: str) -> None:
    scaling = client(endpoint, "application-autoscaling")
    [target] = scaling.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]
    assert target["ResourceId"] == "service/awsapi/web-a"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 3)
    cpu, requests = scaling.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"]
    configuration = cpu["TargetTrackingScalingPolicyConfiguration"]
    assert configuration["TargetValue"] == 90
    assert configuration["PredefinedMetricSpecification"]["PredefinedMetricType"] == (
        "ECSServiceAverageCPUUtilization"
    )
    configuration = requests["TargetTrackingScalingPolicyConfiguration"]
    assert configuration["TargetValue"] == 1000000
    metric = configuration["PredefinedMetricSpecification"]
    assert metric["PredefinedMetricType"] == "ALBRequestCountPerTarget"
    # app/<load balancer>/<id>/targetgroup/<group>/<id>, the ARNs' ends the twin gives
    elbv2 = client(endpoint, "elbv2")
    [group] = elbv2.describe_target_groups(Names=["a"])["TargetGroups"]
    [balancer] = elbv2.describe_load_balancers(LoadBalancerArns=group["LoadBalancerArns"])[
        "LoadBalancers"
    ]
    label = balancer["LoadBalancerArn"].split(":loadbalancer/")[1]
    assert metric["ResourceLabel"] == label + "/" + group["TargetGroupArn"].split(":")[-1]
    activities = scaling.describe_scaling_activities(ServiceNamespace="ecs")
    assert isinstance(activities["ScalingActivities"], list)


# -- the AWS CLI ----------------------------------------------------------------------------


def test_the_aws_cli_reads_the_twin(twin: Twin, endpoint: str) -> None:
    services = aws(endpoint, "ecs", "list-services", "--cluster", CLUSTER)
    assert len(services["serviceArns"]) == 3
    groups = aws(endpoint, "elbv2", "describe-target-groups", "--names", "a")["TargetGroups"]
    health = aws(endpoint, "elbv2", "describe-target-health",
                 "--target-group-arn", groups[0]["TargetGroupArn"])  # fmt: skip
    states = {d["TargetHealth"]["State"] for d in health["TargetHealthDescriptions"]}
    assert states == {"healthy"}
    found = aws(endpoint, "servicediscovery", "discover-instances",
                "--namespace-name", "awsapi.internal", "--service-name", "api")  # fmt: skip
    assert {i["InstanceId"] for i in found["Instances"]} == {
        t.id for t in twin.status().service("api").tasks
    }
    events = aws(endpoint, "logs", "filter-log-events", "--log-group-name", "/ecs/awsapi/web-a")
    assert events["events"]


def test_the_aws_cli_names_an_unsupported_operation(endpoint: str) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "awscli", "--endpoint-url", endpoint,
         "ecs", "create-cluster", "--cluster-name", "x"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert run.returncode != 0
    assert "UnknownOperationException" in run.stderr and "CreateCluster" in run.stderr
    assert "Traceback" not in run.stderr


# -- the AWS CLI v2 (Debian 12's awscli, /usr/bin/aws) --------------------------------------

FOLLOW_POLL_SECONDS = 5  # `aws logs tail --follow` calls FilterLogEvents every 5 s


@pytest.fixture(scope="module")
def aws_cli_v2() -> str:
    """The AWS CLI v2's version; its tests are skipped without it, and fail in CI."""
    version = cli_v2_version()
    if version is None:
        message = f"the AWS CLI v2 tests need /usr/bin/aws to be the AWS CLI v2: {INSTALL}"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs it (make system-packages): missing is an error
        pytest.skip(message)
    return version


def request_logged_by_web_a(twin: Twin) -> str:
    """A request through the public listener that a web-a task logs; the path it logs."""
    marker = f"/a/cli-v2-{uuid.uuid4().hex}"
    with httpx.Client(timeout=10) as http:
        assert http.get(listener_url(twin) + marker).status_code == 200
    return marker


def tail_until(
    endpoint: str, home: Path, marker: str, *args: str
) -> list[tuple[datetime, str, str]]:
    """`aws logs tail /ecs/awsapi/web-a ARGS` until its lines show ``marker``'s request (the
    log router writes a line within a second or so); its lines."""
    deadline = time.monotonic() + 20
    while True:
        printed = run_cli_v2(endpoint, "logs", "tail", "/ecs/awsapi/web-a", *args, home=home)
        lines = detailed_lines(printed.stdout)
        if any(message == f"GET {marker}" for _, _, message in lines):
            return lines
        assert time.monotonic() < deadline, f"no line for {marker} in:\n{printed.stdout}"
        time.sleep(0.5)


def test_aws_cli_v2_logs_tail_prints_the_tasks_lines(
    twin: Twin, endpoint: str, aws_cli_v2: str, tmp_path: Path
) -> None:
    marker = request_logged_by_web_a(twin)
    lines = tail_until(endpoint, tmp_path, marker)
    [(stamp, stream, _)] = [line for line in lines if line[2] == f"GET {marker}"]
    # interleaved as CloudWatch Logs does it: every stream of the group, in time order
    assert [line[0] for line in lines] == sorted(line[0] for line in lines)
    logs = client(endpoint, "logs")
    streams = logs.describe_log_streams(logGroupName="/ecs/awsapi/web-a")["logStreams"]
    assert {line[1] for line in lines} <= {s["logStreamName"] for s in streams}
    assert stream.rsplit("/", 1)[1] in {t.id for t in twin.status().service("web-a").tasks}
    # the time the CLI prints is the event's timestamp, to the millisecond
    [event] = logs.filter_log_events(logGroupName="/ecs/awsapi/web-a", filterPattern=marker)[
        "events"
    ]
    assert stamp == datetime.fromtimestamp(event["timestamp"] / 1000, UTC)
    short = run_cli_v2(endpoint, "logs", "tail", "/ecs/awsapi/web-a", "--format", "short",
                       "--filter-pattern", f'"{marker}"', home=tmp_path)  # fmt: skip
    assert short.stdout == f"{stamp:%Y-%m-%dT%H:%M:%S} GET {marker}\n"
    missing = subprocess.run(
        cli_v2(endpoint, "logs", "tail", "/ecs/awsapi/nope"),
        capture_output=True, text=True, timeout=60, env=cli_v2_environment(tmp_path),
        check=False,
    )  # fmt: skip
    assert missing.returncode != 0
    assert "ResourceNotFoundException" in missing.stderr and "Traceback" not in missing.stderr


def test_aws_cli_v2_logs_tail_since(
    twin: Twin, endpoint: str, aws_cli_v2: str, tmp_path: Path
) -> None:
    started = datetime.now(UTC)
    marker = request_logged_by_web_a(twin)
    lines = tail_until(endpoint, tmp_path, marker, "--since", "10m")
    assert min(line[0] for line in lines) >= started - timedelta(minutes=10, seconds=5)
    [stamp] = [line[0] for line in lines if line[2] == f"GET {marker}"]
    # --since an ISO time: from that millisecond on (the CLI sends it as startTime, cut to
    # the millisecond: half a millisecond more keeps float rounding off the boundary)
    since = (stamp + timedelta(microseconds=500)).isoformat()
    from_marker = run_cli_v2(endpoint, "logs", "tail", "/ecs/awsapi/web-a", "--since", since,
                             home=tmp_path)  # fmt: skip
    after = (stamp + timedelta(microseconds=1500)).isoformat()
    after_marker = run_cli_v2(endpoint, "logs", "tail", "/ecs/awsapi/web-a", "--since", after,
                              home=tmp_path)  # fmt: skip
    since_marker = detailed_lines(from_marker.stdout)
    since_after = detailed_lines(after_marker.stdout)
    assert since_marker[0][0] == stamp and min(line[0] for line in since_marker) == stamp
    assert f"GET {marker}" in {line[2] for line in since_marker}
    assert f"GET {marker}" not in {line[2] for line in since_after}
    assert all(line[0] > stamp for line in since_after)


def ctrl_c_not_ignored() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_aws_cli_v2_logs_tail_follow_shows_a_new_line_within_seconds(
    twin: Twin, endpoint: str, aws_cli_v2: str, tmp_path: Path
) -> None:
    follow = subprocess.Popen(
        cli_v2(endpoint, "logs", "tail", "/ecs/awsapi/web-a", "--follow", "--since", "1m"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_v2_environment(tmp_path),
        # Control-C works, as on a terminal, also when the tests run as a background job
        # (a shell starts those with SIGINT ignored, and the CLI would inherit that)
        preexec_fn=ctrl_c_not_ignored,
    )
    printed: list[tuple[float, str]] = []  # (monotonic time it came, line)
    reader = threading.Thread(
        target=lambda: printed.extend((time.monotonic(), line) for line in follow.stdout or ())
    )
    try:
        reader.start()
        deadline = time.monotonic() + 20
        while not printed:  # its first answer: the health checks' lines of the last minute
            assert follow.poll() is None and time.monotonic() < deadline, follow.stderr
            time.sleep(0.1)
        marker = request_logged_by_web_a(twin)
        sent = time.monotonic()
        shown = None
        while shown is None and time.monotonic() < sent + 3 * FOLLOW_POLL_SECONDS:
            shown = next((at for at, line in list(printed) if f" GET {marker}" in line), None)
            time.sleep(0.1)
        assert shown is not None, f"{marker} not shown by aws logs tail --follow"
        # seen at the CLI's next poll, 5 s at most, plus the log router's second or so
        assert shown - sent < FOLLOW_POLL_SECONDS + 2
        time.sleep(FOLLOW_POLL_SECONDS + 0.5)  # one more poll from the newest event's time
    finally:
        follow.send_signal(signal.SIGINT)  # the CLI's way out of --follow: Control-C
        try:
            follow.wait(timeout=10)
        finally:
            follow.kill()
            reader.join(timeout=10)
    assert follow.returncode in (0, 130), follow.returncode
    lines = [line.rstrip("\n") for _, line in printed]
    parsed = detailed_lines("\n".join(lines))
    assert [line[2] for line in parsed].count(f"GET {marker}") == 1
    # each event once, though each poll starts again at the newest event's millisecond:
    # no line printed more often than the group has it (lines read in one go from a task
    # have one time: the same line twice can be two events)
    pages = (
        client(endpoint, "logs")
        .get_paginator("filter_log_events")
        .paginate(logGroupName="/ecs/awsapi/web-a", startTime=int(parsed[0][0].timestamp() * 1000))
    )
    stored = collections.Counter(
        f"{datetime.fromtimestamp(e['timestamp'] / 1000, UTC).isoformat(timespec='microseconds')}"
        f" {e['logStreamName']} {e['message']}".rstrip()
        for page in pages
        for e in page["events"]
    )
    extra = collections.Counter(lines) - stored
    assert not extra, f"printed more often than stored: {extra}"


def test_aws_cli_v2_reads_ecs_elbv2_and_cloud_map(
    twin: Twin, endpoint: str, aws_cli_v2: str, tmp_path: Path
) -> None:
    def aws(*args: str, http_proxy: str | None = None) -> Any:
        run = run_cli_v2(endpoint, "--output", "json", *args, home=tmp_path,
                         http_proxy=http_proxy)  # fmt: skip
        return json.loads(run.stdout)

    services = aws("ecs", "list-services", "--cluster", CLUSTER)["serviceArns"]
    assert [arn.rsplit("/", 1)[1] for arn in services] == ["web-a", "web-b", "api"]
    group = aws("elbv2", "describe-target-groups", "--names", "a")["TargetGroups"][0]
    health = aws("elbv2", "describe-target-health",
                 "--target-group-arn", group["TargetGroupArn"])  # fmt: skip
    described = {
        f"{d['Target']['Id']}:{d['Target']['Port']}": d["TargetHealth"]["State"]
        for d in health["TargetHealthDescriptions"]
    }
    expected = twin.status().load_balancers.target_groups["a"].targets
    assert described == {f"{t.ip}:{t.port}": t.state.value for t in expected}
    # CLI 2.9.19 always puts DiscoverInstances' host prefix before the endpoint's host
    # (http://data-127.0.0.1:PORT/, which no resolver knows); with the endpoint as its HTTP
    # proxy, the request reaches the twin, which answers it as its own.
    discover = ["servicediscovery", "discover-instances",
                "--namespace-name", "awsapi.internal", "--service-name", "api"]  # fmt: skip
    found = aws(*discover, http_proxy=endpoint)
    assert {i["InstanceId"] for i in found["Instances"]} == {
        t.id for t in twin.status().service("api").tasks
    }
    debug = run_cli_v2(endpoint, *discover, "--debug", home=tmp_path, http_proxy=endpoint)
    prefixed = endpoint.replace("http://", "http://data-")
    assert f'"POST {prefixed}/ HTTP/1.1" 200' in debug.stderr
