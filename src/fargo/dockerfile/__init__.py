"""Dockerfiles read as Docker (BuildKit) reads them: for image tags and process images.

    dockerfile = parse_file(Path("services/web/Dockerfile"), platform="linux/arm64")
    for stage in dockerfile.stages:                 # FROM … [AS name] and what follows
        for instruction in stage.instructions:      # FROM first
            instruction.keyword                     # "COPY"
            instruction.flag("from")                # "build" (--from=build), or None
            instruction.arguments                   # ("app/", "/srv/")
            instruction.form                        # "exec" (a JSON array) or "shell"
            instruction.line                        # 1-based, in the file
            instruction.expand("${APP:-web}/")      # "web/": ARG and ENV substituted
    dockerfile.target                               # the last stage: what a build makes
    dockerfile.reachable()                          # the stages BuildKit builds for it

Every error is a `DockerfileError` whose message starts with ``<file>:<line>:``; a
variable whose value only the build knows (an ``ENV`` of the base image, a build
argument not given) raises `UnresolvedVariable` where it is used.

Why not a library: ``dockerfile-parse`` (containerbuildsystem) gives neither flags nor
the exec/shell form nor heredocs, and its line numbers are 0-based; ``dockerfile``
(BuildKit's own Go parser, compiled) ships no wheel for Linux on ARM, where fargo must
install without a Go toolchain. The syntax here follows BuildKit's parser (parser.go,
line_parsers.go, split_command.go) and its shell lexer for substitution; the tests hold
it to BuildKit's answers.
"""

from fargo.dockerfile.errors import DockerfileError, UnresolvedVariable
from fargo.dockerfile.model import Dockerfile, Instruction, Mount, Stage, parse, parse_file
from fargo.dockerfile.syntax import Flag, Form, Heredoc

__all__ = [
    "Dockerfile",
    "DockerfileError",
    "Flag",
    "Form",
    "Heredoc",
    "Instruction",
    "Mount",
    "Stage",
    "UnresolvedVariable",
    "parse",
    "parse_file",
]
