"""Metrics and ALB access logs of a running twin: requests sent through its load balancers
are counted and logged, each with the trace id the load balancer forwarded."""

from __future__ import annotations

import asyncio
import itertools
import ssl
from pathlib import Path

import httpx
import pytest
from tests.e2e.conftest import Twin, fargo
from tests.local.alb_log_format import parse
from tests.waiting import wait_until

from fargo.local.control.client import ControlClient
from fargo.local.state import folder as state
from fargo.local.status import MetricsStatus
from fargo.spec import load_spec

pytestmark = pytest.mark.slow

PUBLIC, THROUGH_INTERNAL, MISSING = 30, 10, 3


def metrics(twin: Twin) -> MetricsStatus:
    client = ControlClient(state.control_socket(twin.state_dir.resolve()))
    return asyncio.run(client.metrics())


def total(answer: MetricsStatus, name: str, **dimensions: str) -> float:
    """The sum of every datapoint of the metric with exactly these dimensions."""
    return sum(
        point.value
        for metric in answer.metrics
        if metric.metric_name == name and metric.dimensions == dimensions
        for point in metric.datapoints
    )


def alb_lines(twin: Twin, load_balancer: str) -> list[dict[str, str]]:
    path = twin.state_dir / "logs" / "alb" / load_balancer / "access.log"
    return [parse(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture(scope="module")
def requests_sent(reference_twin: Twin) -> Twin:
    url = reference_twin.url("public", "https")
    verify = ssl.create_default_context(cafile=reference_twin.ca)
    with httpx.Client(verify=verify, timeout=10, headers={"User-Agent": "metrics-test"}) as http:
        codes = [http.get(url + "/api/public").status_code for _ in range(PUBLIC)]
        codes += [
            http.get(url + "/api/private-with-alb").status_code for _ in range(THROUGH_INTERNAL)
        ]
        missing = [http.get(url + "/no-such-page").status_code for _ in range(MISSING)]
    assert set(codes) == {200}
    assert set(missing) == {404}  # the frontend's answer (the listener's default action)
    return reference_twin


def test_metrics_count_the_requests_sent_through_the_load_balancers(requests_sent: Twin) -> None:
    group = {"LoadBalancer": "public", "TargetGroup": "backend-public"}
    internal = {"LoadBalancer": "internal", "TargetGroup": "backend-private-with-alb"}
    sent = PUBLIC + THROUGH_INTERNAL

    cluster = load_spec(requests_sent.spec).cluster.name
    service = {"ClusterName": cluster, "ServiceName": "backend-public"}

    def counted() -> MetricsStatus | None:
        answer = metrics(requests_sent)
        done = total(answer, "RequestCount", **group) >= sent
        done = done and total(answer, "RequestCount", **internal) >= THROUGH_INTERNAL
        # CPU needs a task measured in two periods
        return answer if done and answer.value("CPUUtilization", **service) is not None else None

    answer = wait_until(counted, timeout=30, what="the requests in the metrics")
    assert total(answer, "RequestCount", **group) == sent
    assert total(answer, "HTTPCode_Target_2XX_Count", **group) == sent
    assert total(answer, "RequestCount", **internal) == THROUGH_INTERNAL
    frontend = {"LoadBalancer": "public", "TargetGroup": "frontend"}
    assert total(answer, "HTTPCode_Target_4XX_Count", **frontend) == MISSING
    assert total(answer, "RequestCount", LoadBalancer="public") == sent + MISSING
    p99 = [
        m for m in answer.metrics if m.metric_name == "TargetResponseTime" and m.statistic == "p99"
    ]
    assert p99 and all(0 < p.value < 5 for m in p99 for p in m.datapoints)
    assert answer.value("HealthyHostCount", **internal) == 2
    assert answer.value("UnHealthyHostCount", **internal) == 0
    cpu = answer.value("CPUUtilization", **service)
    assert cpu is not None and cpu >= 0
    memory = answer.value("MemoryUtilization", **service)
    assert memory is not None and memory > 0.1  # % of its 512 MB a real process holds
    # the reference spec leaves Container Insights off: no per-task metrics, as on AWS
    assert not answer.container_insights
    assert {m.namespace for m in answer.metrics} == {"AWS/ApplicationELB", "AWS/ECS"}


def test_a_datapoint_is_cloudwatchs_minute_on_the_twins_clock(requests_sent: Twin) -> None:
    answer = metrics(requests_sent)
    assert answer.period_seconds == 6.0  # 60 s at the default time scale, 0.1
    requests = next(
        m for m in answer.metrics if m.metric_name == "RequestCount" and len(m.datapoints) >= 2
    )
    times = [p.timestamp.timestamp() for p in requests.datapoints]
    assert {round(b - a, 3) for a, b in itertools.pairwise(times)} == {6.0}
    assert all(t % 6 == 0 for t in times)  # on period boundaries


def test_access_logs_are_alb_lines_with_the_forwarded_trace_id(requests_sent: Twin) -> None:
    def logged() -> list[dict[str, str]] | None:
        lines = alb_lines(requests_sent, "public")
        return lines if len(lines) >= PUBLIC + THROUGH_INTERNAL + MISSING else None

    public = wait_until(logged, timeout=30, what="the public load balancer's access log")
    ours = [f for f in public if f["user_agent"] == "metrics-test"]
    assert len(ours) == PUBLIC + THROUGH_INTERNAL + MISSING
    assert {f["type"] for f in ours} == {"https"} and {f["ssl_protocol"] for f in ours} <= {
        "TLSv1.2",
        "TLSv1.3",
    }
    assert sorted(f["elb_status_code"] for f in ours).count("404") == MISSING
    assert all(f["trace_id"].startswith("Root=1-") for f in ours)
    # backend-public calls the internal load balancer with the trace it was sent: the
    # internal one's line carries that Root, and its own Self field, as ALB does
    internal = wait_until(
        lambda: alb_lines(requests_sent, "internal") or None, timeout=30, what="the internal log"
    )
    # (with tracing on, backend-public adds its own Parent and Sampled after the Root)
    forwarded = {
        root(f["trace_id"]) for f in ours if f["request_url"].endswith("/api/private-with-alb")
    }
    assert len(forwarded) == THROUGH_INTERNAL
    received = {root(f["trace_id"]) for f in internal if f["trace_id"].startswith("Self=")}
    assert forwarded <= received


def root(trace_id: str) -> str:
    """The ``Root=…`` field of an ``X-Amzn-Trace-Id``."""
    return next(field for field in trace_id.split(";") if field.startswith("Root="))


def test_top_and_status_show_the_metrics(requests_sent: Twin) -> None:
    state_dir = str(requests_sent.state_dir)
    wait_until(
        lambda: metrics(requests_sent).value("RequestCount", LoadBalancer="public") is not None,
        timeout=20,
        what="a first datapoint",
    )
    top = fargo("top", "--once", "--state-dir", state_dir).stdout  # piped: once, plain
    assert "\x1b" not in top
    assert "one datapoint per 6 s (CloudWatch's 60 s on the twin's clock)" in top
    assert "tasks: Container Insights off (cluster.container_insights: false" in top
    rows = [line.split() for line in top.splitlines()]
    assert ["public", "backend-public"] in [r[:2] for r in rows]
    status = requests_sent.status()
    assert status.metrics.value("RequestCount", LoadBalancer="public") is not None
    assert all(len(m.datapoints) <= 1 for m in status.metrics.metrics)  # the current values
    assert (
        "metrics (`fargo top` shows them live):" in fargo("status", "--state-dir", state_dir).stdout
    )


def test_the_demo_pages_console_serves_the_same_metrics(requests_sent: Twin) -> None:
    console = requests_sent.status().endpoints.console
    assert console is not None
    answer = MetricsStatus.model_validate(httpx.get(console + "/api/metrics").json())
    group = {"LoadBalancer": "public", "TargetGroup": "backend-public"}
    assert total(answer, "RequestCount", **group) >= PUBLIC + THROUGH_INTERNAL


def test_caddy_writes_the_json_it_is_converted_from(requests_sent: Twin) -> None:
    source: Path = requests_sent.state_dir / "logs" / "lb-access" / "public.json"
    assert source.exists() and source.stat().st_mode & 0o077 == 0  # owner only
