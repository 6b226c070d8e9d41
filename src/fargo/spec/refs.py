"""Symbolic references in spec values, resolved by the world the spec is rendered into.

``${lb:NAME.dns_name}`` the DNS name of load balancer NAME;
``${discovery:NAME}`` the FQDN of Cloud Map service NAME (``NAME.<namespace>``);
``${service_connect:NAME}`` the client alias (``dns_name``) of the Service Connect endpoint
whose discovery name is NAME (`fargo.spec.service_connect`).

There is no reference to a task's own address: ECS assigns it when the task
starts, so no task definition can carry it; a service reads it from the task
metadata endpoint, in both worlds.

The cloud resolves them to CloudFormation tokens, the twin to its local names.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

REFERENCE = re.compile(r"\$\{(?P<kind>[a-z_]+):(?P<target>[^}]*)\}")
LB_ATTRIBUTES = ("dns_name",)

Kind = Literal["lb", "discovery", "service_connect"]


@dataclass(frozen=True)
class Reference:
    kind: str
    target: str
    text: str

    @property
    def name(self) -> str:
        """The referenced resource's name (``internal`` in ``${lb:internal.dns_name}``)."""
        return self.target.rsplit(".", 1)[0] if self.kind == "lb" else self.target

    @property
    def attribute(self) -> str:
        return self.target.rsplit(".", 1)[1] if self.kind == "lb" and "." in self.target else ""


def references(value: str) -> Iterator[Reference]:
    for match in REFERENCE.finditer(value):
        yield Reference(match["kind"], match["target"], match[0])


def unclosed(value: str) -> str | None:
    """The first ``${`` in ``value`` that no ``}`` closes (from there on), or None."""
    start = value.find("${")
    while start != -1:
        end = value.find("}", start)
        if end == -1:
            return value[start:]
        start = value.find("${", end)
    return None


def resolve(value: str, lookup: Callable[[Reference], str]) -> str:
    """Replace every reference in ``value`` with ``lookup(reference)``."""
    return REFERENCE.sub(lambda m: lookup(Reference(m["kind"], m["target"], m[0])), value)


def split(value: str) -> list[str | Reference]:
    """``value`` as literal text and references, in order (for rendering into tokens)."""
    parts: list[str | Reference] = []
    last = 0
    for match in REFERENCE.finditer(value):
        if match.start() > last:
            parts.append(value[last : match.start()])
        parts.append(Reference(match["kind"], match["target"], match[0]))
        last = match.end()
    if last < len(value):
        parts.append(value[last:])
    return parts
