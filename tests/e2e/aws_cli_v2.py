"""The AWS CLI v2 as Debian 12 packages it (`awscli` 2.9.19, installed by `make
system-packages`), run against the twin's AWS endpoint.

The venv's `aws` is the CLI v1 from PyPI (the dev extras) and comes first on PATH, so the
v2 is always run by its absolute path, /usr/bin/aws, and only once `aws --version` says
`aws-cli/2`. Each run gets the twin's endpoint explicitly (`--endpoint-url`), the test's
own dummy credentials, region and empty config files (set by the test module), a HOME of
its own (the CLI v2 also reads `~/.aws/cli/alias`), and no proxy of the machine's.

CLI 2.9.19 ignores `AWS_ENDPOINT_URL`: a command without `--endpoint-url` would go to AWS.
As a safety net every run has `HTTPS_PROXY` on a closed loopback port, so an HTTPS request
(AWS's endpoints; the twin's is plain HTTP) fails on this machine instead.
"""

from __future__ import annotations

import os
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

AWS_CLI_V2 = Path("/usr/bin/aws")
INSTALL = "apt-get install awscli (Debian 12's is the AWS CLI v2; `make system-packages`)"
PROXY_VARIABLES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
NO_WAY_OUT = "http://127.0.0.1:1"  # nothing listens there: an HTTPS request fails at once
# `aws logs tail`'s default "detailed" format: ISO time (µs, UTC), stream, message
DETAILED_LINE = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00) (\S+)(?: (.*))?")


def cli_v2_version() -> str | None:
    """The version of /usr/bin/aws when it is the AWS CLI v2 (``2.9.19``), else None."""
    if not os.access(AWS_CLI_V2, os.X_OK):
        return None
    run = subprocess.run(
        [str(AWS_CLI_V2), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    found = re.match(r"aws-cli/(2\.\S+)", run.stdout.strip())
    return found[1] if found else None


def cli_v2(endpoint: str, *args: str) -> list[str]:
    """The command line of an AWS CLI v2 run against ``endpoint``."""
    return [str(AWS_CLI_V2), "--endpoint-url", endpoint, "--no-cli-pager", *args]


def cli_v2_environment(home: Path, *, http_proxy: str | None = None) -> dict[str, str]:
    """This process's environment (the test's dummy AWS settings) for the CLI v2: its own
    HOME, no proxy but ``http_proxy`` and the safety net, output unbuffered (``logs tail
    --follow`` through a pipe prints each line as it comes)."""
    environment = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARIABLES}
    environment.update(HOME=str(home), PYTHONUNBUFFERED="1", AWS_PAGER="", HTTPS_PROXY=NO_WAY_OUT)
    if http_proxy is not None:
        environment["HTTP_PROXY"] = http_proxy
    return environment


def run_cli_v2(
    endpoint: str, *args: str, home: Path, http_proxy: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``aws ARGS`` (the v2) against ``endpoint``; it must succeed."""
    run = subprocess.run(
        cli_v2(endpoint, *args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_v2_environment(home, http_proxy=http_proxy),
        check=False,
    )
    assert run.returncode == 0, f"aws {' '.join(args)} exited {run.returncode}: {run.stderr}"
    return run


def detailed_lines(printed: str) -> list[tuple[datetime, str, str]]:
    """(time, stream, message) of each line `aws logs tail` printed; every line must be in
    the CLI's detailed format."""
    lines = []
    for line in printed.splitlines():
        found = DETAILED_LINE.fullmatch(line)
        assert found, f"not a line of aws logs tail: {line!r}"
        moment = datetime.fromisoformat(found[1]).astimezone(UTC)
        lines.append((moment, found[2], found[3] or ""))
    return lines
