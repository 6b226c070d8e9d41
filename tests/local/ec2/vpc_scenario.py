"""Builds the reference VPC with real namespaces and packets, prints one JSON result.

Run in a fresh process (entering a user namespace needs a single-threaded process):
as root with any interpreter, or unprivileged with the system one, e.g.
``su nobody -s /bin/sh -c 'PYTHONPATH=/work/main/src /usr/bin/python3.11 vpc_scenario.py'``.
Only the standard library and fargo.local.ec2 are imported. The second VPC (no NAT
gateway) is deliberately left open at exit: the process's death must remove it.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from fargo.local.ec2.namespaces import enter_user_namespace, user_namespaces_available

REASON = user_namespaces_available()
if REASON is not None:
    print(json.dumps({"skip": REASON}))
    sys.exit(0)
enter_user_namespace()

from fargo.local.ec2.commands import find_tool  # noqa: E402
from fargo.local.ec2.eni import NetworkInterface  # noqa: E402
from fargo.local.ec2.errors import Ec2Error  # noqa: E402
from fargo.local.ec2.layout import VpcLayout  # noqa: E402
from fargo.local.ec2.security_groups import IngressRule, SecurityGroup  # noqa: E402
from fargo.local.ec2.vpc import Vpc  # noqa: E402

PUBLIC = (IPv4Network("10.0.0.0/24"), IPv4Network("10.0.1.0/24"))
PRIVATE = (IPv4Network("10.0.10.0/24"), IPv4Network("10.0.11.0/24"))
GROUPS = [
    SecurityGroup("frontend"),
    SecurityGroup("backend-public"),
    SecurityGroup("backend-private", [IngressRule("tcp", "backend-public", 8090)]),
]
SERVER = ("198.51.100.10", 5000)
DROP_TIMEOUT = 0.5


def layout(nat_gateways: int) -> VpcLayout:
    return VpcLayout(IPv4Network("10.0.0.0/16"), PUBLIC, PRIVATE, nat_gateways)


def connect(sock: socket.socket, address: tuple[str, int]) -> dict[str, Any]:
    sock.settimeout(DROP_TIMEOUT)
    started = time.perf_counter()
    try:
        sock.connect(address)
        return {"ok": True}
    except TimeoutError:
        return {"ok": False, "error": "timeout"}
    except OSError as exc:
        return {"ok": False, "error": errno.errorcode.get(exc.errno or 0, str(exc))}
    finally:
        sock.close()
        sys.stderr.write(f"connect {address}: {time.perf_counter() - started:.3f}s\n")


def listen(sock: socket.socket, address: tuple[str, int]) -> socket.socket:
    sock.bind(address)
    sock.listen()
    return sock


def error_of(call: Any) -> str:
    try:
        call()
    except Ec2Error as exc:
        return f"{type(exc).__name__}: {exc}"
    return "no error"


def main() -> dict[str, Any]:
    out: dict[str, Any] = {"uid_in_namespace": os.getuid()}
    started = time.perf_counter()
    vpc = Vpc(layout(1), GROUPS).start()
    out["build_seconds"] = time.perf_counter() - started
    out["nat"] = [
        {"private": str(n.private_ip), "eip": str(n.elastic_ip)} for n in vpc.nat_gateways
    ]

    timings = []
    for i in range(10):
        started = time.perf_counter()
        eni = vpc.attach_network_interface(PRIVATE[0], IPv4Address(f"10.0.10.{100 + i}"))
        timings.append(time.perf_counter() - started)
        eni.detach()
    out["attach_seconds_median"] = statistics.median(timings)
    out["attach_seconds_max"] = max(timings)

    # Point 1: a private task reaches the internet through the NAT gateway's Elastic IP.
    vpc.internet.add_address(IPv4Address(SERVER[0]))
    server = listen(vpc.internet.socket(), SERVER)
    etc = Path(tempfile.mkdtemp(prefix="fargo-eni-"))
    task = vpc.attach_network_interface(
        PRIVATE[0],
        IPv4Address("10.0.10.7"),
        name="task",
        etc_dir=etc,
        search=["microservice.local"],
        security_groups=["frontend"],
    )
    zone_b = vpc.attach_network_interface(PRIVATE[1], IPv4Address("10.0.11.7"))
    out["nat_connect"] = connect(task.socket(), SERVER)
    out["nat_peer"] = server.accept()[1][0] if out["nat_connect"]["ok"] else None
    out["nat_connect_zone_b"] = connect(zone_b.socket(), SERVER)
    out["nat_peer_zone_b"] = server.accept()[1][0] if out["nat_connect_zone_b"]["ok"] else None
    out["resolv_conf"] = task.files.resolv_conf.read_text() if task.files else None
    out["hosts"] = task.files.hosts.read_text() if task.files else None

    # Nothing on the internet side reaches into the VPC.
    listen(task.socket(), ("10.0.10.7", 7000))
    out["internet_to_private"] = connect(vpc.internet.socket(), ("10.0.10.7", 7000))
    out["internet_to_eip"] = connect(vpc.internet.socket(), (out["nat"][0]["eip"], 7000))

    # Security groups, also between neighbours in one subnet.
    def attach(subnet: IPv4Network, ip: str, group: str) -> NetworkInterface:
        return vpc.attach_network_interface(subnet, IPv4Address(ip), security_groups=[group])

    c = attach(PRIVATE[1], "10.0.11.30", "backend-private")
    a = attach(PRIVATE[1], "10.0.11.20", "frontend")  # same subnet as c
    b = attach(PRIVATE[0], "10.0.10.21", "backend-public")
    b2 = attach(PRIVATE[1], "10.0.11.21", "backend-public")  # same subnet as c
    listen(c.socket(), ("10.0.11.30", 8090))
    # The router itself (where a host-side proxy could open its sockets) is not filtered.
    out["router_to_private"] = connect(vpc.router.socket(), ("10.0.11.30", 8090))
    out["sg_frontend_to_private"] = connect(a.socket(), ("10.0.11.30", 8090))
    out["sg_public_to_private"] = connect(b.socket(), ("10.0.11.30", 8090))
    out["sg_public_to_private_same_subnet"] = connect(b2.socket(), ("10.0.11.30", 8090))
    route = a.namespace.run([find_tool("ip"), "-o", "route", "get", "10.0.11.30"])
    out["same_subnet_route"] = route.stdout.strip()
    vpc.security_groups.add_member("backend-public", a.ip)
    out["sg_after_add_member"] = connect(a.socket(), ("10.0.11.30", 8090))
    vpc.security_groups.remove_member("backend-public", a.ip)
    out["sg_after_remove_member"] = connect(a.socket(), ("10.0.11.30", 8090))

    # The VPC's own addresses: DNS at base + 2 (UDP and TCP) and task metadata.
    dns = str(vpc.dns_address)
    udp_server = vpc.router.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp_server.bind((dns, 53))
    client = task.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.settimeout(2)
    client.sendto(b"query", (dns, 53))
    data, peer = udp_server.recvfrom(100)
    udp_server.sendto(b"answer:" + data, peer)
    out["dns_udp"] = {"reply": client.recv(100).decode(), "peer": peer[0]}
    for key, address in (("dns_tcp", (dns, 53)), ("metadata", (str(vpc.metadata_address), 80))):
        tcp_server = listen(vpc.router.socket(), address)
        out[key] = connect(task.socket(), address)
        out[key]["peer"] = tcp_server.accept()[1][0] if out[key]["ok"] else None
    out["internet_to_dns"] = connect(vpc.internet.socket(), (dns, 53))

    # What a task started with the interface's command prefix sees.
    shown = vpc.router.run([*task.command_prefix(), find_tool("ip"), "-o", "-4", "addr"])
    out["task_addresses"] = [line.split()[1:4] for line in shown.stdout.splitlines()]
    links = vpc.router.run([*task.command_prefix(), find_tool("ip"), "-o", "link"])
    out["task_links"] = [line.split(": ")[1].split("@")[0] for line in links.stdout.splitlines()]
    internet_routes = vpc.internet.namespace.run([find_tool("ip"), "-o", "route"])
    out["internet_routes"] = internet_routes.stdout.strip().splitlines()
    out["namespace_ids"] = [
        os.fstat(ns.fd).st_ino
        for ns in (
            vpc.router,
            vpc.internet.namespace,
            *(e.namespace for e in vpc.network_interfaces),
        )
    ]

    # Attachment errors, and detach frees the address.
    out["error_in_use"] = error_of(lambda: vpc.attach_network_interface(PRIVATE[0], task.ip))
    out["error_subnet"] = error_of(
        lambda: vpc.attach_network_interface(IPv4Network("10.0.20.0/24"), IPv4Address("10.0.20.5"))
    )
    out["error_reserved"] = error_of(
        lambda: vpc.attach_network_interface(PRIVATE[0], IPv4Address("10.0.10.3"))
    )
    out["error_group"] = error_of(
        lambda: vpc.attach_network_interface(PRIVATE[0], security_groups=["nope"])
    )
    a.detach()
    out["detached"] = not a.attached
    out["reattach_same_ip"] = str(vpc.attach_network_interface(PRIVATE[1], a.ip).ip)
    vpc.close()
    vpc.close()  # idempotent
    shutil.rmtree(etc, ignore_errors=True)
    out["closed"] = task.namespace.closed

    # No NAT gateway: a private task has no way out. Left open on purpose (see docstring).
    bare = Vpc(layout(0)).start()
    bare.internet.add_address(IPv4Address(SERVER[0]))
    listen(bare.internet.socket(), SERVER)
    lonely = bare.attach_network_interface(PRIVATE[0], IPv4Address("10.0.10.7"))
    out["no_nat_connect"] = connect(lonely.socket(), SERVER)
    out["namespace_ids"] += [os.fstat(bare.router.fd).st_ino, os.fstat(lonely.namespace.fd).st_ino]
    return out


if __name__ == "__main__":
    print(json.dumps(main()))
