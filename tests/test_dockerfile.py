"""The Dockerfile parser: BuildKit's syntax, stages, scopes and substitution."""

from __future__ import annotations

from pathlib import Path

import pytest

from fargo.dockerfile import DockerfileError, Mount, UnresolvedVariable, parse, parse_file

ROOT = Path(__file__).resolve().parents[1]


def test_syntax_lines_continuations_comments_and_forms() -> None:
    text = (
        "# syntax=docker/dockerfile:1\n"  # 1
        "# escape=`\n"  # 2
        "\n"  # 3
        "# a comment: no instruction\n"  # 4
        "FROM python:3.12-slim AS Build\n"  # 5
        "RUN --mount=type=cache,target=/root/.cache pip install `\n"  # 6
        "# a comment inside the continuation\n"  # 7
        "\n"  # 8
        "    uvicorn\n"  # 9
        'COPY --chown=10001 --chmod=644 --link ["a b", "dst/"]\n'  # 10
        "RUN echo #not a comment\n"  # 11
        "COPY <<EOF /etc/motd\n"  # 12
        "hello $USER\n"  # 13
        "EOF\n"  # 14
        'HEALTHCHECK --interval=5s CMD ["curl", "-f", "localhost"]\n'  # 15
        "cmd python -m app\n"  # 16
    )
    parsed = parse(text, path="Dockerfile")
    assert parsed.directives == {"syntax": "docker/dockerfile:1", "escape": "`"}
    (stage,) = parsed.stages
    assert stage.name == "build" and stage.base == "python:3.12-slim"
    run, copy, echo, heredoc, health, cmd = stage.instructions[1:]
    assert [i.line for i in stage.instructions] == [5, 6, 10, 11, 12, 15, 16]
    assert (run.line, run.end_line, run.form) == (6, 9, "shell")
    assert run.arguments == ("pip install     uvicorn",)  # as BuildKit joins the lines
    assert run.mounts() == [Mount("cache", None, "/root/.cache", None)]
    assert copy.form == "exec" and copy.arguments == ("a b", "dst/")
    assert (copy.flag("chown"), copy.flag("chmod"), copy.flag("link")) == ("10001", "644", "")
    assert copy.flag("from") is None
    assert echo.arguments == ("echo #not a comment",)
    assert heredoc.arguments == ("<<EOF", "/etc/motd") and heredoc.end_line == 14
    assert heredoc.heredocs[0].content == "hello $USER\n" and heredoc.heredocs[0].expand
    assert health.arguments == ("CMD", "curl", "-f", "localhost") and health.form == "exec"
    assert health.flag("interval") == "5s"
    assert (cmd.keyword, cmd.form, cmd.arguments) == ("CMD", "shell", ("python -m app",))


def test_arg_and_env_substitution_follow_dockers_scopes() -> None:
    text = (
        "ARG BASE=python\n"
        "ARG APP=web\n"
        "FROM ${BASE}:3.12 AS build\n"
        "COPY $APP /a\n"  # APP is not declared in the stage: unknown (the image's ENV?)
        "ARG APP\n"  # now it is: the global value
        "ENV DIR=${APP}/src OTHER=$DIR\n"  # one ENV sees the scope before it
        "ARG DIR=ignored\n"  # ENV wins over ARG
        "ARG EMPTY\n"  # declared, not given: empty
        "COPY ${DIR} ${EMPTY:-fallback} ${APP:+set} '$APP' \"$APP\" \\$APP /dst/\n"
        "FROM build\n"
        "COPY ${DIR} /b\n"  # ENV is inherited from the stage it builds on
        "FROM scratch\n"
        "COPY ${NOTHING}x /c\n"  # scratch has no ENV: unset is empty
    )
    parsed = parse(text)
    build, child, last = parsed.stages
    assert build.base == "python:3.12"
    with pytest.raises(UnresolvedVariable, match=r"^Dockerfile:4: \$APP is not set"):
        build.instructions[1].expand("$APP")
    copy = build.instructions[-1]
    assert [copy.expand(a) for a in copy.arguments] == [
        "web/src", "fallback", "set", "$APP", "web", "$APP", "/dst/",
    ]  # fmt: skip
    assert build.environment["DIR"] == "web/src"
    assert not isinstance(build.environment["OTHER"], str)  # $DIR was not set yet: unknown
    assert child.base_stage == 0 and child.instructions[1].expand("${DIR}") == "web/src"
    assert last.instructions[1].expand("${NOTHING}x") == "x"


def test_build_arguments_and_the_target_platform() -> None:
    text = "FROM --platform=$TARGETPLATFORM x\nARG TARGETARCH\nARG V=1\nCOPY $TARGETARCH-$V /\n"
    (stage,) = parse(text, platform="linux/arm64", build_args={"V": "2"}).stages
    assert stage.platform == "linux/arm64"
    assert stage.instructions[-1].expand("$TARGETARCH-$V") == "arm64-2"


def test_stages_and_what_the_last_one_needs() -> None:
    text = (
        "FROM a AS deps\n"
        "FROM a AS unused\n"
        "FROM deps AS build\n"
        "RUN --mount=type=bind,from=tools,source=/x,target=/x true\n"
        "FROM b AS tools\n"
        "FROM c\n"
        "COPY --from=build /app /app\n"
        "COPY --from=0 /deps /deps\n"
        "COPY --from=nginx:1 /etc/nginx /etc/nginx\n"
    )
    parsed = parse(text)
    assert [s.name for s in parsed.reachable()] == ["deps", "build", None]
    assert parsed.stage("BUILD") is parsed.stages[2] and parsed.stage("0") is parsed.stages[0]
    # A stage may only use earlier ones: "tools" comes after "build", so it is an image.


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("FROM a\nFROOM b\n", 2, "unknown instruction 'FROOM'"),
        ("RUN x\nFROM a\n", 1, "RUN before the first FROM"),
        ("FROM a\nCOPY --form=b x y\n", 2, "unknown flag --form"),
        ("FROM a\nCOPY --chown=1 --chown=2 x y\n", 2, "--chown is given twice"),
        ('FROM a\nCMD ["x", 1]\n', 2, "a JSON array must hold strings only"),
        ("FROM a AS x\nFROM b AS x\n", 2, "duplicate stage name 'x'"),
        ("FROM a b\n", 1, "FROM takes an image and an optional name"),
        ("# escape=x\nFROM a\n", 1, "invalid escape token"),
        ("FROM a\nRUN <<EOF\necho\n", 2, "the heredoc <<EOF has no closing EOF line"),
        ("FROM scratch\nWORKDIR ${X:?must be set}\n", 2, "X: must be set"),
        ('FROM a\nCOPY "x /y\n', 2, "no closing double quote"),
        ("# just a comment\n", None, "file with no instructions"),
    ],
)
def test_errors_name_the_file_and_line(text: str, line: int | None, message: str) -> None:
    with pytest.raises(DockerfileError) as caught:
        parsed = parse(text, path="app/Dockerfile")
        for stage in parsed.stages:  # substitution errors surface where a word is expanded
            for instruction in stage.instructions[1:]:
                [instruction.expand(a) for a in instruction.arguments]
    assert caught.value.line == line
    where = "app/Dockerfile" + (f":{line}" if line else "")
    assert str(caught.value).startswith(f"{where}: ") and message in str(caught.value)


@pytest.mark.parametrize("service", ["frontend", "backend_public", "backend_private"])
def test_the_demo_dockerfiles(service: str) -> None:
    parsed = parse_file(ROOT / "services" / service / "Dockerfile")
    builder, final = parsed.stages
    assert (builder.name, final.base_stage) == ("builder", None)
    assert [s.name for s in parsed.reachable()] == ["builder", None]
    assert final.instructions[-1].keyword == "CMD" and final.instructions[-1].form == "exec"


def test_agrees_with_buildkits_own_parser() -> None:
    """BuildKit's Go parser (the ``dockerfile`` wheel, where it installs) reads the same
    instructions, lines, flags and arguments."""
    buildkit = pytest.importorskip("dockerfile")
    texts = [
        (ROOT / "services" / "frontend" / "Dockerfile").read_text(),
        'FROM a\nRUN x \\\n  # c\n\n  y\nCOPY --chown=1 --link a b /c/\nCMD ["p"]\n',
        "# escape=`\nFROM a\nRUN a `\n b\nADD ['x'] /y\nENV A=1 B=\"2 3\"\n",
        "FROM a\nCOPY <<EOF /x\nbody\nEOF\nRUN <<-A <<B\n\tone\n\tA\ntwo\nB\nEXPOSE 80 443\n",
        'FROM a\nHEALTHCHECK --interval=1s CMD curl -f x\nLABEL a=b c="d e"\nUSER 1:1\n',
    ]
    for text in texts:
        ours = [i for s in parse(text).stages for i in s.instructions]
        theirs = buildkit.parse_string(text)
        assert [(i.keyword, i.line, i.end_line) for i in ours] == [
            (c.cmd.upper(), c.start_line, c.end_line) for c in theirs
        ], text
        for mine, command in zip(ours, theirs, strict=True):
            flags = [f"--{f.name}" + ("" if f.value is None else f"={f.value}") for f in mine.flags]
            assert flags == list(command.flags), text
            assert (mine.form == "exec") == command.json, text
            if mine.keyword not in {"HEALTHCHECK", "ENV", "LABEL", "RUN", "CMD"}:
                assert mine.arguments == command.value, text
