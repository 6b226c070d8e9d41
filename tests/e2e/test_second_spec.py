"""A spec other than the reference system routes correctly: the twin is not wired to one system."""

from __future__ import annotations

import collections
import json
import ssl

import dns.message
import dns.query
import dns.rdatatype
import httpx
import pytest
from tests.e2e.conftest import Twin

pytestmark = pytest.mark.slow  # one twin of second.yaml for the module


def http(twin: Twin) -> httpx.Client:
    return httpx.Client(verify=ssl.create_default_context(cafile=twin.ca), timeout=10)


def base(twin: Twin) -> str:
    return twin.url("edge", "https")


def test_path_rules_with_star_forward_the_full_path(second_twin: Twin) -> None:
    with http(second_twin) as client:
        body = client.get(base(second_twin) + "/a/deep/path?q=1").json()
    assert body["service"] == "web-a"
    assert body["path"] == "/a/deep/path?q=1"  # not stripped


def test_path_rule_with_question_mark_matches_one_character(second_twin: Twin) -> None:
    with http(second_twin) as client:
        assert client.get(base(second_twin) + "/b/1x").json()["service"] == "web-b"
        assert client.get(base(second_twin) + "/b/12x").status_code == 404
        assert client.get(base(second_twin) + "/B/1x").status_code == 404  # case-sensitive


def test_host_header_rule_gives_its_fixed_response(second_twin: Twin) -> None:
    with http(second_twin) as client:
        response = client.get(base(second_twin) + "/a/x", headers={"Host": "admin.example.test"})
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"error": "admin closed"}


def test_default_action_is_a_fixed_response(second_twin: Twin) -> None:
    with http(second_twin) as client:
        response = client.get(base(second_twin) + "/nowhere")
    assert (response.status_code, response.text) == (404, "no route")


def test_header_and_method_conditions_are_anded(second_twin: Twin) -> None:
    with http(second_twin) as client:
        assert (
            client.get(base(second_twin) + "/x", headers={"X-Canary": "on"}).json()["service"]
            == "web-b"
        )
        assert client.post(base(second_twin) + "/x", headers={"X-Canary": "on"}).status_code == 404


def test_weighted_forward_respects_weights(second_twin: Twin) -> None:
    counts: collections.Counter[str] = collections.Counter()
    with http(second_twin) as client:
        for _ in range(80):
            counts[client.get(base(second_twin) + "/split/x").json()["service"]] += 1
    assert counts["web-a"] + counts["web-b"] == 80
    assert 8 <= counts["web-a"] <= 35, counts  # 1:3 → about 20 of 80


def test_no_registered_targets_gives_503(second_twin: Twin) -> None:
    with http(second_twin) as client:
        assert client.get(base(second_twin) + "/empty").status_code == 503


def test_alb_forwarding_headers(second_twin: Twin) -> None:
    with http(second_twin) as client:
        headers = client.get(base(second_twin) + "/a/h").json()["headers"]
    assert headers["x-forwarded-proto"] == "https"
    assert headers["x-forwarded-port"] == "9443"  # the spec's port, not the published one
    assert headers["x-forwarded-for"].startswith("127.")
    assert headers["x-amzn-trace-id"].startswith("Root=1-")


def test_http_listener_redirects_302_to_https(second_twin: Twin) -> None:
    with httpx.Client(timeout=5) as client:
        response = client.get(second_twin.url("edge", "http") + "/a/1")
    assert response.status_code == 302
    # to the spec's port 9443, which is served on the port published for it
    assert response.headers["location"].startswith("https://")
    assert response.headers["location"].endswith(f":{second_twin.publish[9443]}/a/1")


def test_two_discovery_services_with_a_and_srv_records(second_twin: Twin) -> None:
    host, port = second_twin.status().endpoints.discovery_dns_server.rsplit(":", 1)
    api = dns.query.udp(
        dns.message.make_query("api.second.internal", "A"), host, port=int(port), timeout=2
    )
    assert api.answer[0].ttl == 15 and len(api.answer[0]) == 2
    srv = dns.query.tcp(
        dns.message.make_query("worker.second.internal", "SRV"), host, port=int(port), timeout=2
    )
    assert srv.answer[0].ttl == 30 and {r.port for r in srv.answer[0]} == {7200}


def test_a_task_resolves_another_discovery_service_with_ordinary_code(second_twin: Twin) -> None:
    api = second_twin.service("api").tasks[0]
    url = f"http://{api.address}/call?url=http://worker.second.internal:7200/who"
    body = json.loads(httpx.get(url, timeout=10).text)
    assert body["service"] == "worker"
