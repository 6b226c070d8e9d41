"""The reference system on the twin: demonstration points 2–7 over real sockets, DNS and TLS."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import socket
import ssl
import warnings

import dns.message
import dns.query
import dns.rdatatype
import httpx
import jsonschema
import pytest
from tests.cloud.demo_answers import (
    CLUSTER,
    interfaces_answer,
    nat_answer,
    route_tables_answer,
    service_answer,
    task_answer,
)
from tests.cloud.stubs import StubbedSession, activated
from tests.e2e.conftest import Twin, fargo, under_load
from tests.waiting import wait_until

from fargo.cloud.demo import Aws
from fargo.demo.points import run_points
from fargo.demo.requests import PublicListener
from fargo.local.demo.twin import TaskLogFiles
from fargo.local.status import ServiceState, TaskSummary
from fargo.spec import load_spec

pytestmark = pytest.mark.slow  # one twin of the reference system for the module

CALLS = 16


def client(twin: Twin) -> httpx.Client:
    return httpx.Client(verify=ssl.create_default_context(cafile=twin.ca), timeout=10)


def task_ids(twin: Twin, path: str) -> collections.Counter[str]:
    seen: collections.Counter[str] = collections.Counter()
    with client(twin) as http:
        for _ in range(CALLS):
            response = http.get(twin.url("public", "https") + path)
            assert response.status_code == 200, response.text
            assert response.text.startswith("TaskId: ")
            seen[response.text.removeprefix("TaskId: ").strip()] += 1
    return seen


def ip_of(task: TaskSummary) -> str:
    assert task.address is not None, task
    return task.address.rsplit(":", 1)[0]


def test_every_service_has_its_desired_count_of_healthy_tasks(reference_twin: Twin) -> None:
    counts = {s.name: (s.desired, s.healthy) for s in reference_twin.status().services}
    assert counts == {
        "frontend": (1, 1),
        "backend-public": (1, 1),
        "backend-private": (2, 2),
        "backend-private-with-alb": (2, 2),
    }


def test_public_listeners_are_served_on_the_published_ports(reference_twin: Twin) -> None:
    published = {f"https://127.0.0.1:{reference_twin.publish[443]}"}
    published.add(f"http://127.0.0.1:{reference_twin.publish[80]}")
    assert set(reference_twin.endpoints.load_balancers["public"]) == published


def test_point_7_https_with_the_twins_certificate(reference_twin: Twin) -> None:
    context = ssl.create_default_context(cafile=reference_twin.ca)
    with (
        socket.create_connection(reference_twin.address("public", "https")) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.version() in {"TLSv1.2", "TLSv1.3"}
        names = [value for _, value in tls.getpeercert()["subjectAltName"]]
    assert "fargo.example.com" in names and "localhost" in names


def test_tls_1_1_is_refused_by_the_server(reference_twin: Twin) -> None:
    def handshake(version: ssl.TLSVersion) -> str:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(reference_twin.ca)
        context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client offer old protocols
        context.minimum_version = context.maximum_version = version
        with (
            socket.create_connection(reference_twin.address("public", "https")) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            return tls.version() or ""

    assert handshake(ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(ssl.SSLError, match="ALERT_PROTOCOL_VERSION"):
            handshake(ssl.TLSVersion.TLSv1_1)


def test_unverified_client_is_rejected_by_its_own_check(reference_twin: Twin) -> None:
    with httpx.Client(timeout=5) as http:  # system trust store: the twin's CA is not in it
        try:
            http.get(reference_twin.url("public", "https") + "/api/public")
            raise AssertionError("the twin's certificate verified against the system trust store")
        except httpx.ConnectError as err:
            assert "CERTIFICATE_VERIFY_FAILED" in str(err)


def test_http_redirects_to_https_with_301(reference_twin: Twin) -> None:
    with httpx.Client(timeout=5) as http:
        response = http.get(reference_twin.url("public", "http") + "/api/public?x=1")
    assert response.status_code == 301
    # to the spec's port 443, which is served on the port published for it
    https = f"https://127.0.0.1:{reference_twin.publish[443]}"
    assert response.headers["location"] == https + "/api/public?x=1"


def test_point_6_rules_route_api_to_backend_public_and_the_rest_to_frontend(
    reference_twin: Twin,
) -> None:
    with client(reference_twin) as http:
        base = reference_twin.url("public", "https")
        assert http.get(base + "/api/public").text == "Hello world"
        page = http.get(base + "/")
        assert page.status_code == 200 and "<html" in page.text.lower()
        assert (
            http.get(base + "/API/public").status_code != 200
            or "Hello" not in http.get(base + "/API/public").text
        )
        assert http.get(base + "/api/nothing-here").status_code == 404  # backend-public's own 404


def test_points_2_and_4_internal_load_balancer_reaches_and_balances(reference_twin: Twin) -> None:
    seen = task_ids(reference_twin, "/api/private-with-alb")
    tasks = {t.id for t in reference_twin.service("backend-private-with-alb").tasks}
    assert set(seen) == tasks and len(tasks) == 2


def test_points_3_and_5_discovery_reaches_and_balances(reference_twin: Twin) -> None:
    seen = task_ids(reference_twin, "/api/private")
    tasks = {t.id for t in reference_twin.service("backend-private").tasks}
    assert set(seen) == tasks and len(tasks) == 2


def test_discovery_dns_answers_multivalue_with_the_spec_ttl(reference_twin: Twin) -> None:
    host, port = reference_twin.status().endpoints.discovery_dns_server.rsplit(":", 1)
    query = dns.message.make_query("private.backend.microservice.local", dns.rdatatype.A)
    orders = set()
    for _ in range(12):
        response = dns.query.udp(query, host, port=int(port), timeout=2)
        (rrset,) = response.answer
        assert rrset.ttl == 60
        orders.add(tuple(r.address for r in rrset))
    addresses = {a for order in orders for a in order}
    tasks = {ip_of(t) for t in reference_twin.service("backend-private").tasks}
    assert addresses == tasks
    assert len(orders) == 2  # random order across answers
    tcp = dns.query.tcp(
        dns.message.make_query("nope.microservice.local", "A"), host, port=int(port), timeout=2
    )
    assert tcp.rcode() == dns.rcode.NXDOMAIN


def test_internal_load_balancer_has_a_dns_name(reference_twin: Twin) -> None:
    status = reference_twin.status()
    name = status.endpoints.load_balancer_dns_names["internal"]
    host, port = status.endpoints.discovery_dns_server.rsplit(":", 1)
    response = dns.query.udp(dns.message.make_query(name, "A"), host, port=int(port), timeout=2)
    (rrset,) = response.answer
    internal_url = reference_twin.url("internal", "http")
    assert rrset[0].address == internal_url.split("//")[1].split(":")[0]


def test_task_metadata_and_environment(reference_twin: Twin) -> None:
    task = reference_twin.service("backend-private").tasks[0]
    environ = next(p for p in reference_twin.processes() if p.pid == task.pid).environ()
    assert environ["AWS_REGION"] == "us-east-1"
    uri = environ["ECS_CONTAINER_METADATA_URI_V4"]
    document = json.loads(httpx.get(uri + "/task").text)
    # the id alone, without the task's token, opens nothing (another task knows the id)
    assert uri.rsplit("/", 1)[1].startswith(f"{task.id}-")
    assert httpx.get(uri.rsplit("-", 1)[0] + "/task").status_code == 404
    assert document["TaskARN"].endswith("/" + task.id)
    assert document["LaunchType"] == "FARGATE" and document["Family"].endswith("backend-private")
    assert document["Containers"][0]["Networks"][0]["IPv4Addresses"] == [ip_of(task)]
    public = reference_twin.service("backend-public").tasks[0]
    public_env = next(p for p in reference_twin.processes() if p.pid == public.pid).environ()
    assert public_env["PRIVATE_DISCOVERY_URL"] == "http://private.backend.microservice.local:8090"
    assert public_env["PRIVATE_ALB_URL"].startswith("http://internal-fargo-demo-internal.")


def test_a_killed_task_is_replaced_with_a_new_id(reference_twin: Twin) -> None:
    before = reference_twin.service("backend-private").tasks
    victim = before[0]
    assert victim.pid is not None
    os.kill(victim.pid, signal.SIGKILL)

    def replaced() -> bool:
        service = reference_twin.service("backend-private")
        ids = {t.id for t in service.tasks}
        return victim.id not in ids and service.healthy == 2

    wait_until(replaced, timeout=30, what="a replacement task")
    seen = task_ids(reference_twin, "/api/private")
    assert victim.id not in seen
    service = reference_twin.service("backend-private")
    assert service.restarts >= 1 and service.state is ServiceState.ACTIVE
    assert service.last_stop_reason == "Essential container in task exited (exit code -9)"


def test_status_and_logs_commands(reference_twin: Twin) -> None:
    text = fargo("status", "--state-dir", str(reference_twin.state_dir)).stdout
    assert "backend-private-with-alb" in text and "private.backend.microservice.local" in text
    assert "readiness: ready" in text
    row = next(line for line in text.splitlines() if line.split()[:1] == ["backend-private"])
    assert row.split()[1:3] == ["2/2", "ACTIVE"]
    logs = fargo("logs", "backend-public", "--state-dir", str(reference_twin.state_dir)).stdout
    assert '"path": "/api/public"' in logs or '"path":"/api/public"' in logs


def test_logs_in_time_order_tail_since_health_checks_and_previous_tasks(
    reference_twin: Twin,
) -> None:
    state_dir = str(reference_twin.state_dir)
    marker = f"/api/logs-{os.getpid()}"  # backend-public answers 404, and logs the path
    with client(reference_twin) as http:
        for _ in range(3):
            assert http.get(reference_twin.url("public", "https") + marker).status_code == 404
    wait_until(
        lambda: "logs-" in fargo("logs", "backend-public", "--state-dir", state_dir).stdout,
        timeout=5,
        what="the requests in the log",
    )
    every = fargo("logs", "--state-dir", state_dir, "--timestamps").stdout.splitlines()
    times = [line.split(" | ", 1)[1].split(" ", 1)[0] for line in every]
    assert times == sorted(times)  # one stream, in time order, across every task
    assert {line.split("/", 1)[0] for line in every} >= {"frontend", "backend-private"}

    quiet = fargo("logs", "--state-dir", state_dir, "--no-health-checks").stdout
    assert "ELB-HealthChecker" in "\n".join(every) and "ELB-HealthChecker" not in quiet
    assert "fargo-container-health-check" not in quiet

    tail = fargo("logs", "backend-public", "--tail", "2", "--state-dir", state_dir)
    assert len(tail.stdout.splitlines()) == 2
    assert fargo("logs", "--since", "0s", "--state-dir", state_dir).stdout.count("\n") < 20

    stopped = {t.id[:8] for t in reference_twin.service("backend-private").tasks}
    fargo("restart", "backend-private", "--state-dir", state_dir)  # both tasks replaced
    now = fargo("logs", "backend-private", "--state-dir", state_dir).stdout
    with_previous = fargo("logs", "backend-private", "--previous", "--state-dir", state_dir)
    assert not any(f"backend-private/{task}" in now for task in stopped)
    assert all(f"backend-private/{task}" in with_previous.stdout for task in stopped)


def test_status_json_satisfies_the_schema_fargo_prints(reference_twin: Twin) -> None:
    state_dir = str(reference_twin.state_dir)
    printed = json.loads(fargo("status", "--json", "--state-dir", state_dir).stdout)
    schema = json.loads(fargo("status", "--json-schema").stdout)

    jsonschema.Draft202012Validator(schema).validate(printed)
    assert printed["schema_version"] == 1
    assert {s["name"]: s["state"] for s in printed["services"]} == dict.fromkeys(
        ["frontend", "backend-public", "backend-private", "backend-private-with-alb"], "ACTIVE"
    )
    assert printed["load_balancers"]["data_planes"][0]["pid"] is not None


def test_demo_passes_points_2_to_7(reference_twin: Twin) -> None:
    result = fargo("demo", "--json", "--state-dir", str(reference_twin.state_dir), check=False)
    points = {p["number"]: p["status"] for p in json.loads(result.stdout)}
    assert points == {
        1: "skipped",
        2: "pass",
        3: "pass",
        4: "pass",
        5: "pass",
        6: "pass",
        7: "pass",
    }, result.stdout
    assert result.returncode == 0


class AwsOverTheTwin(Aws):
    """AWS's demo world whose data plane is the twin: the requests go to the twin's public
    listener as to an ALB's DNS name (the certificate's name as TLS server name and Host);
    the AWS API answers are recorded shapes (Stubber) filled from the twin's live tasks;
    the request log is the twin's task logs, where CloudWatch Logs would have the lines."""

    def __init__(self, twin: Twin, session: StubbedSession) -> None:
        spec = load_spec(twin.spec)
        status = twin.status()
        described = {
            s.name: service_answer(f"fargo-demo-{s.name}", s.desired, s.healthy)
            for s in status.services
        }
        super().__init__(spec, session, {"ClusterName": CLUSTER}, described)
        self.status = status
        url = twin.url("public", "https")
        assert self.public is None  # no PublicUrl output: the twin's listener stands in
        listener = next(lst for lst in spec.load_balancers["public"].listeners if lst.port == 443)
        http = next(lst for lst in spec.load_balancers["public"].listeners if lst.port == 80)
        self.public = PublicListener(
            https_url=url.replace("localhost", "127.0.0.1"),
            listener=listener,
            http_url=twin.url("public", "http"),
            http_listener=http,
            server_name="fargo.example.com",
        )
        self.ssl_context = ssl.create_default_context(cafile=twin.ca)

    def request_log(self) -> TaskLogFiles:
        return TaskLogFiles(self.status)


def test_the_cloud_demo_checks_every_point_through_an_albs_dns_name(reference_twin: Twin) -> None:
    session = StubbedSession()
    world = AwsOverTheTwin(reference_twin, session)
    tasks = [t for s in world.status.services for t in s.tasks]
    ecs, ec2 = session.stub("ecs"), session.stub("ec2")
    answers = []
    for index, task in enumerate(tasks):
        answers.append(
            task_answer(
                task.id,
                f"fargo-demo-{task.service}",
                subnet=f"subnet-private-{index % 2}",
                eni=f"eni-{index:08x}",
                ip=ip_of(task),
            )
        )
    for service in world.services.values():
        ecs.add_response(
            "list_tasks",
            {
                "taskArns": [
                    a["taskArn"]
                    for a in answers
                    if a["group"] == f"service:{service['serviceName']}"
                ]
            },
        )
    ecs.add_response("describe_tasks", {"tasks": answers})
    ec2.add_response(
        "describe_network_interfaces",
        interfaces_answer({f"eni-{i:08x}": None for i in range(len(tasks))}),
    )
    nat = {"NatGatewayId": "nat-0feedbeef"}
    ec2.add_response(
        "describe_route_tables",
        route_tables_answer({"subnet-private-0": nat, "subnet-private-1": nat}),
    )
    ec2.add_response("describe_nat_gateways", nat_answer("nat-0feedbeef", "203.0.113.25"))
    private = [ip_of(t) for t in reference_twin.service("backend-private").tasks]
    session.stub("servicediscovery").add_response(
        "discover_instances",
        {
            "Instances": [
                {"InstanceId": f"i{n}", "Attributes": {"AWS_INSTANCE_IPV4": ip}}
                for n, ip in enumerate(private)
            ]
        },
    )
    with activated(session):
        points = asyncio.run(run_points(world.spec, world, calls=CALLS))
    assert {p.number: p.status for p in points} == dict.fromkeys(range(1, 8), "pass"), [
        (p.number, p.evidence) for p in points if p.status != "pass"
    ]
    evidence = {p.number: p.evidence for p in points}
    assert "fargo.example.com" in evidence[7]["names"]
    assert evidence[7]["verified_against"] == world.trusted
    answered = [r.get("answered_by", "") for r in evidence[6]["requests"]]
    assert any(a.startswith("frontend/") for a in answered), evidence[6]
    assert any(a.startswith("backend-public/") for a in answered), evidence[6]
    assert len(evidence[4]["task_ids"]) == 2 and evidence[5]["answers"] == [{"records": private}]


def test_rolling_deployment_under_load_fails_no_request(reference_twin: Twin) -> None:
    before = {t.id for t in reference_twin.service("backend-private-with-alb").tasks}
    with under_load(reference_twin, "/api/private-with-alb") as statuses:
        result = fargo(
            "update-service",
            "backend-private-with-alb",
            "--state-dir",
            str(reference_twin.state_dir),
        )
    assert "completed" in result.stdout
    after = {t.id for t in reference_twin.service("backend-private-with-alb").tasks}
    assert len(after) == 2 and not after & before
    assert statuses[200] > 20 and set(statuses) == {200}, statuses


def test_restart_replaces_every_task_under_load_without_a_failed_request(
    reference_twin: Twin,
) -> None:
    state_dir = str(reference_twin.state_dir)
    before = {t.id for t in reference_twin.service("backend-public").tasks}
    with under_load(reference_twin, "/api/public") as statuses:
        result = fargo("restart", "backend-public", "--state-dir", state_dir)
    assert "completed" in result.stdout, result.stdout
    after = {t.id for t in reference_twin.service("backend-public").tasks}
    assert len(after) == 1 and not after & before
    assert statuses[200] > 20 and set(statuses) == {200}, statuses


def test_scale_out_and_in_with_ps_showing_each_task(reference_twin: Twin) -> None:
    state_dir = str(reference_twin.state_dir)
    result = fargo("scale", "backend-private", "3", "--state-dir", state_dir)
    assert "3 of 3 tasks healthy" in result.stdout, result.stdout
    service = reference_twin.service("backend-private")
    assert (service.desired, service.healthy, len(service.tasks)) == (3, 3, 3)
    # The new task takes traffic once backend-public's cached addresses expire (5 s).
    seen: collections.Counter[str] = collections.Counter()

    def every_task_answered() -> bool:
        seen.update(task_ids(reference_twin, "/api/private"))
        return len(seen) == 3

    wait_until(every_task_answered, timeout=15, what="all three tasks answering /api/private")

    listed = fargo("ps", "-s", "backend-private", "--state-dir", state_dir).stdout.splitlines()
    header, *rows = listed
    assert header.split()[:3] == ["SERVICE", "TASK", "ADDRESS"] and len(rows) == 3
    for task, row in zip(
        sorted(service.tasks, key=lambda t: t.id),
        sorted(rows, key=lambda r: r.split()[1]),
        strict=True,
    ):
        cells = row.split()
        assert cells[:4] == ["backend-private", task.id[:12], task.address, task.availability_zone]
        assert cells[4:6] == ["RUNNING", "HEALTHY"]
        assert float(cells[7]) >= 0 and cells[9] == "MiB" and int(cells[8]) > 5  # a live process

    result = fargo("scale", "backend-private", "2", "--state-dir", state_dir)
    service = reference_twin.service("backend-private")
    assert (service.desired, service.healthy, len(service.tasks)) == (2, 2, 2), result.stdout


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["scale", "no-such-service", "2"], "no service named 'no-such-service'"),
        (["scale", "frontend", "1001"], "a desired count is 0 to 1000; found 1001"),
        (["restart", "no-such-service"], "no service named 'no-such-service'"),
        (["ps", "-s", "no-such-service"], "no service 'no-such-service'"),
    ],
)
def test_service_commands_name_what_is_wrong(
    reference_twin: Twin, args: list[str], said: str
) -> None:
    result = fargo(*args, "--state-dir", str(reference_twin.state_dir), check=False)
    assert result.returncode == 1 and said in result.stderr, result.stderr
