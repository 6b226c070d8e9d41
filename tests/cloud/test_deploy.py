"""`fargo deploy` and `fargo destroy`: prerequisites first, then the steps in order."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from fargo.cloud import deploy as deploy_module
from fargo.cloud.deploy import DeployError, deploy, destroy, git_tag, image_platforms
from fargo.cloud.prerequisites import cdk_cli, check_prerequisites, has_aws_credentials
from fargo.spec import Spec

REFERENCE = Path(__file__).resolve().parents[2] / "fargo.yaml"


def executable(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_deploy_on_a_bare_machine_names_every_missing_prerequisite(tmp_path: Path) -> None:
    """No AWS credentials, no docker, no cdk: exit non-zero before doing anything."""
    env = {
        "PATH": str(tmp_path / "empty-bin"),
        "HOME": str(tmp_path),
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    code = (
        "import sys; from pathlib import Path; from fargo.spec import load_spec; "
        "from fargo.cloud.deploy import deploy; "
        f"spec = load_spec({str(REFERENCE)!r}); "
        f"sys.exit(deploy(spec, dry_run=False, root=Path({str(tmp_path)!r})))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 2, completed.stderr
    out = completed.stdout
    assert "nothing was changed" in out
    assert "missing: AWS credentials" in out and "aws configure" in out
    assert "missing: Docker" in out and "docs.docker.com" in out
    assert "missing: the AWS CDK CLI" in out and "aws-cdk@2" in out
    assert not (tmp_path / "cdk.out").exists()


def test_docker_without_an_engine_is_named(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    executable(
        bin_dir,
        "docker",
        """
        import sys
        print("Cannot connect to the Docker daemon at unix:///docker.sock.", file=sys.stderr)
        sys.exit(1)
        """,
    )
    missing = check_prerequisites({"PATH": str(bin_dir), "HOME": str(tmp_path)})
    (docker,) = [m for m in missing if "Docker" in m.what]
    assert "Cannot connect to the Docker daemon" in docker.what
    assert "systemctl start docker" in docker.how


@pytest.mark.parametrize(
    "env",
    [
        {"AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "s"},
        {"AWS_PROFILE": "dev"},
        {"AWS_WEB_IDENTITY_TOKEN_FILE": "/t", "AWS_ROLE_ARN": "arn:aws:iam::1:role/r"},
    ],
)
def test_credentials_from_the_environment(env: dict[str, str]) -> None:
    assert has_aws_credentials(env)


def test_credentials_from_the_aws_folder(tmp_path: Path) -> None:
    assert not has_aws_credentials({"HOME": str(tmp_path)})
    assert not has_aws_credentials({"AWS_ACCESS_KEY_ID": "only half"})
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "credentials").write_text("[default]\n")
    assert has_aws_credentials({"HOME": str(tmp_path)})


def test_cdk_cli_from_the_tool_folder_runs_on_the_wheels_node(tmp_path: Path) -> None:
    env = {"PATH": "", "HOME": str(tmp_path)}
    assert cdk_cli(env) is None
    script = tmp_path / ".cache" / "fargo" / "node_modules" / "aws-cdk" / "bin" / "cdk"
    script.parent.mkdir(parents=True)
    script.write_text("")
    argv = cdk_cli(env)
    assert argv is not None and argv[1] == str(script)
    assert argv[0] == os.environ["JSII_NODE"]


@pytest.mark.slow  # a synth, cdk-nag, cfn-lint and checkov
def test_dry_run_prints_the_plan_and_runs_every_check(reference_spec: Spec, tmp_path: Path) -> None:
    out = io.StringIO()
    status = deploy(reference_spec, dry_run=True, root=tmp_path, outdir=tmp_path / "out", out=out)
    text = out.getvalue()
    assert status == 0, text
    assert "fargo-demo-network:" in text and "fargo-demo-app:" in text
    assert "   4  AWS::ECS::Service" in text
    assert "   2  AWS::ElasticLoadBalancingV2::LoadBalancer" in text
    assert "docker build -f" in text and "fargo-demo/backend-private:dry-run" in text
    assert "checks: cdk-nag, cfn-lint, checkov" in text
    assert "no findings" in text


def test_image_platform_follows_the_services_architecture(
    reference_spec: Spec, shop_spec: Spec
) -> None:
    assert set(image_platforms(reference_spec).values()) == {"linux/amd64"}
    assert image_platforms(shop_spec)["web"] == "linux/arm64"
    mixed = shop_spec.model_copy(deep=True)
    mixed.services["worker"].architecture = "ARM64"
    with pytest.raises(DeployError, match="image api is used by X86_64 and ARM64 services"):
        image_platforms(mixed)


def test_image_tag_is_the_commit(tmp_path: Path) -> None:
    assert git_tag(tmp_path) is None

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(tmp_path), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    git("init", "-q")
    (tmp_path / "f").write_text("x")
    git("add", "f")
    git("-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", "m")
    commit = git("rev-parse", "--short=12", "HEAD")
    assert git_tag(tmp_path) == commit
    (tmp_path / "f").write_text("changed")
    tag = git_tag(tmp_path)
    assert tag is not None and tag.startswith(f"{commit}-dirty-")


class FakeClient:
    def __init__(self, calls: list[Any], answers: dict[str, Any]) -> None:
        self.calls = calls
        self.answers = answers

        class ImageNotFoundException(Exception):
            pass

        class RepositoryNotFoundException(Exception):
            pass

        self.exceptions = type(
            "Exceptions",
            (),
            {
                "ImageNotFoundException": ImageNotFoundException,
                "RepositoryNotFoundException": RepositoryNotFoundException,
            },
        )

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            answer = self.answers.get(name)
            if isinstance(answer, type) and issubclass(answer, Exception):
                raise answer()
            return answer(*args, **kwargs) if callable(answer) else answer

        return call


class Waiter:
    def __init__(self, calls: list[Any]) -> None:
        self.calls = calls

    def wait(self, **kwargs: Any) -> None:
        self.calls.append(("wait", kwargs))


class FakeSession:
    def __init__(self) -> None:
        self.calls: list[Any] = []
        self.clients: dict[str, FakeClient] = {}

    def client(self, service: str) -> FakeClient:
        if service not in self.clients:
            answers: dict[str, Any] = {
                "get_caller_identity": {"Account": "123456789012"},
                "get_authorization_token": {
                    "authorizationData": [
                        {
                            "authorizationToken": "QVdTOnNlY3JldA==",  # AWS:secret
                            "proxyEndpoint": "https://123456789012.dkr.ecr.us-east-1.amazonaws.com",
                        }
                    ]
                },
                "list_hosted_zones_by_name": {
                    "HostedZones": [
                        {
                            "Id": "/hostedzone/ZPRIVATE",
                            "Name": "example.com.",
                            "Config": {"PrivateZone": True},
                        },
                        {
                            "Id": "/hostedzone/ZPUBLIC1",
                            "Name": "example.com.",
                            "Config": {"PrivateZone": False},
                        },
                    ]
                },
                "get_waiter": lambda name: Waiter(self.calls),
            }
            client = FakeClient(self.calls, answers)
            client.answers["describe_images"] = client.exceptions.ImageNotFoundException
            self.clients[service] = client
        return self.clients[service]


def test_real_deploy_runs_the_steps_in_order(
    reference_spec: Spec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "commands.log"
    bin_dir = tmp_path / "bin"
    executable(
        bin_dir,
        "docker",
        f"""
        import sys
        with open({str(log)!r}, "a") as f:
            f.write("docker " + " ".join(sys.argv[1:]) + "\\n")
        if sys.argv[1:2] == ["version"]:
            print("27.0.0")
        """,
    )
    executable(
        bin_dir,
        "cdk",
        f"""
        import json, sys
        args = sys.argv[1:]
        with open({str(log)!r}, "a") as f:
            f.write("cdk " + " ".join(args) + "\\n")
        if "--outputs-file" in args:
            path = args[args.index("--outputs-file") + 1]
            json.dump({{"fargo-demo-app": {{
                "PublicUrl": "https://fargo.example.com",
                "ClusterName": "microservices",
                "FrontendServiceName": "svc-frontend",
            }}}}, open(path, "w"))
        """,
    )
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("HOME", str(tmp_path))
    session = FakeSession()
    monkeypatch.setattr(deploy_module, "_session", lambda spec: session)
    monkeypatch.setattr("fargo.cloud.checks.run_checks", lambda result: [])
    monkeypatch.setattr(deploy_module, "git_tag", lambda root: "c0ffee")

    out = io.StringIO()
    status = deploy(reference_spec, dry_run=False, root=tmp_path, outdir=tmp_path / "out", out=out)
    assert status == 0, out.getvalue()
    commands = [
        line for line in log.read_text().splitlines() if not line.startswith("docker version")
    ]
    assert commands[0] == "cdk bootstrap aws://123456789012/us-east-1"
    assert commands[1].startswith("cdk deploy --app ") and commands[1].endswith(
        "--exclusively --require-approval never fargo-demo-network fargo-demo-registry"
    )
    assert commands[2].startswith("docker login --username AWS --password-stdin 123456789012.dkr")
    registry = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    builds = [c for c in commands if c.startswith("docker build")]
    assert len(builds) == 3
    assert (
        f"docker build --platform linux/amd64 -f {tmp_path}/services/backend_private/Dockerfile "
        f"-t {registry}/fargo-demo/backend-private:c0ffee {tmp_path}/services"
    ) in builds
    assert f"docker push {registry}/fargo-demo/frontend:c0ffee" in commands
    app = commands[-1]
    assert app.startswith("cdk deploy") and app.endswith("fargo-demo-app")
    assert "--parameters fargo-demo-app:PublicHostedZoneId=ZPUBLIC1" in app
    assert ("wait", {"cluster": "microservices", "services": ["svc-frontend"]}) in session.calls
    assert "PublicUrl: https://fargo.example.com" in out.getvalue()
    template = json.loads((tmp_path / "out" / "fargo-demo-app.template.json").read_text())
    assert ":c0ffee" in json.dumps(template)


def test_destroy_names_missing_prerequisites(
    reference_spec: Spec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    out = io.StringIO()
    assert destroy(reference_spec, outdir=tmp_path / "out", out=out) == 2
    text = out.getvalue()
    assert "missing: AWS credentials" in text and "missing: the AWS CDK CLI" in text
    assert "Docker" not in text  # destroy builds nothing
