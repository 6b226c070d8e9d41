"""Warnings: what a spec may say, but probably should not.

Nothing refuses a warning: `fargo validate` prints it on stderr and exits 0. A warning
never repeats the value it is about (a secret on a screen is a leaked secret).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from fargo.spec import refs, service_connect
from fargo.spec.errors import Problem
from fargo.spec.model import Spec

# Words in an environment variable's name that say its value is a secret.
SECRET_NAME_WORDS: Final = ("PASSWORD", "SECRET", "TOKEN", "API_KEY", "PRIVATE_KEY")
# AWS access key ids: AKIA (long-term) or ASIA (temporary) and 16 more characters.
ACCESS_KEY_ID: Final = re.compile(r"(?<![A-Z0-9])(AKIA|ASIA)[0-9A-Z]{16}(?![A-Z0-9])")
# AWS secret access keys: 40 characters of base64; both letter cases, which a hex digest
# (a commit id) does not have.
SECRET_ACCESS_KEY: Final = re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
SECRETS_HINT: Final = (
    "environment values are plain text in fargo.yaml and the task definition; move it to "
    "the service's secrets: section ({at}: ssm_parameter or secrets_manager, and local: "
    "{{env: VARIABLE}} or {{file: PATH}} for the twin)"
)


def check(spec: Spec) -> list[Problem]:
    """Every warning about ``spec`` (not located: the loader does that)."""
    return [
        *(problem for name in spec.services for problem in plain_secrets(spec, name)),
        *proxy_headroom(spec),
    ]


def proxy_headroom(spec: Spec) -> list[Problem]:
    """Service Connect services whose tasks leave the proxy little CPU.

    ECS adds the Service Connect proxy (Envoy) to every task of a client or client-server
    service, inside the task's CPU and memory; AWS advises adding 256 CPU units and 64 MiB
    for it. A task of 256 units would share them with the application.
    """
    problems = []
    for name in service_connect.clients(spec):
        if spec.cluster.service_connect is None:
            continue  # `fargo.spec.checks` reports the missing namespace
        svc = spec.services[name]
        if svc.cpu <= service_connect.PROXY_CPU_UNITS:
            problems.append(
                Problem(
                    ("services", name, "cpu"),
                    f"{svc.cpu} CPU units for the application and its Service Connect proxy; "
                    f"AWS advises adding {service_connect.PROXY_CPU_UNITS} CPU units and "
                    f"{service_connect.PROXY_MEMORY_MIB} MiB for the proxy",
                    hint=f"raise cpu to {svc.cpu + service_connect.PROXY_CPU_UNITS} if the "
                    "service is busy (fargo cost prices it)",
                )
            )
    return problems


def plain_secrets(spec: Spec, service: str) -> list[Problem]:
    """The values of ``service``'s environment that look like secrets."""
    return [
        problem
        for key, value in spec.services[service].environment.items()
        for problem in _plain_secret(("services", service, "environment", key), key, value)
    ]


def _plain_secret(loc: tuple[str, ...], name: str, value: str) -> Iterator[Problem]:
    literal = refs.REFERENCE.sub("", value).strip()
    if not literal or literal.startswith("arn:"):
        return  # empty, only references, or the ARN that names a secret (not the secret)
    hint = SECRETS_HINT.format(at=f"services.{loc[1]}.secrets.{name}")
    if ACCESS_KEY_ID.search(literal):
        yield Problem(loc, "the value looks like an AWS access key id", hint=hint)
    elif any(_mixed_case(m[0]) for m in SECRET_ACCESS_KEY.finditer(literal)):
        yield Problem(loc, "the value looks like an AWS secret access key", hint=hint)
    elif any(word in name.upper() for word in SECRET_NAME_WORDS):
        yield Problem(loc, f"{name} looks like the name of a secret", hint=hint)


def _mixed_case(text: str) -> bool:
    return any(c.islower() for c in text) and any(c.isupper() for c in text)
