"""Service Connect in the twin: the same names, answered by DNS (no proxy yet).

One twin of tests/e2e/service_connect.yaml (loopback mode): backend-public calls
``http://backend.internal:8090`` (its ``${service_connect:backend-private}``) and relays
what backend-private answered.
"""

from __future__ import annotations

import collections
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import httpx
import pytest
from tests.e2e.conftest import Twin, fargo, start_twin, under_load
from tests.waiting import wait_until

pytestmark = pytest.mark.slow  # one twin for the module

SPEC = Path(__file__).with_name("service_connect.yaml")
CALLS = 16


@pytest.fixture(scope="module")
def connect_twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    folder = tmp_path_factory.mktemp("connect")
    spec = folder / SPEC.name  # a copy the last test edits
    services = SPEC.parents[2] / "services"
    spec.write_text(SPEC.read_text().replace("../../services", str(services)))
    yield from start_twin(spec, folder / "state")


def test_a_client_calls_the_endpoint_and_the_server_answers(connect_twin: Twin) -> None:
    seen: collections.Counter[str] = collections.Counter()
    context = ssl.create_default_context(cafile=connect_twin.ca)
    with httpx.Client(verify=context, timeout=10) as http:
        for _ in range(CALLS):
            response = http.get(connect_twin.url("public", "https") + "/api/private")
            assert response.status_code == 200, response.text
            assert response.text.startswith("TaskId: "), response.text
            seen[response.text.removeprefix("TaskId: ").strip()] += 1

    tasks = {task.id for task in connect_twin.service("backend-private").tasks}
    assert set(seen) == tasks and len(tasks) == 2  # answered by backend-private, both tasks


def test_the_alias_resolves_to_the_healthy_tasks_and_nothing_else_does(
    connect_twin: Twin,
) -> None:
    status = connect_twin.status()
    host, port = status.endpoints.discovery_dns_server.rsplit(":", 1)

    def ask(name: str) -> dns.message.Message:
        query = dns.message.make_query(name, dns.rdatatype.A)
        return dns.query.udp(query, host, port=int(port), timeout=2)

    [rrset] = ask("backend.internal").answer
    addresses = {
        task.address.rsplit(":", 1)[0]
        for task in status.service("backend-private").tasks
        if task.address is not None
    }
    assert {record.address for record in rrset} == addresses and len(addresses) == 2
    # The endpoint's Cloud Map service is in an HTTP namespace: no DNS name, as on AWS.
    assert ask("backend-private.connect.internal").rcode() == dns.rcode.REFUSED


def test_status_says_service_connect_runs_as_dns_without_a_proxy(connect_twin: Twin) -> None:
    [endpoint] = connect_twin.status().service_connect
    assert endpoint.endpoint == "http://backend.internal:8090"
    assert endpoint.service == "backend-private"
    assert endpoint.runs_as == "DNS, no proxy"
    assert len([i for i in endpoint.instances if i.health == "HEALTHY"]) == 2

    printed = fargo("status", "--state-dir", str(connect_twin.state_dir)).stdout
    assert (
        "service connect          http://backend.internal:8090 → backend-private: runs as DNS, "
        "without a proxy"
    ) in printed
    assert "service connect (DNS in the twin, no proxy" in printed


def test_a_new_client_alias_is_applied_to_the_running_twin_under_load(
    connect_twin: Twin,
) -> None:
    """Last (it edits the twin's spec): the endpoint's ``dns_name`` changes. The new alias
    is made first, both services roll (the client's environment names the alias), and the
    old alias goes once nothing calls it, with every request answered meanwhile."""
    before = {s.name: {t.id for t in s.tasks} for s in connect_twin.status().services}
    spec = connect_twin.spec
    spec.write_text(spec.read_text().replace("dns_name: backend.internal", "dns_name: b.internal"))
    with under_load(connect_twin, "/api/private") as seen:
        result = fargo("up", *connect_twin.up_args(), timeout=600)
        time.sleep(1)  # requests after the change, through the new alias
    said = result.stdout
    assert "Service Connect endpoint b.internal: made" in said, said
    assert "Service Connect endpoint backend.internal: removed" in said, said
    assert "service backend-public: environment.PRIVATE_DISCOVERY_URL changed" in said, said
    assert seen[200] > 20 and set(seen) == {200}, seen

    after = {s.name: {t.id for t in s.tasks} for s in connect_twin.status().services}
    assert not after["backend-public"] & before["backend-public"]  # rolled
    status = connect_twin.status()
    host, port = status.endpoints.discovery_dns_server.rsplit(":", 1)

    def addresses(name: str) -> set[str]:
        query = dns.message.make_query(name, dns.rdatatype.A)
        answer = dns.query.udp(query, host, port=int(port), timeout=2)
        return {record.address for rrset in answer.answer for record in rrset}

    tasks = {
        t.address.rsplit(":", 1)[0] for t in status.service("backend-private").tasks if t.address
    }
    wait_until(lambda: addresses("b.internal") == tasks, what="the new alias answering")
    assert addresses("backend.internal") == set()
    [endpoint] = status.service_connect
    assert endpoint.endpoint == "http://b.internal:8090"
