"""Caddy's access-log config: one bounded JSON log per load balancer, its listeners'
loggers, and the fields the ALB format needs appended to each entry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.local.test_caddy_config import CERT, REFERENCE, UNAVAILABLE, mapped, spec_with

from fargo.local.caddy import access_log
from fargo.local.caddy import config as caddy_config

ACCESS = Path("/state/logs/lb-access")


def render(spec: Any, access_logs: Path | None = ACCESS) -> dict[str, Any]:
    return caddy_config.render(
        spec,
        bind={name: "127.0.0.1" for name in spec.load_balancers},
        listener_port=mapped,
        routable={"a": ["127.0.1.7:80"], "b": ["127.0.1.8:80"]},
        certificate=CERT,
        tls_server_name="fargo.example.com",
        unavailable_socket=UNAVAILABLE,
        access_logs=access_logs,
    )


def test_each_load_balancer_logs_its_listeners_to_one_bounded_file() -> None:
    config = render(spec_with(REFERENCE))
    logs = config["logging"]["logs"]
    assert list(logs) == ["alb-public"]
    log = logs["alb-public"]
    assert log["include"] == ["http.log.access.public-443", "http.log.access.public-80"]
    writer = log["writer"]
    assert writer["output"] == "file" and writer["filename"] == str(ACCESS / "public.json")
    assert writer["roll_size_mb"] == access_log.ROLL_SIZE_MB
    assert writer["roll_keep"] == access_log.ROLL_KEEP
    assert log["encoder"] == {"format": "json"}
    servers = config["apps"]["http"]["servers"]
    assert servers["public-443"]["logs"] == {"default_logger_name": "public-443"}
    assert "logs" not in servers[caddy_config.UNAVAILABLE_SERVER]


def test_routes_name_their_rule_and_the_prelude_appends_target_and_trace() -> None:
    server = render(spec_with(REFERENCE))["apps"]["http"]["servers"]["public-443"]
    appended = {
        h["key"]: h["value"] for h in server["routes"][0]["handle"] if h["handler"] == "log_append"
    }
    assert appended["alb_target"] == "{http.reverse_proxy.upstream.hostport}"
    assert [appended[k] for k in access_log.TRACE_ID_FIELDS] == [
        "{fargo.trace_field}",
        "{fargo.trace_id}",
        "{fargo.trace_rest}",
    ]
    routes = [r["handle"][0] for r in server["routes"][1:]]
    assert [r["value"] for r in routes] == ["1|forward|b", "7|forward|b", "0|forward|a"]
    redirect = render(spec_with(REFERENCE))["apps"]["http"]["servers"]["public-80"]
    assert redirect["routes"][-1]["handle"][0]["value"] == "0|redirect|"


def test_without_a_folder_nothing_is_logged() -> None:
    config = render(spec_with(REFERENCE), access_logs=None)
    assert "logging" not in config
    handlers = [
        h for r in config["apps"]["http"]["servers"]["public-443"]["routes"] for h in r["handle"]
    ]
    assert not [h for h in handlers if h["handler"] == "log_append"]
