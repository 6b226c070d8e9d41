"""Errors of the VPC's network plumbing, each with a message for people: what failed,
why, and what to do about it.

Every error derives from `Ec2Error`, so a caller can catch the whole family::

    try:
        eni = vpc.attach_network_interface(subnet, ip)
    except Ec2Error as exc:
        print(f"the task cannot start: {exc}")
"""

from __future__ import annotations


class Ec2Error(Exception):
    """Something in the VPC's network plumbing failed."""


class NamespaceError(Ec2Error):
    """A Linux namespace could not be created, entered or used."""


class ToolMissing(Ec2Error):
    """A program the plumbing runs (ip, nft, nsenter) is not installed."""

    def __init__(self, tool: str, package: str) -> None:
        super().__init__(
            f"the program {tool!r} was not found (searched PATH, /usr/sbin, /sbin); "
            f"install the Debian package {package!r} (apt-get install {package})"
        )
        self.tool = tool


class CommandFailed(Ec2Error):
    """A program run inside a namespace (ip, nft) exited with an error."""

    def __init__(self, what: str, namespace: str, detail: str) -> None:
        super().__init__(f"{what} failed in network namespace {namespace!r}: {detail.strip()}")
        self.namespace = namespace


class InvalidVpcLayout(Ec2Error):
    """The VPC's CIDR, subnets or NAT gateway count do not fit together."""


class InvalidSubnet(Ec2Error):
    """An interface was to be attached to a subnet the VPC does not have
    (AWS: InvalidSubnetID.NotFound)."""


class InvalidAddress(Ec2Error):
    """An address lies outside its subnet or is one of the subnet's reserved addresses
    (AWS: InvalidParameterValue)."""


class AddressInUse(Ec2Error):
    """Another interface already holds the address (AWS: InvalidIPAddress.InUse)."""


class AddressExhausted(Ec2Error):
    """A subnet has no free address left for another interface."""


class InvalidSecurityGroup(Ec2Error):
    """A security group or one of its rules is malformed or names an unknown group."""


class VpcClosed(Ec2Error):
    """The VPC was closed (or never started): nothing can be attached to it."""
