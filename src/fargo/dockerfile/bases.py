"""What a Dockerfile's stages are built from: Python images and their versions.

python_version("python:3.12-slim")          # (True, "3.12")
python_version("node:20")                   # (False, None)
root_base(dockerfile, dockerfile.target)    # the image the last stage starts from
"""

from __future__ import annotations

import re

from fargo.dockerfile.model import Dockerfile, Stage

# Docker Hub's python images and mirrors of them (a registry host, any path, python*).
PYTHON_IMAGE = re.compile(r"^(?:[^/]+\.[^/]+/)?(?:[\w.-]+/)*python[\w.-]*$")
PYTHON_TAG = re.compile(r"^(\d+(?:\.\d+)?)")


def python_version(image: str) -> tuple[bool, str | None]:
    """(whether ``image`` is a Python image, its X.Y version if its tag names one)."""
    name = image.partition("@")[0]
    repository, _, tag = name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] else (name, "", "")
    if not PYTHON_IMAGE.match(repository.lower()):
        return False, None
    match = PYTHON_TAG.match(tag)
    return True, match.group(1) if match else None


def root_base(dockerfile: Dockerfile, stage: Stage) -> str:
    """The image ``stage`` starts from, through the stages it builds on (``FROM build``)."""
    while stage.base_stage is not None:
        stage = dockerfile.stages[stage.base_stage]
    return stage.base
