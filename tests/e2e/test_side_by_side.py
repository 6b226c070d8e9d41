"""Two loopback twins of specs with different VPC CIDRs run side by side: a VPC address
keeps its last three octets on loopback, so each twin has its own 127.x addresses, DNS
server and task metadata endpoint (`fargo.local.ec2.loopback`)."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import shutil
import ssl
import urllib.parse
from pathlib import Path

import boto3
import dns.message
import dns.query
import httpx
import pytest
from tests.e2e.conftest import Twin, start_twin

pytestmark = pytest.mark.slow

SECOND = Path(__file__).with_name("second.yaml")  # VPC 10.1.0.0/16


def with_cidr(tmp_path: Path, second_octet: int) -> Path:
    """second.yaml with its VPC at 10.<second_octet>.0.0/16, beside a copy of its image."""
    shutil.copytree(SECOND.with_name("echo"), tmp_path / "echo")
    spec = tmp_path / "second.yaml"
    spec.write_text(
        SECOND.read_text()
        .replace("10.1.", f"10.{second_octet}.")
        .replace("name: second", "name: third")
    )
    return spec


def answers(twin: Twin, prefix: str) -> None:
    """The twin serves through its public listener and its discovery names, at ``prefix``."""
    tls = ssl.create_default_context(cafile=twin.ca)
    with httpx.Client(verify=tls, timeout=10) as client:
        assert client.get(twin.url("edge", "https") + "/a/x").json()["service"] == "web-a"
    status = twin.status()
    host, port = status.endpoints.discovery_dns_server.rsplit(":", 1)
    assert host == f"{prefix}.0.2"  # the VPC's base + 2, as the Amazon DNS server
    query = dns.message.make_query("api.second.internal", "A")
    records = dns.query.udp(query, host, port=int(port), timeout=2).answer[0]
    assert {r.address.rsplit(".", 2)[0] for r in records} == {prefix}
    api = status.service("api").tasks[0]
    assert api.address.startswith(f"{prefix}.")
    url = f"http://{api.address}/call?url=http://worker.second.internal:7200/who"
    assert json.loads(httpx.get(url, timeout=10).text)["service"] == "worker"


def own_cluster(twin: Twin) -> str:
    """The cluster the twin's own AWS endpoint lists (a loopback endpoint, dummy keys)."""
    url = twin.endpoints.aws_api or ""
    assert ipaddress.ip_address(urllib.parse.urlsplit(url).hostname or "").is_loopback
    ecs = boto3.client(
        "ecs", endpoint_url=url, region_name="eu-west-1",
        aws_access_key_id="twin", aws_secret_access_key="twin",
    )  # fmt: skip
    [cluster] = ecs.list_clusters()["clusterArns"]
    return str(cluster)


def test_two_loopback_twins_of_different_cidrs_run_side_by_side(tmp_path: Path) -> None:
    other = with_cidr(tmp_path / "other", 4)
    with contextlib.ExitStack() as twins:
        first = twins.enter_context(
            contextlib.contextmanager(start_twin)(SECOND, tmp_path / "first" / "state")
        )
        second = twins.enter_context(
            contextlib.contextmanager(start_twin)(other, tmp_path / "second" / "state")
        )
        answers(first, "127.1")
        answers(second, "127.4")
        assert first.endpoints.aws_api != second.endpoints.aws_api
        assert own_cluster(first) == "arn:aws:ecs:eu-west-1:000000000000:cluster/second"
        assert own_cluster(second) == "arn:aws:ecs:eu-west-1:000000000000:cluster/third"
