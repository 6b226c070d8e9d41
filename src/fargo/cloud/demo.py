"""AWS as a demonstration world (`fargo.demo.world.World`): the seven points against the
deployed system, after ``fargo deploy`` and on ``fargo demo --cloud``.

    outputs = stack_outputs(session, spec)
    points = asyncio.run(run_cloud_demo(spec, session, outputs, calls=20))

The requests go to the public load balancer as in the twin (its domain, or its DNS name
with the certificate's name as TLS server name and Host). What only AWS knows comes
from its APIs, read-only:

- point 1: each running task's ENI (ECS DescribeTasks, EC2 DescribeNetworkInterfaces)
  has no public address, and its subnet's route table sends 0.0.0.0/0 to an available
  NAT gateway (DescribeRouteTables, DescribeNatGateways): the only way its image pull
  reached ECR;
- point 5: Cloud Map DiscoverInstances, the healthy instances Route 53 answers for
  inside the VPC (the private hosted zone answers nowhere else);
- point 6: the task that logged a request, found in the services' CloudWatch log groups
  (FilterLogEvents; the awslogs stream is ``<service>/<container>/<task id>``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import ssl
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO
from urllib.parse import urlsplit

from fargo.cloud.names import pascal
from fargo.cloud.policy import APP_STACK
from fargo.demo import report
from fargo.demo.points import run_points
from fargo.demo.report import Point
from fargo.demo.requests import PublicListener, public_listener
from fargo.spec import Spec

# CloudWatch Logs makes an event searchable seconds after the task wrote it.
LOG_WAIT_SECONDS = 60.0
LOG_POLL_SECONDS = 2.0
# How far before the mark a log search starts: the laptop's clock and AWS's may differ.
CLOCK_SKEW_MS = 60_000
DESCRIBE_TASKS_BATCH = 100  # ECS DescribeTasks takes at most 100 tasks


def cloud_demo(spec: Spec, *, calls: int, as_json: bool = False, out: TextIO | None = None) -> int:
    """``fargo demo --cloud``: the points against the deployed system; the exit status."""
    out = out or sys.stdout
    if importlib.util.find_spec("boto3") is None:
        print("fargo demo --cloud needs boto3: pip install 'fargo[cloud]'", file=sys.stderr)
        return 2
    from fargo.cloud.prerequisites import credentials_problem

    if (problem := credentials_problem()) is not None:
        print(
            f"fargo demo --cloud: no AWS credentials ({problem}); configure them as for the "
            "AWS CLI (aws configure, aws sso login, or AWS_PROFILE)",
            file=sys.stderr,
        )
        return 2
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    session = boto3.Session(region_name=spec.region)
    try:
        outputs = stack_outputs(session, spec)
        return print_points(spec, session, outputs, calls=calls, as_json=as_json, out=out)
    except StackNotDeployed as err:
        print(f"fargo demo --cloud: {err}", file=sys.stderr)
    except (BotoCoreError, ClientError) as err:
        print(f"fargo demo --cloud: AWS answered: {err}", file=sys.stderr)
    return 1


def print_points(
    spec: Spec,
    session: Any,
    outputs: Mapping[str, str],
    *,
    calls: int,
    out: TextIO,
    as_json: bool = False,
) -> int:
    """Check and print the points; 0 if none failed, else 1."""
    points = asyncio.run(run_cloud_demo(spec, session, outputs, calls=calls))
    text = json.dumps(report.as_json(points), indent=2) if as_json else report.render(points)
    print(text, file=out)
    return 0 if all(p.status != "fail" for p in points) else 1


class StackNotDeployed(Exception):
    """The app stack is not deployed (or not complete) in the spec's region."""


def stack_outputs(session: Any, spec: Spec) -> dict[str, str]:
    """The app stack's outputs (``ClusterName``, ``<Lb>Url``, ``<Service>ServiceName``, …)."""
    from botocore.exceptions import ClientError

    name = f"{spec.name}-{APP_STACK}"
    try:
        (stack,) = session.client("cloudformation").describe_stacks(StackName=name)["Stacks"]
    except ClientError as err:
        if "does not exist" in str(err):
            raise StackNotDeployed(
                f"the stack {name} is not deployed in {spec.region}: run `fargo deploy` first"
            ) from err
        raise
    if not stack["StackStatus"].endswith("_COMPLETE") or "ROLLBACK" in stack["StackStatus"]:
        raise StackNotDeployed(f"the stack {name} is {stack['StackStatus']}, not deployed")
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


async def run_cloud_demo(
    spec: Spec, session: Any, outputs: Mapping[str, str], *, calls: int
) -> list[Point]:
    """The seven points, checked against the deployed system."""
    world = await asyncio.to_thread(Aws.connect, spec, session, outputs)
    return await run_points(spec, world, calls=calls)


class Aws:
    """The deployed system, through its stack outputs and read-only AWS API calls."""

    trusted = "this machine's trusted certificate authorities"
    source_ip: str | None = None  # the laptop's address as the ALB sees it: unknown here

    def __init__(
        self,
        spec: Spec,
        session: Any,
        outputs: Mapping[str, str],
        services: Mapping[str, Mapping[str, Any]],
    ) -> None:
        self.spec = spec
        self.session = session
        self.cluster = outputs.get("ClusterName", "")
        self.services = services  # spec name → ECS DescribeServices entry
        self.log_groups = {
            name: outputs[key]
            for name in spec.services
            if (key := f"{pascal(name)}LogGroupName") in outputs
        }
        self.public = public_endpoint(spec, outputs)
        self.ssl_context = ssl.create_default_context()

    @classmethod
    def connect(cls, spec: Spec, session: Any, outputs: Mapping[str, str]) -> Aws:
        deployed = {
            name: outputs[key]
            for name in spec.services
            if (key := f"{pascal(name)}ServiceName") in outputs
        }
        described: dict[str, Mapping[str, Any]] = {}
        if deployed and "ClusterName" in outputs:
            ecs = session.client("ecs")
            names = list(deployed.values())
            by_name: dict[str, Mapping[str, Any]] = {}
            for start in range(0, len(names), 10):  # DescribeServices takes 10 at a time
                answer = ecs.describe_services(
                    cluster=outputs["ClusterName"], services=names[start : start + 10]
                )
                by_name |= {s["serviceName"]: s for s in answer["services"]}
            described = {n: by_name[d] for n, d in deployed.items() if d in by_name}
        return cls(spec, session, outputs, described)

    def desired(self, service: str) -> int:
        return int(self.services.get(service, {}).get("desiredCount", 0))

    def registered_targets(self, target_groups: list[str]) -> int:
        return sum(
            int(self.services.get(name, {}).get("runningCount", 0))
            for name, service in self.spec.services.items()
            if set(service.target_groups) & set(target_groups)
        )

    async def image_pulls(self, point: Point) -> Point:
        if self.spec.network.nat_gateways == 0:
            return point.skip("the spec has no NAT gateway: private tasks reach ECR otherwise")
        return await asyncio.to_thread(self._image_pulls, point)

    def _image_pulls(self, point: Point) -> Point:
        tasks = self._running_tasks()
        enis = {eni: task for task in tasks if (eni := _eni_of(task)) is not None}
        ec2 = self.session.client("ec2")
        public = {}
        if enis:
            for interface in ec2.describe_network_interfaces(NetworkInterfaceIds=list(enis))[
                "NetworkInterfaces"
            ]:
                public[interface["NetworkInterfaceId"]] = interface.get("Association", {}).get(
                    "PublicIp"
                )
        subnets = sorted({_detail(t, "subnetId") for t in tasks} - {""})
        routes = _default_routes(ec2, subnets)
        nats = _nat_gateways(ec2, sorted({r for r in routes.values() if r.startswith("nat-")}))
        rows, problems = [], []
        for task in tasks:
            task_id = task["taskArn"].rsplit("/", 1)[-1]
            subnet = _detail(task, "subnetId")
            via = routes.get(subnet, "")
            nat = nats.get(via, {})
            eni = _eni_of(task) or ""
            if not via.startswith("nat-"):
                problems.append(f"{task_id}: 0.0.0.0/0 of {subnet} goes to {via or 'nothing'}")
            elif nat.get("state") != "available":
                problems.append(f"{task_id}: NAT gateway {via} is {nat.get('state', 'missing')}")
            if public.get(eni):
                problems.append(f"{task_id}: has the public address {public[eni]}")
            if "pullStoppedAt" not in task:
                problems.append(f"{task_id}: its image pull has not finished")
            rows.append(
                {
                    "task": task_id[:12],
                    "service": task.get("group", "").removeprefix("service:"),
                    "private_ip": _detail(task, "privateIPv4Address"),
                    "subnet": subnet,
                    "default_route": f"{via} ({nat.get('public_ip', '?')})" if nat else via,
                    "public_ip": public.get(eni) or "none",
                    "digest": str(task["containers"][0].get("imageDigest", ""))[:19],
                    "pull_seconds": _pull_seconds(task),
                }
            )
        return point.done(
            bool(tasks) and not problems,
            nat_gateways={nat_id: nat["public_ip"] for nat_id, nat in nats.items()},
            tasks=rows,
            **({"problems": problems} if problems else {}),
            **({} if tasks else {"reason": "no running task"}),
        )

    def _running_tasks(self) -> list[dict[str, Any]]:
        ecs = self.session.client("ecs")
        arns: list[str] = []
        for service in self.services.values():
            pages = ecs.get_paginator("list_tasks").paginate(
                cluster=self.cluster, serviceName=service["serviceName"], desiredStatus="RUNNING"
            )
            arns += [arn for page in pages for arn in page["taskArns"]]
        tasks: list[dict[str, Any]] = []
        for start in range(0, len(arns), DESCRIBE_TASKS_BATCH):
            batch = arns[start : start + DESCRIBE_TASKS_BATCH]
            tasks += ecs.describe_tasks(cluster=self.cluster, tasks=batch)["tasks"]
        return [t for t in tasks if t.get("lastStatus") == "RUNNING"]

    async def discovery_answers(self, point: Point, name: str) -> list[dict[str, Any]]:
        discovery = self.spec.discovery
        assert discovery is not None  # the caller found the name in it
        service = name.removesuffix("." + discovery.namespace)
        point.evidence["asked"] = (
            "Cloud Map DiscoverInstances (healthy instances: the records Route 53 answers "
            "inside the VPC)"
        )
        answer = await asyncio.to_thread(
            self.session.client("servicediscovery").discover_instances,
            NamespaceName=discovery.namespace,
            ServiceName=service,
            HealthStatus="HEALTHY",
            MaxResults=100,
        )
        records = [
            i["Attributes"]["AWS_INSTANCE_IPV4"]
            for i in answer["Instances"]
            if "AWS_INSTANCE_IPV4" in i.get("Attributes", {})
        ]
        return [{"records": records}]

    def request_log(self) -> CloudWatchLogs:
        return CloudWatchLogs(self.session.client("logs"), self.log_groups)


class CloudWatchLogs:
    """The services' awslogs log groups, searched for a request."""

    def __init__(self, client: Any, log_groups: Mapping[str, str]) -> None:
        self.client = client
        self.log_groups = log_groups  # spec service name → log group name
        self.since_ms = 0

    async def mark(self) -> None:
        self.since_ms = int(time.time() * 1000) - CLOCK_SKEW_MS

    async def find(self, needle: str) -> tuple[str, str] | None:
        deadline = time.monotonic() + LOG_WAIT_SECONDS
        while True:
            found = await asyncio.to_thread(self._search, needle)
            if found is not None or time.monotonic() >= deadline:
                return found
            await asyncio.sleep(LOG_POLL_SECONDS)

    def _search(self, needle: str) -> tuple[str, str] | None:
        for group in self.log_groups.values():
            answer = self.client.filter_log_events(
                logGroupName=group, filterPattern=f'"{needle}"', startTime=self.since_ms
            )
            for event in answer.get("events", []):
                if needle in event.get("message", ""):
                    # awslogs names a stream <prefix>/<container>/<task id>; prefix: the service
                    prefix, _, task = event["logStreamName"].partition("/")
                    return prefix, task.rsplit("/", 1)[-1]
        return None


def public_endpoint(spec: Spec, outputs: Mapping[str, str]) -> PublicListener | None:
    """The internet-facing HTTPS listener, at the URL the stack output gives.

    Without an alias record (a certificate given by ARN), the URL is the load balancer's
    DNS name and the certificate's domain is sent as TLS server name and Host header."""
    urls: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    for name, lb in spec.load_balancers.items():
        url = outputs.get(f"{pascal(name)}Url")
        if lb.scheme != "internet-facing" or url is None:
            continue
        host = urlsplit(url).hostname or ""
        urls[name] = [
            f"{lst.protocol.lower()}://{host}"
            + ("" if lst.port == {"HTTP": 80, "HTTPS": 443}[lst.protocol] else f":{lst.port}")
            for lst in lb.listeners
        ]
        if lb.certificate is not None and lb.certificate.domain != host:
            names[name] = lb.certificate.domain
    public = public_listener(
        spec.model_copy(
            update={"load_balancers": {n: lb for n, lb in spec.load_balancers.items() if n in urls}}
        ),
        urls,
    )
    if public is None:
        return None
    owner = next(n for n, u in urls.items() if public.https_url in u)
    return PublicListener(
        https_url=public.https_url,
        listener=public.listener,
        http_url=public.http_url,
        http_listener=public.http_listener,
        server_name=names.get(owner),
    )


def _eni_of(task: Mapping[str, Any]) -> str | None:
    value = _detail(task, "networkInterfaceId")
    return value or None


def _detail(task: Mapping[str, Any], name: str) -> str:
    for attachment in task.get("attachments", []):
        if attachment.get("type") == "ElasticNetworkInterface":
            for detail in attachment.get("details", []):
                if detail.get("name") == name:
                    return str(detail.get("value", ""))
    return ""


def _default_routes(ec2: Any, subnets: list[str]) -> dict[str, str]:
    """Subnet → where its route table sends 0.0.0.0/0 (a NAT gateway or gateway id)."""
    if not subnets:
        return {}
    tables = ec2.describe_route_tables(
        Filters=[{"Name": "association.subnet-id", "Values": subnets}]
    )["RouteTables"]
    routes: dict[str, str] = {}
    for table in tables:
        default: Mapping[str, Any] = next(
            (r for r in table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"), {}
        )
        target = default.get("NatGatewayId") or default.get("GatewayId") or ""
        for association in table.get("Associations", []):
            if association.get("SubnetId") in subnets:
                routes[association["SubnetId"]] = target
    return routes


def _nat_gateways(ec2: Any, ids: list[str]) -> dict[str, dict[str, str]]:
    if not ids:
        return {}
    gateways = ec2.describe_nat_gateways(NatGatewayIds=ids)["NatGateways"]
    return {
        g["NatGatewayId"]: {
            "state": g["State"],
            "subnet": g.get("SubnetId", ""),
            "public_ip": next(
                (a["PublicIp"] for a in g.get("NatGatewayAddresses", []) if "PublicIp" in a), ""
            ),
        }
        for g in gateways
    }


def _pull_seconds(task: Mapping[str, Any]) -> float | None:
    started, stopped = task.get("pullStartedAt"), task.get("pullStoppedAt")
    if started is None or stopped is None:
        return None
    return round(float((stopped - started).total_seconds()), 1)
