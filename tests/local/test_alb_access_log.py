"""ALB access-log lines from Caddy's access-log entries: ALB's fields, in order."""

from __future__ import annotations

import errno
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.local.alb_log_format import parse

from fargo.local.caddy.access_entries import from_caddy
from fargo.local.caddy.access_logs import AccessLogDelivery, LogFollower, RollingLog
from fargo.local.elb.access_log import AlbNames, alb_line
from fargo.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
SPEC = load_spec(ROOT / "fargo.yaml")
NAMES = AlbNames(SPEC)


def caddy_entry(**changes: Any) -> dict[str, Any]:
    """An entry as Caddy writes it for the reference system's public HTTPS listener."""
    entry: dict[str, Any] = {
        "level": "info",
        "ts": 1796280077.6823857,
        "logger": "http.log.access.public-443",
        "msg": "handled request",
        "request": {
            "remote_ip": "127.0.0.1",
            "remote_port": "40866",
            "client_ip": "127.0.0.1",
            "proto": "HTTP/1.1",
            "method": "GET",
            "host": "127.0.0.1:28443",
            "uri": "/api/public?x=1",
            "headers": {"User-Agent": ['curl/8.5 "quoted"'], "Accept": ["*/*"]},
            "tls": {
                "resumed": False,
                "version": 772,
                "cipher_suite": 4865,
                "proto": "http/1.1",
                "server_name": "fargo.example.com",
            },
        },
        "bytes_read": 0,
        "duration": 0.009454617,
        "size": 22,
        "status": 200,
        "alb_route": "1|forward|backend-public",
        "alb_trace_field": "Root",
        "alb_trace_id": "1-1a2fd719-0dd149ee87cca33f44800254",
        "alb_trace_rest": "",
        "alb_target_latency": 0.0011924,
        "alb_target_status": 200,
        "alb_target": "127.0.11.4:8080",
    }
    entry.update(changes)
    return entry


def line_of(entry: dict[str, Any]) -> dict[str, str]:
    converted = from_caddy(entry, NAMES)
    assert converted is not None
    return parse(alb_line(converted))


def test_a_forwarded_https_request_has_albs_fields_in_order() -> None:
    fields = line_of(caddy_entry())
    assert fields["type"] == "https"
    assert datetime.fromisoformat(fields["time"]) == datetime.fromtimestamp(1796280077.6823857, UTC)
    assert fields["elb"].startswith("app/fargo-demo-public/")
    assert (fields["client_ip"], fields["client_port"]) == ("127.0.0.1", "40866")
    assert (fields["target_ip"], fields["target_port"]) == ("127.0.11.4", "8080")
    assert float(fields["target_processing_time"]) == pytest.approx(0.001, abs=0.0005)
    assert float(fields["request_processing_time"]) == pytest.approx(0.008, abs=0.0005)
    assert (fields["elb_status_code"], fields["target_status_code"]) == ("200", "200")
    assert (fields["received_bytes"], fields["sent_bytes"]) == ("0", "22")
    assert fields["request_verb"] == "GET"
    assert fields["request_url"] == "https://127.0.0.1:443/api/public?x=1"  # the spec's port
    assert fields["request_proto"] == "HTTP/1.1"
    assert fields["user_agent"] == "curl/8.5 %22quoted%22"
    assert (fields["ssl_cipher"], fields["ssl_protocol"]) == ("TLS_AES_128_GCM_SHA256", "TLSv1.3")
    assert fields["target_group_arn"].startswith(
        "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/backend-public/"
    )
    assert fields["trace_id"] == "Root=1-1a2fd719-0dd149ee87cca33f44800254"
    assert fields["domain_name"] == "fargo.example.com"
    assert fields["chosen_cert_arn"].startswith("arn:aws:acm:us-east-1:000000000000:certificate/")
    assert fields["matched_rule_priority"] == "1"
    created = datetime.fromisoformat(fields["request_creation_time"])
    assert (datetime.fromisoformat(fields["time"]) - created).total_seconds() == pytest.approx(
        0.009454617, abs=1e-5
    )
    assert fields["actions_executed"] == "forward"
    assert (fields["target_port_list"], fields["target_status_code_list"]) == (
        "127.0.11.4:8080",
        "200",
    )
    assert fields["conn_trace_id"].startswith("TID_")


def test_a_clients_own_trace_is_kept_with_the_load_balancers_self_field() -> None:
    entry = caddy_entry(
        alb_trace_field="Self", alb_trace_rest=";Root=1-5f1c0a9e-0123456789abcdef01234567"
    )
    fields = line_of(entry)
    assert fields["trace_id"] == (
        "Self=1-1a2fd719-0dd149ee87cca33f44800254;Root=1-5f1c0a9e-0123456789abcdef01234567"
    )


def test_a_redirect_has_no_target_and_the_default_rules_priority_0() -> None:
    request = {**caddy_entry()["request"], "tls": None, "host": "127.0.0.1:28080", "uri": "/x"}
    entry = caddy_entry(
        logger="http.log.access.public-80",
        request=request,
        status=301,
        alb_route="0|redirect|",
        alb_target=None,
        alb_target_status=None,
        alb_target_latency=None,
    )
    for key in ("alb_trace_field", "alb_trace_id", "alb_trace_rest"):
        del entry[key]
    fields = line_of(entry)
    assert fields["type"] == "http" and fields["elb_status_code"] == "301"
    # "-" for no target: Athena's regex reads it as an empty address and port
    assert (fields["target_ip"], fields["target_port"], fields["target_status_code"]) == (
        "",
        "",
        "-",
    )
    assert fields["request_url"] == "http://127.0.0.1:80/x"
    assert (fields["ssl_cipher"], fields["ssl_protocol"], fields["target_group_arn"]) == ("-",) * 3
    assert fields["matched_rule_priority"] == "0" and fields["actions_executed"] == "redirect"
    assert fields["trace_id"] == "-" and fields["chosen_cert_arn"] == "-"


def test_no_target_is_the_load_balancers_own_503_with_times_of_minus_1() -> None:
    # no routable target: Caddy forwards to the twin's internal 503 server (a unix socket)
    entry = caddy_entry(
        status=503, alb_target="/tmp/s/caddy/unavailable.sock", alb_target_status=503
    )
    fields = line_of(entry)
    assert fields["elb_status_code"] == "503" and fields["target_status_code"] == "-"
    assert fields["target_ip"] == "" and fields["target_port_list"] == "-"
    assert [fields[f"{k}_processing_time"] for k in ("request", "target", "response")] == ["-1"] * 3


def test_an_h2_request_and_a_weighted_forward_pick_the_answering_group() -> None:
    request = {**caddy_entry()["request"], "proto": "HTTP/2.0"}
    entry = caddy_entry(request=request, alb_route="4|forward|frontend,backend-public")
    converted = from_caddy(entry, NAMES, {"127.0.11.4:8080": "backend-public"})
    assert converted is not None
    assert converted.type == "h2" and converted.target_group == "backend-public"


def test_entries_of_no_listener_are_skipped() -> None:
    assert from_caddy(caddy_entry(logger="http.log.access.fargo-unavailable"), NAMES) is None
    assert from_caddy(caddy_entry(logger="http.log.access.public-8443"), NAMES) is None
    assert from_caddy(caddy_entry(logger="http.log.access.public-x"), NAMES) is None
    assert from_caddy(caddy_entry(logger=["not", "a", "name"]), NAMES) is None


def test_a_malformed_route_field_is_the_default_forward() -> None:
    converted = from_caddy(caddy_entry(alb_route={"not": "text"}), NAMES)
    assert converted is not None and converted.matched_rule_priority == -1
    assert converted.actions_executed == "forward" and converted.target_group is None


@pytest.mark.parametrize("epoch", [1796280077.6823857, 1796280077.0, 1796280077.9999996, 0.5])
def test_times_are_written_to_the_microsecond_as_alb_does(epoch: float) -> None:
    fields = parse(alb_line(from_caddy(caddy_entry(ts=epoch, duration=0.0), NAMES)))  # type: ignore[arg-type]
    expected = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert fields["time"] == fields["request_creation_time"] == expected


def test_the_follower_reads_across_caddys_roll(tmp_path: Path) -> None:
    path = tmp_path / "public.json"
    follower = LogFollower(path)
    assert follower.read_lines() == []
    path.write_bytes(b"one\ntwo\nthr")
    assert follower.read_lines() == [b"one", b"two"]
    with path.open("ab") as log:
        log.write(b"ee\nfour\n")
    path.rename(tmp_path / "public-2026-12-03T06-00-00.000.json")  # Caddy rolls: rename
    path.write_bytes(b"five\n")  # then starts anew
    assert follower.read_lines() == [b"three", b"four", b"five"]


def test_entries_are_delivered_once_across_caddys_roll(tmp_path: Path) -> None:
    """Caddy's rolled copy (timberjack's ``<name>-<time>-size.json``) holds entries the
    load balancer's follower read before the roll: they are not delivered again."""
    counted: list[str] = []
    delivery = AccessLogDelivery(
        tmp_path, names=lambda: NAMES, on_entry=lambda e: counted.append(e.load_balancer)
    )
    delivery.source.mkdir(parents=True)
    line = json.dumps(caddy_entry()) + "\n"
    source = delivery.source / "public.json"
    source.write_text(line * 3)
    assert delivery.deliver() == 3
    source.rename(delivery.source / "public-2026-12-04T20-55-15.409-size.json")
    source.write_text(line * 2)
    assert delivery.deliver() == 2
    assert delivery.deliver() == 0
    assert counted == ["public"] * 5
    assert delivery.lines == 5


def test_the_alb_log_rolls_at_its_size_and_keeps_a_bounded_number(tmp_path: Path) -> None:
    log = RollingLog(tmp_path / "access.log", roll_bytes=100, keep=2)
    for _ in range(21):
        log.write(["x" * 49])
    log.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["access.log", "access.log.1", "access.log.2"]
    assert all(p.stat().st_size <= 100 for p in tmp_path.iterdir())


def test_a_full_disk_drops_lines_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    delivery = AccessLogDelivery(tmp_path, names=lambda: NAMES)
    delivery.source.mkdir(parents=True)
    (delivery.destination / "public").mkdir(parents=True)
    # /dev/full: every write fails with ENOSPC, as on a full disk
    os.symlink("/dev/full", delivery.destination / "public" / "access.log")
    source = delivery.source / "public.json"
    caplog.set_level(logging.WARNING)
    for round_ in range(3):
        with source.open("a") as log:
            log.write(json.dumps(caddy_entry()) + "\n")
        assert delivery.deliver() == 1, round_
    assert delivery.dropped_lines == 3 and delivery.lines == 0
    warnings = [r for r in caplog.records if "dropping its lines" in r.getMessage()]
    assert len(warnings) == 1
    assert os.strerror(errno.ENOSPC) in warnings[0].getMessage()


def test_a_load_balancer_without_access_logs_writes_none_but_is_still_counted(
    tmp_path: Path,
) -> None:
    spec = SPEC.model_copy(deep=True)
    spec.load_balancers["public"].access_logs.enabled = False
    counted: list[str] = []
    delivery = AccessLogDelivery(
        tmp_path, names=lambda: AlbNames(spec), on_entry=lambda e: counted.append(e.load_balancer)
    )
    delivery.source.mkdir(parents=True)
    (delivery.source / "public.json").write_text(json.dumps(caddy_entry()) + "\n")
    assert delivery.deliver() == 1
    assert counted == ["public"]
    assert not (delivery.destination / "public").exists()
