"""X-Ray tracing: the trace header, sampling, settings, and real services sending segments
to a UDP daemon address."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any
from urllib.request import Request, urlopen

import pytest

from service_kit.settings import SettingError
from service_kit.xray import (
    Recorder,
    Sampler,
    TraceHeader,
    daemon_address,
    new_id,
    new_trace_id,
    parse_datagram,
)
from testkit import MetadataServer, ServiceProcess, Spawn

ROOT = "1-5759e988-bd862e3fe1be46a994272793"


# -- the header -----------------------------------------------------------------------


def test_header_from_alb_is_continued() -> None:
    header = TraceHeader.parse(f"Self=1-67891234-12456789abcdef012345678;Root={ROOT}")
    assert header is not None
    assert (header.root, header.parent, header.sampled) == (ROOT, None, None)


def test_header_with_parent_and_decision() -> None:
    header = TraceHeader.parse(f"Root={ROOT};Parent=53995c3f42cd8ad8;Sampled=1")
    assert header is not None
    assert (header.parent, header.sampled) == ("53995c3f42cd8ad8", True)
    assert str(header) == f"Root={ROOT};Parent=53995c3f42cd8ad8;Sampled=1"
    unsampled = TraceHeader.parse(f"Root={ROOT}; Sampled=0")
    assert unsampled is not None and unsampled.sampled is False


@pytest.mark.parametrize("value", ["", "Sampled=1", "Root=", "garbage"])
def test_header_without_root_starts_a_new_trace(value: str) -> None:
    assert TraceHeader.parse(value) is None


def test_ids_have_xrays_shape() -> None:
    now = time.time()
    trace_id = new_trace_id(now)
    version, epoch, random_part = trace_id.split("-")
    assert version == "1" and int(epoch, 16) == int(now) and len(random_part) == 24
    assert len(new_id()) == 16 and int(new_id(), 16) >= 0
    assert new_id() != new_id()


# -- sampling -------------------------------------------------------------------------


def test_default_rule_takes_one_a_second_then_the_rate() -> None:
    sampler = Sampler(reservoir=1, rate=0.0)
    assert sampler.sample(100.1) is True
    assert [sampler.sample(100.2) for _ in range(50)] == [False] * 50
    assert sampler.sample(101.0) is True  # a new second, a new reservoir
    always = Sampler(reservoir=0, rate=1.0)
    assert all(always.sample(5.0) for _ in range(50))


# -- settings -------------------------------------------------------------------------


def test_daemon_address_forms() -> None:
    assert daemon_address("127.0.0.1:2000") == ("127.0.0.1", 2000)
    assert daemon_address("tcp:127.0.0.1:2000 udp:169.254.170.2:2001") == ("169.254.170.2", 2001)


@pytest.mark.parametrize("value", ["localhost", "127.0.0.1:0", "tcp:127.0.0.1:2000", "a:b"])
def test_bad_daemon_address_says_what_is_expected(value: str) -> None:
    with pytest.raises(SettingError, match=r"AWS_XRAY_DAEMON_ADDRESS=.*expected host:port"):
        daemon_address(value)


def test_no_daemon_address_no_tracing() -> None:
    assert Recorder.from_env({}) is None
    with pytest.raises(SettingError, match="XRAY_SAMPLING_RATE='2': expected a fraction"):
        Recorder.from_env({"AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000", "XRAY_SAMPLING_RATE": "2"})


# -- real services, a real UDP daemon address ---------------------------------------------


def _segments(daemon: socket.socket, count: int) -> list[dict[str, Any]]:
    return [parse_datagram(daemon.recv(65536)) for _ in range(count)]


def _nothing_more(daemon: socket.socket) -> bool:
    daemon.settimeout(0.5)
    try:
        daemon.recv(65536)
    except TimeoutError:
        return True
    return False


def _get(url: str, headers: dict[str, str] | None = None) -> str:
    with urlopen(Request(url, headers=headers or {}), timeout=5) as response:
        return str(response.read().decode())


@pytest.fixture
def traced(
    spawn: Spawn, daemon: socket.socket, metadata_server: MetadataServer
) -> tuple[ServiceProcess, ServiceProcess]:
    address = f"127.0.0.1:{daemon.getsockname()[1]}"
    private = spawn(
        "backend_private",
        env={
            "ECS_CONTAINER_METADATA_URI_V4": metadata_server.base_url("task-x"),
            "AWS_XRAY_DAEMON_ADDRESS": address,
            "AWS_XRAY_TRACING_NAME": "backend-private",
        },
    )
    public = spawn(
        "backend_public",
        env={
            "PRIVATE_ALB_URL": private.url,
            "AWS_XRAY_DAEMON_ADDRESS": address,
            "AWS_XRAY_TRACING_NAME": "backend-public",
            "XRAY_SAMPLING_RATE": "1",
        },
    )
    assert not _nothing_more(daemon)  # the readiness probes' own traces: drop them
    while not _nothing_more(daemon):
        pass
    daemon.settimeout(5)
    return public, private


def test_a_relayed_request_is_one_trace(
    traced: tuple[ServiceProcess, ServiceProcess], daemon: socket.socket
) -> None:
    public, _ = traced
    alb_header = f"Self=1-67891234-12456789abcdef012345678;Root={ROOT}"
    assert _get(public.url + "/api/private-with-alb", {"X-Amzn-Trace-Id": alb_header})

    by_name = {str(s["name"]): s for s in _segments(daemon, 2)}
    caller, callee = by_name["backend-public"], by_name["backend-private"]
    assert caller["trace_id"] == callee["trace_id"] == ROOT
    assert "parent_id" not in caller  # ALB's header has no Parent
    (call,) = caller["subsegments"]
    assert callee["parent_id"] == call["id"]
    assert call["name"] == "127.0.0.1"  # the host called (here an address)
    assert caller["start_time"] <= call["start_time"] <= callee["start_time"]
    assert callee["end_time"] <= call["end_time"] <= caller["end_time"]
    assert callee["http"]["request"]["url"].endswith("/endpoint")


def test_decisions_and_health_checks(
    traced: tuple[ServiceProcess, ServiceProcess], daemon: socket.socket
) -> None:
    public, private = traced
    _get(public.url + "/api/private-with-alb", {"X-Amzn-Trace-Id": f"Root={ROOT};Sampled=0"})
    _get(private.url + "/", {"User-Agent": "ELB-HealthChecker/2.0"})
    assert _nothing_more(daemon)  # Sampled=0 is obeyed downstream too; checks are not traced

    _get(public.url + "/api/public")  # no header: a new trace, sampled (rate 1)
    (segment,) = _segments(daemon, 1)
    assert str(segment["trace_id"]).startswith("1-") and segment["trace_id"] != ROOT
    assert json.dumps(segment)


APPS = Path(__file__).resolve().parent / "apps"


def test_a_handlers_own_span_is_a_subsegment_of_the_request(
    daemon: socket.socket, metadata_server: MetadataServer
) -> None:
    service = ServiceProcess(
        "handler_spans",
        pythonpath=[APPS],
        env={
            "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{daemon.getsockname()[1]}",
            "AWS_XRAY_TRACING_NAME": "pricing",
            "XRAY_SAMPLING_RATE": "1",
        },
    )
    try:
        service.start().wait_ready()
        while not _nothing_more(daemon):  # the readiness probes' traces
            pass
        daemon.settimeout(5)
        alb_header = f"Self=1-67891234-12456789abcdef012345678;Root={ROOT}"
        answer = json.loads(_get(service.url + "/priced", {"X-Amzn-Trace-Id": alb_header}))
    finally:
        service.stop()

    (segment,) = _segments(daemon, 1)
    assert segment["name"] == "pricing" and segment["trace_id"] == ROOT
    assert segment["http"]["request"]["url"].endswith("/priced")
    (lookup,) = segment["subsegments"]
    assert lookup["name"] == "price lookup" and "namespace" not in lookup
    assert lookup["metadata"]["default"] == {"sku": "a-1"}
    assert [e["name"] for e in lookup["metadata"]["otel"]["events"]] == ["cache miss"]
    assert segment["start_time"] <= lookup["start_time"] <= lookup["end_time"]
    assert lookup["end_time"] <= segment["end_time"]
    # A call made inside the handler's span continues the trace under it.
    assert answer["downstream_header"] == f"Root={ROOT};Parent={lookup['id']};Sampled=1"
