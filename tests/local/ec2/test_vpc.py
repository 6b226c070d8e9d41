"""The VPC with real namespaces and packets, as root and as an unprivileged user.

Each run is a fresh process (vpc_scenario.py) that builds the reference VPC (10.0.0.0/16,
two public and two private subnets, one NAT gateway), connects across it and prints
JSON; these tests assert on that, and on the host being untouched afterwards.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.local.ec2.for_nobody import readable_copy, readable_source

SCENARIO = Path(__file__).with_name("vpc_scenario.py")
SRC = Path(__file__).resolve().parents[3] / "src"
SYSTEM_PYTHON = "/usr/bin/python3.11"

pytestmark = pytest.mark.slow


def host_state() -> dict[str, str]:
    """What the host's network namespace looks like (links, addresses, routes, rules,
    nftables tables, named namespaces)."""
    commands = {
        "links": ["ip", "-o", "link"],
        "addresses": ["ip", "-o", "addr"],
        "routes": ["ip", "route", "show", "table", "all"],
        "rules": ["ip", "rule"],
    }
    if shutil.which("nft") or Path("/usr/sbin/nft").exists():
        commands["nft"] = ["nft", "list", "tables"]
    state = {
        k: subprocess.run(v, capture_output=True, text=True).stdout for k, v in commands.items()
    }
    for key in ("links", "addresses"):  # drop counters and lifetimes that change by themselves
        state[key] = "\n".join(
            " ".join(line.split()[:4]) for line in state[key].splitlines() if line.strip()
        )
    netns = Path("/run/netns")
    state["named_namespaces"] = " ".join(sorted(os.listdir(netns))) if netns.exists() else ""
    return state


def holders_of(inodes: list[int]) -> list[str]:
    """Processes that still hold one of these network namespaces (as their own or by fd)."""
    wanted = {f"net:[{ino}]" for ino in inodes}
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        for link in [f"/proc/{pid}/ns/net", *_fds(pid)]:
            try:
                if os.readlink(link) in wanted:
                    found.append(f"{pid}: {link}")
            except OSError:
                continue
    return found


def _fds(pid: str) -> list[str]:
    try:
        return [f"/proc/{pid}/fd/{fd}" for fd in os.listdir(f"/proc/{pid}/fd")]
    except OSError:
        return []


def run_scenario(user: str) -> dict[str, Any]:
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}
    if user == "root":
        if os.geteuid() != 0:
            pytest.skip("the root run needs root")
        argv = [sys.executable, str(SCENARIO)]
        env["PATH"] = os.environ.get("PATH", env["PATH"])
    else:
        if os.geteuid() != 0:
            pytest.skip("switching to nobody needs root")
        if not Path(SYSTEM_PYTHON).exists():
            pytest.skip(f"{SYSTEM_PYTHON} (readable by other users) is not installed")
        pwd.getpwnam("nobody")
        src, scenario = readable_source(), readable_copy(SCENARIO)
        command = f"cd /tmp && PYTHONPATH={src} {SYSTEM_PYTHON} {scenario}"
        argv = ["su", "nobody", "-s", "/bin/sh", "-c", command]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, f"scenario as {user} failed:\n{done.stderr}"
    result: dict[str, Any] = json.loads(done.stdout)
    if "skip" in result:
        pytest.skip(f"the kernel forbids this as {user}: {result['skip']}")
    return result


@pytest.fixture(scope="module", params=["root", "nobody"])
def run(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    before = host_state()
    result = run_scenario(request.param)
    result["host_before"], result["host_after"] = before, host_state()
    yield result


def test_private_task_reaches_the_internet_as_the_nat_gateways_elastic_ip(run: dict[str, Any]):
    assert run["nat"] == [{"private": "10.0.0.254", "eip": "198.51.100.2"}]
    assert run["nat_connect"] == {"ok": True}
    assert run["nat_peer"] == "198.51.100.2"
    # The second zone has no NAT gateway of its own: its table uses the first.
    assert run["nat_connect_zone_b"] == {"ok": True}
    assert run["nat_peer_zone_b"] == "198.51.100.2"


def test_without_a_nat_gateway_a_private_task_has_no_route_out(run: dict[str, Any]):
    assert run["no_nat_connect"]["ok"] is False
    assert run["no_nat_connect"]["error"] in {"ENETUNREACH", "EHOSTUNREACH"}


def test_the_internet_cannot_reach_into_the_vpc(run: dict[str, Any]):
    assert run["internet_to_private"]["ok"] is False
    assert run["internet_to_dns"]["ok"] is False
    # An Elastic IP is answered, but new inbound connections are dropped (times out).
    assert run["internet_to_eip"] == {"ok": False, "error": "timeout"}
    assert run["internet_routes"] == [
        "198.51.100.0/24 dev eth0 proto kernel scope link src 198.51.100.254"
    ]


def test_security_groups_admit_only_their_sources_and_drop_the_rest(run: dict[str, Any]):
    assert run["sg_frontend_to_private"] == {"ok": False, "error": "timeout"}
    assert run["sg_public_to_private"] == {"ok": True}
    assert run["sg_after_add_member"] == {"ok": True}
    assert run["sg_after_remove_member"] == {"ok": False, "error": "timeout"}
    assert run["router_to_private"] == {"ok": True}


def test_neighbours_in_one_subnet_talk_through_the_router(run: dict[str, Any]):
    assert run["same_subnet_route"].startswith("10.0.11.30 via 10.0.11.1 dev eth0")
    assert run["sg_public_to_private_same_subnet"] == {"ok": True}
    assert run["sg_frontend_to_private"]["ok"] is False  # frontend at 10.0.11.20, same subnet


def test_the_routers_dns_and_metadata_addresses_answer_every_interface(run: dict[str, Any]):
    assert run["dns_udp"] == {"reply": "answer:query", "peer": "10.0.10.7"}
    assert run["dns_tcp"] == {"ok": True, "peer": "10.0.10.7"}
    assert run["metadata"] == {"ok": True, "peer": "10.0.10.7"}


def test_a_task_started_with_the_command_prefix_sees_only_its_interface(run: dict[str, Any]):
    assert run["task_links"] == ["lo", "eth0"]
    assert run["task_addresses"] == [
        ["lo", "inet", "127.0.0.1/8"],
        ["eth0", "inet", "10.0.10.7/24"],
    ]
    assert run["uid_in_namespace"] == 0


def test_the_interfaces_name_files_point_at_the_vpc_dns_server(run: dict[str, Any]):
    assert "nameserver 10.0.0.2\n" in run["resolv_conf"]
    assert "search microservice.local\n" in run["resolv_conf"]
    assert "10.0.10.7\tip-10-0-10-7\n" in run["hosts"]


def test_attachment_errors_say_what_to_do(run: dict[str, Any]):
    assert run["error_in_use"].startswith("AddressInUse: address 10.0.10.7 is already in use")
    assert run["error_subnet"].startswith("InvalidSubnet: subnet 10.0.20.0/24")
    assert run["error_reserved"].startswith("InvalidAddress: address 10.0.10.3 is reserved")
    assert run["error_group"].startswith("InvalidSecurityGroup: security group 'nope'")
    assert run["detached"] is True
    assert run["reattach_same_ip"] == "10.0.11.20"


def test_nothing_is_left_on_the_host(run: dict[str, Any]):
    assert run["closed"] is True
    assert run["host_after"] == run["host_before"]
    # No process holds any of the namespaces any more (the second VPC was never closed:
    # the process's exit alone removed it), so the kernel has freed them.
    assert holders_of(run["namespace_ids"]) == []
