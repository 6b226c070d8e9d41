"""A task's secrets in the twin, read as the ECS agent reads them: when the task starts.

The twin has no SSM or Secrets Manager: each secret's ``local`` source gives its value,
a variable of `fargo up`'s environment (a detached control plane is forked from the
command, so it has the same environment) or a file next to the spec. `validate` refuses,
at `fargo up`, a secret that could not get a value, before anything starts; `values` reads
again for every task, so a changed file reaches the tasks started after it (as a rotated
secret does on ECS: new tasks, e.g. `fargo update-service`, get it).

A value only ever goes into the environment of the task's process: it is never logged,
recorded in the state folder or shown; problems name the secret and its source, never
its content. (What a task itself prints is its own output, as in CloudWatch Logs.)

    secrets = TaskSecrets(spec, spec_dir)
    secrets.validate()          # ["services.api.secrets.DB_PASSWORD.local.env: ..."]
    env = secrets.values("api")  # raises SecretsUnavailable
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from fargo.spec import Spec
from fargo.spec.local_values import LOCAL_HINT, local_file
from fargo.spec.secrets import Secret

# Secrets Manager holds at most 64 KiB; a larger file is not a secret that was meant.
MAX_SECRET_BYTES: Final = 65536
# How ECS says that the agent could not read a task's secrets (after the stage's name).
ECS_SECRETS_ERROR: Final = "unable to pull secrets or registry auth"


class SecretsUnavailable(RuntimeError):
    """A secret of the task has no value now: the task cannot start (ECS: the task stops with
    ``ResourceInitializationError: unable to pull secrets or registry auth``)."""


class TaskSecrets:
    """The values of the spec's secrets, from their ``local`` sources.

    ``environ`` is `fargo up`'s environment (the control plane's own); ``spec_dir`` the
    folder file sources are relative to.
    """

    name = "secrets (local values)"

    def __init__(
        self, spec: Spec, spec_dir: Path, *, environ: Mapping[str, str] = os.environ
    ) -> None:
        self.spec = spec
        self.spec_dir = spec_dir.resolve()
        self.environ = environ

    def validate(self) -> list[str]:
        """Every secret without a value now: no local source, an unset variable, a missing,
        unreadable or empty file."""
        problems = []
        for service_name, service in self.spec.services.items():
            for name, secret in service.secrets.items():
                try:
                    self._read(service_name, name, secret)
                except SecretsUnavailable as err:
                    problems.append(str(err))
        return problems

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def values(self, service: str) -> dict[str, str]:
        """The secrets of ``service``, name → value, read now; `SecretsUnavailable` names the
        first that has none, in ECS's words (the task stops with
        ``ResourceInitializationError: unable to pull secrets or registry auth: …``)."""
        secrets = self.spec.services[service].secrets
        try:
            return {name: self._read(service, name, secret) for name, secret in secrets.items()}
        except SecretsUnavailable as err:
            raise SecretsUnavailable(f"{ECS_SECRETS_ERROR}: {err}") from None

    def _read(self, service: str, name: str, secret: Secret) -> str:
        at = f"services.{service}.secrets.{name}"
        local = secret.local
        if local is None:
            raise SecretsUnavailable(f"{at}: the twin has no value for it ({LOCAL_HINT})")
        if local.env is not None:
            value = self.environ.get(local.env)
            if value is None:
                raise SecretsUnavailable(
                    f"{at}.local.env: {local.env} is not set in the environment of fargo up "
                    f"(export {local.env}=... in the shell that runs fargo up)"
                )
            if not value:
                raise SecretsUnavailable(
                    f"{at}.local.env: {local.env} is empty in the environment of fargo up"
                )
            return value
        return self._read_file(f"{at}.local.file", local_file(local, self.spec_dir))

    def _read_file(self, at: str, path: Path) -> str:
        try:
            with path.open("rb") as file:
                content = file.read(MAX_SECRET_BYTES + 1)
        except FileNotFoundError:
            raise SecretsUnavailable(
                f"{at}: {path} does not exist; write the secret's value into it "
                "(git-ignored, readable by you only: chmod 600)"
            ) from None
        except IsADirectoryError:
            raise SecretsUnavailable(f"{at}: {path} is a folder, not a file") from None
        except OSError as err:
            raise SecretsUnavailable(f"{at}: cannot read {path}: {err.strerror}") from None
        if len(content) > MAX_SECRET_BYTES:
            raise SecretsUnavailable(
                f"{at}: {path} is larger than {MAX_SECRET_BYTES} bytes, more than a Secrets "
                "Manager secret holds"
            )
        # `echo value > file` adds a newline that is not part of the value.
        content = content.removesuffix(b"\n").removesuffix(b"\r")
        if not content:
            raise SecretsUnavailable(f"{at}: {path} is empty; write the secret's value into it")
        if b"\0" in content:
            raise SecretsUnavailable(
                f"{at}: {path} holds a NUL byte, which no environment variable can"
            )
        return os.fsdecode(content)
