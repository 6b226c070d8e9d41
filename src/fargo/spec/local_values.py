"""Where the twin gets a secret's value, and that git never commits it.

The twin reads no SSM or Secrets Manager: each secret names a ``local`` source, a
variable of `fargo up`'s environment or a file. The loader refuses (for `fargo up`) a
secret without one, and, whenever it reads a spec file, a local file that a ``git add``
would commit:

    missing_local(spec)                 # problems: secrets the twin has no value for
    unignored_files(spec, spec_dir)     # problems: local files git does not ignore
    local_file(secret.local, spec_dir)  # where a file source is

Reading the values is the twin's (`fargo.local.ecs.secrets`), when a task starts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from fargo.spec.errors import Loc, Problem
from fargo.spec.model import Spec
from fargo.spec.secrets import LocalSecret

LOCAL_HINT: Final = (
    "add local: {env: VARIABLE} (a variable exported in fargo up's environment) or "
    "local: {file: PATH} (a git-ignored file, relative to the spec)"
)
GIT_TIMEOUT_SECONDS: Final = 10.0


def missing_local(spec: Spec) -> list[Problem]:
    """Secrets without a ``local`` source: `fargo up` refuses them, the cloud needs none."""
    return [
        Problem(
            ("services", service_name, "secrets", name),
            f"the twin has no value for secret {name}: it reads no SSM parameter or "
            "Secrets Manager secret",
            hint=LOCAL_HINT,
        )
        for service_name, service in spec.services.items()
        for name, secret in service.secrets.items()
        if secret.local is None
    ]


def local_file(local: LocalSecret, spec_dir: Path) -> Path:
    """The file of a ``{file: PATH}`` source: ``~`` expanded, relative to the spec's folder."""
    assert local.file is not None
    return spec_dir / Path(local.file).expanduser()


def _file_sources(spec: Spec, spec_dir: Path) -> Iterator[tuple[Loc, Path]]:
    for service_name, service in spec.services.items():
        for name, secret in service.secrets.items():
            if secret.local is not None and secret.local.file is not None:
                loc: Loc = ("services", service_name, "secrets", name, "local", "file")
                yield loc, Path(os.path.normpath(local_file(secret.local, spec_dir)))


def unignored_files(spec: Spec, spec_dir: Path) -> list[Problem]:
    """Local secret files inside the spec's git work tree that git would commit (not
    ignored) or has committed (tracked). Nothing to say outside a work tree or without git.

    Runs git only when the spec has a file source: `fargo validate` stays fast.
    """
    sources = list(_file_sources(spec, Path(os.path.realpath(spec_dir))))
    if not sources:
        return []
    top = _work_tree(spec_dir)
    if top is None:
        return []
    inside = {
        loc: path.relative_to(top).as_posix() for loc, path in sources if path.is_relative_to(top)
    }
    if not inside:
        return []
    paths = sorted(set(inside.values()))
    tracked = _git_lines(top, "ls-files", "-z", "--", *paths)
    ignored = _git_lines(top, "check-ignore", "-z", "--stdin", stdin="\0".join(paths))
    if tracked is None or ignored is None:
        return []  # git could not tell (a broken repository): nothing to say
    problems = []
    for loc, relative in inside.items():
        if relative in tracked:
            problems.append(
                Problem(
                    loc,
                    f"{relative} is committed to the git repository at {top}: the secret is in "
                    "its history",
                    hint=f"git rm --cached {relative}, add it to .gitignore, and rotate the secret",
                )
            )
        elif relative not in ignored:
            problems.append(
                Problem(
                    loc,
                    f"{relative} is in the git work tree {top} and not ignored: a `git add` "
                    "would commit the secret",
                    hint=f"add {relative} (or a pattern matching it) to .gitignore",
                )
            )
    return problems


def _work_tree(spec_dir: Path) -> Path | None:
    found = _git(spec_dir, "rev-parse", "--show-toplevel")
    top = found.stdout.strip() if found is not None else ""
    return (
        Path(os.path.realpath(top)) if found is not None and found.returncode == 0 and top else None
    )


def _git_lines(top: Path, *args: str, stdin: str = "") -> set[str] | None:
    """``git ARGS`` in ``top``: its NUL-separated output, None if git failed (check-ignore
    exits 1 when nothing is ignored: that is an answer too)."""
    found = _git(top, *args, stdin=stdin)
    if found is None or found.returncode not in (0, 1):
        return None
    return {line for line in found.stdout.split("\0") if line}


def _git(cwd: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str] | None:
    """``git ARGS`` run in ``cwd``; None if there is no git or it could not run."""
    git = shutil.which("git")
    if git is None:
        return None
    try:
        return subprocess.run(
            [git, *args],
            cwd=cwd,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
