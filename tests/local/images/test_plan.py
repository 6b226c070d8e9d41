"""A Dockerfile → the twin's build plan: what is honoured, what is reported (no network)."""

from __future__ import annotations

import pytest
from ruamel.yaml import YAML

from fargo.dockerfile import DockerfileError, parse
from fargo.dockerfile.bases import python_version
from fargo.local.images.plan import (
    DOCKER_PATH,
    BuildPlan,
    CopyFiles,
    MakeDirectories,
    plan_build,
)
from fargo.local.images.run import InstallArgument
from fargo.local.images.user import user_note
from fargo.spec.model import ContainerHealthCheck


def plan(text: str) -> BuildPlan:
    return plan_build(parse(text, path="svc/Dockerfile"))


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("python:3.12-slim", (True, "3.12")),
        ("python:3.11.7-bookworm", (True, "3.11")),
        ("docker.io/library/python:3.13", (True, "3.13")),
        ("python:3-alpine", (True, "3")),
        ("python", (True, None)),
        ("python:slim", (True, None)),
        ("python:3.12@sha256:" + "0" * 64, (True, "3.12")),
        ("node:20", (False, None)),
        ("debian:bookworm", (False, None)),
        ("registry.example.com:5000/team/python:3.10", (True, "3.10")),
    ],
)
def test_the_python_version_comes_from_the_base_image_tag(
    image: str, expected: tuple[bool, str | None]
) -> None:
    assert python_version(image) == expected


def test_workdir_env_arg_expose_user_and_exec_cmd() -> None:
    p = plan(
        "ARG BASE=3.12\n"
        "FROM python:${BASE}-slim\n"
        "ARG HOME_DIR=/srv\n"
        "ENV APP_HOME=${HOME_DIR}/api GREETING=hi\n"
        "WORKDIR $APP_HOME\n"
        "WORKDIR sub\n"
        "EXPOSE 8000/tcp 9000\n"
        "USER app\n"
        'CMD ["python", "main.py"]\n'
    )
    assert p.python == "3.12"
    run = p.run
    assert run.working_dir == "/srv/api/sub"
    assert run.env["APP_HOME"] == "/srv/api" and run.env["GREETING"] == "hi"
    assert run.env["PATH"] == DOCKER_PATH
    assert run.exposed_ports == ("8000/tcp", "9000")
    assert run.user == "app"
    assert run.argv == ("python", "main.py")
    assert [str(n) for n in p.notes] == [f"svc/Dockerfile:8: USER: {user_note('app')}"]


@pytest.mark.parametrize(
    ("dockerfile", "argv"),
    [
        ("FROM python:3.12\nCMD python app.py --port $PORT\n",
         ("/bin/sh", "-c", "python app.py --port $PORT")),
        ('FROM python:3.12\nENTRYPOINT ["uvicorn"]\nCMD ["main:app"]\n', ("uvicorn", "main:app")),
        ('FROM python:3.12\nCMD ["main:app"]\nENTRYPOINT ["uvicorn"]\n', ("uvicorn", "main:app")),
        # A shell-form ENTRYPOINT ignores CMD, as Docker does.
        ('FROM python:3.12\nCMD ["x"]\nENTRYPOINT exec gunicorn app\n',
         ("/bin/sh", "-c", "exec gunicorn app")),
        # An ENTRYPOINT drops a CMD inherited from the base (here: an earlier stage).
        ('FROM python:3.12 AS base\nCMD ["x"]\nFROM base\nENTRYPOINT ["serve"]\n', ("serve",)),
        ('FROM python:3.12 AS base\nCMD ["inherited"]\nFROM base\n', ("inherited",)),
    ],
)  # fmt: skip
def test_cmd_and_entrypoint_in_exec_and_shell_form(dockerfile: str, argv: tuple[str, ...]) -> None:
    assert plan(dockerfile).run.argv == argv


def test_copy_destinations_are_absolute_and_relative_to_workdir() -> None:
    p = plan(
        "FROM python:3.12\n"
        "WORKDIR /app\n"
        "COPY requirements.txt .\n"
        "COPY src/ ./src/\n"
        "COPY a.py b.py lib/\n"
        "ADD data.tar.gz /data\n"
        'CMD ["python"]\n'
    )
    operations = p.stages[-1].operations
    assert operations[0] == MakeDirectories(("/app",), 2)
    copies = [o for o in operations if isinstance(o, CopyFiles)]
    assert [(c.sources, c.destination) for c in copies] == [
        (("requirements.txt",), "/app"),
        (("src/",), "/app/src/"),
        (("a.py", "b.py"), "/app/lib/"),
        (("data.tar.gz",), "/data"),
    ]
    assert [c.extract for c in copies] == [False, False, False, True]


def test_pip_installs_of_every_needed_stage_with_files_absolute_in_the_image() -> None:
    p = plan(
        "FROM python:3.12-slim AS build\n"
        "WORKDIR /w\n"
        "COPY requirements.txt constraints.txt ./\n"
        "RUN python -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir \\\n"
        "    -r requirements.txt -c constraints.txt --pre 'flask>=3' ./wheels/x.whl\n"
        "FROM python:3.12-slim AS unused\n"
        "RUN pip install never\n"
        "FROM python:3.12-slim\n"
        "COPY --from=build /opt/venv /opt/venv\n"
        "RUN uv pip install --system httpx && python -m pip install -e .\n"
        'CMD ["python"]\n'
    )
    assert [(i.stage, i.line) for i in p.installs] == [(0, 4), (2, 10), (2, 10)]
    first = p.installs[0]
    assert first.arguments == (
        InstallArgument("requirement", "/w/requirements.txt"),
        InstallArgument("constraint", "/w/constraints.txt"),
        InstallArgument("option", "--pre"),
        InstallArgument("package", "flask>=3"),
        InstallArgument("path", "/w/wheels/x.whl"),
    )
    assert p.installs[2].arguments == (InstallArgument("editable", "/"),)
    # The builder's venv is the image's one environment, under the name it was copied to.
    assert p.run.venv_paths == ("/opt/venv",)
    assert not [o for o in p.stages[-1].operations if isinstance(o, CopyFiles)]
    assert [s.index for s in p.stages] == [0, 2]  # the unused stage is not built


def test_copy_from_an_earlier_stage_reads_that_stage() -> None:
    p = plan(
        "FROM python:3.12 AS build\nWORKDIR /src\nCOPY . .\n"
        "FROM python:3.12\nCOPY --from=build /src/app.py /app/app.py\n"
        'CMD ["python", "/app/app.py"]\n'
    )
    (copy,) = [o for o in p.stages[-1].operations if isinstance(o, CopyFiles)]
    assert copy == CopyFiles(("/src/app.py",), "/app/app.py", 0, extract=False, line=5)


def test_what_the_twin_cannot_honour_is_reported_with_file_and_line() -> None:
    p = plan(
        "FROM node:20 AS assets\n"  # 1
        "RUN npm ci\n"  # 2
        "FROM python:3.12\n"  # 3
        "RUN apt-get update && apt-get install -y curl \\\n"  # 4
        "    && pip install flask\n"  # 5
        "RUN poetry install\n"  # 6
        "COPY --from=ghcr.io/astral-sh/uv:latest /uv /bin/\n"  # 7
        "COPY --from=assets /dist /app/static\n"  # 8
        "HEALTHCHECK CMD curl -f http://localhost/ || exit 1\n"  # 9
        'CMD ["python"]\n'
    )
    notes = [str(n) for n in p.notes]
    assert notes[0].startswith("svc/Dockerfile:1: FROM: base image node:20: its programs")
    assert notes[1].startswith("svc/Dockerfile:2: RUN npm ci: not run")
    assert notes[2].startswith(
        "svc/Dockerfile:4: RUN apt-get update && apt-get install -y curl: system packages "
        "are not installed"
    )
    assert notes[3].startswith("svc/Dockerfile:6: RUN poetry install: project installers")
    assert "poetry export" in notes[3]
    assert notes[4].startswith("svc/Dockerfile:7: COPY: --from=ghcr.io/astral-sh/uv:latest")
    assert notes[5].startswith("svc/Dockerfile:9: HEALTHCHECK: not run")
    # what to write in the spec for ECS and the twin to run it
    assert notes[5].endswith(
        'health_check: {command: ["CMD-SHELL", "curl -f http://localhost/ || exit 1"]}'
    )
    assert len(notes) == 6
    # The pip install after the apt-get in the same RUN is still honoured.
    assert [i.arguments for i in p.installs] == [(InstallArgument("package", "flask"),)]
    assert p.run.healthcheck is not None
    assert p.run.healthcheck.command == ("/bin/sh", "-c", "curl -f http://localhost/ || exit 1")


@pytest.mark.parametrize(
    ("instruction", "check"),
    [
        (
            'HEALTHCHECK CMD ["/app/server", "--health"]',
            '{command: ["CMD", "/app/server", "--health"]}',
        ),
        (
            'HEALTHCHECK --interval=1m30s --timeout=3s CMD ["python3", "-V"]',
            '{command: ["CMD", "python3", "-V"], interval: 90, timeout: 3}',
        ),
        (
            "HEALTHCHECK --retries=2 --start-period=500ms CMD test -f /ok",  # no whole second
            '{command: ["CMD-SHELL", "test -f /ok"], retries: 2}',
        ),
        ("HEALTHCHECK --interval=1s CMD true", '{command: ["CMD-SHELL", "true"]}'),  # < ECS's 5
    ],
)
def test_a_healthcheck_note_gives_the_spec_check_that_runs_it(instruction: str, check: str) -> None:
    p = plan(f"FROM python:3.12\n{instruction}\n")
    (note,) = [str(n) for n in p.notes]
    assert note.endswith(f"health_check: {check}")
    parsed = ContainerHealthCheck.model_validate(YAML(typ="safe").load(check))  # valid as it is
    assert parsed.argv() is not None


def test_instructions_with_no_process_counterpart_are_reported_metadata_is_not() -> None:
    p = plan(
        "FROM python:3.12\n"
        'LABEL org.opencontainers.image.title="svc"\n'
        "STOPSIGNAL SIGINT\n"
        "VOLUME /data\n"
        'SHELL ["/bin/bash", "-c"]\n'
        "COPY --chmod=755 run.sh /\n"
        'CMD ["python"]\n'
    )
    assert [(n.line, n.instruction) for n in p.notes] == [
        (3, "STOPSIGNAL"),
        (4, "VOLUME"),
        (5, "SHELL"),
        (6, "COPY"),
    ]


def test_a_dockerfile_docker_refuses_is_an_error_with_its_line() -> None:
    with pytest.raises(DockerfileError, match=r"svc/Dockerfile:2: COPY needs a source"):
        plan("FROM python:3.12\nCOPY onlyone\n")
