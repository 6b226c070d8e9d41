"""A task's secrets in the twin (fargo.local.ecs.secrets): read from their local sources when
the task starts, handed to its real process and nowhere else; a missing one refused at
`fargo up`, or stopping the task as ECS does."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.local.test_ecs import HarnessFactory, make_harness_fixture  # noqa: F401
from tests.local.test_runtime import SPEC_TEXT

from fargo.local.config import TwinConfig
from fargo.local.ecs.secrets import MAX_SECRET_BYTES, SecretsUnavailable, TaskSecrets
from fargo.local.ecs.task import Task
from fargo.local.runtime import Runtime, StartError
from fargo.spec import Spec, parse_spec

VALUE = "s3cr3t-value-5d41402a"
APP = "app: {image: app, port: 8080, target_groups: [app]}"


def spec_with(secrets: str) -> Spec:
    """The runtime tests' spec, its service ``app`` with these secrets (a YAML mapping)."""
    return parse_spec(
        SPEC_TEXT.replace(
            APP, f"app: {{image: app, port: 8080, target_groups: [app], secrets: {secrets}}}"
        )
    )


ENV_SECRET = "{DB_PASSWORD: {ssm_parameter: /rt/db, local: {env: RT_DB_PASSWORD}}}"
FILE_SECRET = "{API_TOKEN: {secrets_manager: rt/token, local: {file: secrets/token}}}"


def test_a_secret_comes_from_fargo_ups_environment(tmp_path: Path) -> None:
    secrets = TaskSecrets(spec_with(ENV_SECRET), tmp_path, environ={"RT_DB_PASSWORD": VALUE})

    assert secrets.validate() == []
    assert secrets.values("app") == {"DB_PASSWORD": VALUE}


def test_a_secret_comes_from_a_file_next_to_the_spec_read_at_each_start(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    token = tmp_path / "secrets" / "token"
    token.write_text(f"{VALUE}\n")  # as `echo VALUE > file` writes it
    secrets = TaskSecrets(spec_with(FILE_SECRET), tmp_path, environ={})

    assert secrets.values("app") == {"API_TOKEN": VALUE}
    token.write_text("rotated\r\n")
    assert secrets.values("app") == {"API_TOKEN": "rotated"}  # a new task gets the new one
    token.write_bytes(b"two\nlines\n\n")
    assert secrets.values("app") == {"API_TOKEN": "two\nlines\n"}  # one newline dropped


@pytest.mark.parametrize(
    ("secret", "environ", "content", "problem"),
    [
        (
            ENV_SECRET,
            {},
            None,
            "services.app.secrets.DB_PASSWORD.local.env: RT_DB_PASSWORD is not set in the "
            "environment of fargo up (export RT_DB_PASSWORD=... in the shell that runs fargo up)",
        ),
        (
            ENV_SECRET,
            {"RT_DB_PASSWORD": ""},
            None,
            "services.app.secrets.DB_PASSWORD.local.env: RT_DB_PASSWORD is empty in the "
            "environment of fargo up",
        ),
        (
            FILE_SECRET,
            {},
            None,
            "services.app.secrets.API_TOKEN.local.file: {dir}/secrets/token does not exist; "
            "write the secret's value into it (git-ignored, readable by you only: chmod 600)",
        ),
        (
            FILE_SECRET,
            {},
            b"\n",
            "services.app.secrets.API_TOKEN.local.file: {dir}/secrets/token is empty; write "
            "the secret's value into it",
        ),
        (
            FILE_SECRET,
            {},
            VALUE.encode() + b"\0",
            "services.app.secrets.API_TOKEN.local.file: {dir}/secrets/token holds a NUL byte, "
            "which no environment variable can",
        ),
        (
            FILE_SECRET,
            {},
            VALUE.encode() * (MAX_SECRET_BYTES // len(VALUE) + 1),
            "services.app.secrets.API_TOKEN.local.file: {dir}/secrets/token is larger than "
            f"{MAX_SECRET_BYTES} bytes, more than a Secrets Manager secret holds",
        ),
        (
            "{DB_PASSWORD: {ssm_parameter: /rt/db}}",
            {},
            None,
            "services.app.secrets.DB_PASSWORD: the twin has no value for it (add local: "
            "{env: VARIABLE} (a variable exported in fargo up's environment) or local: "
            "{file: PATH} (a git-ignored file, relative to the spec))",
        ),
    ],
    ids=["unset", "empty variable", "no file", "empty file", "NUL", "too large", "no local"],
)
def test_a_secret_without_a_value_is_named_with_its_source_and_never_its_content(
    tmp_path: Path, secret: str, environ: dict[str, str], content: bytes | None, problem: str
) -> None:
    (tmp_path / "secrets").mkdir()
    if content is not None:
        (tmp_path / "secrets" / "token").write_bytes(content)
    secrets = TaskSecrets(spec_with(secret), tmp_path, environ=environ)
    expected = problem.replace("{dir}", str(tmp_path.resolve()))

    assert secrets.validate() == [expected]
    with pytest.raises(SecretsUnavailable) as raised:
        secrets.values("app")
    assert str(raised.value) == f"unable to pull secrets or registry auth: {expected}"
    assert VALUE not in expected


def test_a_folder_is_no_secret_file(tmp_path: Path) -> None:
    (tmp_path / "secrets" / "token").mkdir(parents=True)
    secrets = TaskSecrets(spec_with(FILE_SECRET), tmp_path, environ={})

    assert secrets.validate() == [
        f"services.app.secrets.API_TOKEN.local.file: {tmp_path.resolve()}/secrets/token is a "
        "folder, not a file"
    ]


def test_fargo_up_refuses_a_secret_without_a_value_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RT_DB_PASSWORD", raising=False)
    config = TwinConfig(
        spec_path=tmp_path / "f.yaml", state_dir=tmp_path / "s", network_mode="loopback"
    )
    runtime = Runtime(spec_with(ENV_SECRET), config)

    with pytest.raises(StartError) as raised:
        runtime.validate()

    assert (
        "\nsecrets (local values): services.app.secrets.DB_PASSWORD.local.env: RT_DB_PASSWORD "
        "is not set in the environment of fargo up (export RT_DB_PASSWORD=... in the shell "
        "that runs fargo up)"
    ) in str(raised.value)
    assert not (tmp_path / "s").exists()  # validation touched nothing
    monkeypatch.setenv("RT_DB_PASSWORD", VALUE)
    assert runtime.secrets.validate() == []  # the control plane's own environment


# -- with the scheduler and real task processes ---------------------------------------------


def process_environment(task: Task) -> dict[str, str]:
    """The environment the task's process started with, as the kernel keeps it."""
    assert task.pid is not None
    environ = Path(f"/proc/{task.pid}/environ").read_bytes()
    pairs = (entry.partition(b"=") for entry in environ.split(b"\0") if entry)
    return {os.fsdecode(k): os.fsdecode(v) for k, _, v in pairs}


async def test_a_tasks_process_gets_its_secrets_in_its_environment(
    make_harness: HarnessFactory, tmp_path: Path
) -> None:
    h = await make_harness(
        "secrets: {DB_PASSWORD: {ssm_parameter: /t/db, local: {env: T_DB}}, "
        "PORT: {ssm_parameter: /t/port, local: {env: T_PORT}}}"
    )
    h.hooks.task_secrets = TaskSecrets(
        h.cluster.spec, tmp_path, environ={"T_DB": VALUE, "T_PORT": "1"}
    )
    await h.cluster.start()
    await h.until(lambda: len(h.scheduler.in_service()) == 1)
    (task,) = h.scheduler.in_service()

    env = process_environment(task)

    assert env["DB_PASSWORD"] == VALUE
    assert env["PORT"] == str(task.port)  # what the twin sets wins, as over `environment`
    assert VALUE not in str(task.metadata())  # the metadata endpoint's /task document
    assert VALUE not in h.scheduler.describe().model_dump_json()


async def test_a_task_whose_secret_has_no_value_stops_as_on_ecs(
    make_harness: HarnessFactory, tmp_path: Path
) -> None:
    h = await make_harness("secrets: {API_TOKEN: {ssm_parameter: /t/a, local: {file: token}}}")
    h.hooks.task_secrets = TaskSecrets(h.cluster.spec, tmp_path, environ={})
    await h.cluster.start()
    await h.until(lambda: h.scheduler.failed_starts >= 1 and len(h.cluster.stopped_tasks) >= 1)

    task = h.cluster.stopped_tasks[0]
    reason = (
        "ResourceInitializationError: unable to pull secrets or registry auth: "
        f"services.app.secrets.API_TOKEN.local.file: {tmp_path.resolve()}/token does not "
        "exist; write the secret's value into it (git-ignored, readable by you only: chmod 600)"
    )
    assert task.stopped_reason == reason
    assert task.process is None and task.root is None  # never pulled, never launched
    described = h.scheduler.describe()
    assert described.last_stop_reason == reason
    summary = f"task {task.id} could not start: {reason.split(': ', 1)[1]}"
    assert any(summary in event for event in described.events)

    (tmp_path / "token").write_text(VALUE)  # the next task reads it
    await h.until(lambda: len(h.scheduler.in_service()) == 1)
    assert process_environment(h.scheduler.in_service()[0])["API_TOKEN"] == VALUE
