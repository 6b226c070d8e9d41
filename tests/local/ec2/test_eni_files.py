"""An interface's resolv.conf and hosts files."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

from fargo.local.ec2.eni_files import hostname_for, render_resolv_conf, write_eni_files


def test_resolv_conf_points_at_the_vpc_dns_server_and_searches_the_namespaces():
    text = render_resolv_conf(IPv4Address("10.0.0.2"), ["microservice.local", "ec2.internal"])
    lines = text.splitlines()
    assert lines[1:] == [
        "nameserver 10.0.0.2",
        "search microservice.local ec2.internal",
        "options ndots:1 timeout:1 attempts:3",
    ]
    assert "search" not in render_resolv_conf(IPv4Address("10.0.0.2"))


def test_files_are_written_into_the_given_folder(tmp_path: Path):
    files = write_eni_files(
        tmp_path / "etc", IPv4Address("10.0.10.7"), nameserver=IPv4Address("10.0.0.2")
    )
    assert files.resolv_conf.read_text().count("nameserver") == 1
    hosts = files.hosts.read_text()
    assert "127.0.0.1\tlocalhost\n" in hosts
    assert f"10.0.10.7\t{hostname_for(IPv4Address('10.0.10.7'))}\n" in hosts
    assert hostname_for(IPv4Address("10.0.10.7")) == "ip-10-0-10-7"
    assert sorted(p.name for p in files.hosts.parent.iterdir()) == ["hosts", "resolv.conf"]
