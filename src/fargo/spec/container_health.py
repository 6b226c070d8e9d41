"""A warning: a container health check ECS could not run in the service's image.

    problems = probe_warnings(spec, spec_dir)   # for fargo validate, synth, deploy and up

A service's container health check without a ``command`` is an HTTP GET that the task
definition runs with the image's ``python3`` (`fargo.cloud.services`); an image whose
last stage is built from another image (``node``, ``golang``, ``scratch``, a distroless
one) may have no ``python3``, and ECS would then find every task unhealthy and replace it
forever. The twin makes the GET itself, so it would not show that. A warning, not an
error: a base image of one's own may well have Python.
"""

from __future__ import annotations

import os
from pathlib import Path

from fargo.dockerfile import DockerfileError, parse_file
from fargo.dockerfile.bases import python_version, root_base
from fargo.spec.errors import Problem
from fargo.spec.model import Spec


def probe_warnings(spec: Spec, spec_dir: Path) -> list[Problem]:
    """Services whose HTTP container health check needs a ``python3`` their image's
    Dockerfile does not build from a Python image (a Dockerfile that cannot be read is
    `fargo build`'s to report)."""
    problems = []
    for name, service in spec.services.items():
        image = spec.images.get(service.image)
        if service.health_check.command is not None or image is None:
            continue
        path = spec_dir / image.context / image.dockerfile
        try:
            dockerfile = parse_file(path)
        except DockerfileError:
            continue
        base = root_base(dockerfile, dockerfile.target)
        if python_version(base)[0]:
            continue
        problems.append(
            Problem(
                ("services", name, "health_check"),
                f"the container health check is an HTTP GET that ECS runs with python3 in "
                f"the image, and image {service.image!r} is built FROM {base} "
                f"({os.path.relpath(path, spec_dir)}:{dockerfile.target.line}), not a Python "
                "image: without python3 in it, ECS finds every task unhealthy",
                hint="give health_check.command with a tool the image has (curl, wget, "
                "node -e ..., the service's own binary), e.g. command: [CMD-SHELL, "
                f'"curl -fs http://127.0.0.1:{service.port}{service.health_check.path} '
                '|| exit 1"]',
            )
        )
    return problems
