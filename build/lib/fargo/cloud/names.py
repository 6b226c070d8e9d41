"""Construct ids and output names from spec names (``backend-private`` → ``BackendPrivate``)."""

from __future__ import annotations

import re


def pascal(name: str) -> str:
    """A spec name as a construct id or output name: alphanumeric PascalCase."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name) if part)


def repository_name(system: str, image: str) -> str:
    """The ECR repository of ``image``: ``<system>/<image>``."""
    return f"{system}/{image}"
