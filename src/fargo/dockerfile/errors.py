"""The errors of the Dockerfile parser: each names the file and the line."""

from __future__ import annotations

from pathlib import Path


class DockerfileError(ValueError):
    """A Dockerfile that Docker would refuse: ``<file>:<line>: what is wrong (what to do)``."""

    def __init__(self, message: str, *, path: Path | str | None, line: int | None) -> None:
        self.message = message
        self.path = path
        self.line = line
        where = str(path) if path is not None else "Dockerfile"
        if line is not None:
            where += f":{line}"
        super().__init__(f"{where}: {message}")


class UnresolvedVariable(DockerfileError):
    """A variable whose value only the build knows (an ``ENV`` of the base image, a build
    argument): Docker would substitute it, this parser cannot."""

    def __init__(self, name: str, *, path: Path | str | None, line: int | None) -> None:
        self.name = name
        super().__init__(
            f"${name} is not set by this Dockerfile (it may come from the base image or "
            "a build argument): its value is only known to the build",
            path=path,
            line=line,
        )
