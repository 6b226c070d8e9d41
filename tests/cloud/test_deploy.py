"""`fargo deploy` and `fargo destroy`: prerequisites first, then the steps in order."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from fargo.cloud import deploy as deploy_module
from fargo.cloud.cost import monthly_total
from fargo.cloud.deploy import deploy, destroy
from fargo.cloud.images import ImageContextError, context_tags, image_platforms
from fargo.cloud.prerequisites import (
    cdk_cli,
    check_prerequisites,
    credentials_problem,
    emulation_problems,
)
from fargo.spec import Spec

ROOT = Path(__file__).resolve().parents[2]

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


@pytest.fixture
def aws_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An environment with no AWS credentials anywhere: an empty home, no instance role."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask 169.254.169.254
    return tmp_path


def test_no_credentials_anywhere_is_named(aws_env: Path) -> None:
    assert credentials_problem() == "none found"


@pytest.mark.parametrize(
    "variables",
    [
        {"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": "s"},
        {"AWS_WEB_IDENTITY_TOKEN_FILE": "/t", "AWS_ROLE_ARN": "arn:aws:iam::1:role/r"},
    ],
)
def test_credentials_from_the_environment(
    aws_env: Path, monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert credentials_problem() is None


def test_an_unreachable_container_role_is_named(
    aws_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/creds")
    problem = credentials_problem()
    assert problem is not None and "container-role" in problem and "127.0.0.1:9" in problem


def test_credentials_from_profiles_and_sso(aws_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "dev")
    assert "could not be found" in str(credentials_problem())  # no such profile
    (aws_env / ".aws").mkdir()
    (aws_env / ".aws" / "config").write_text(
        "[profile dev]\nsso_start_url = https://example.awsapps.com/start\n"
        "sso_region = us-east-1\nsso_account_id = 123456789012\nsso_role_name = Deploy\n"
    )
    assert credentials_problem() is None  # SSO: fetched when first used, not here
    monkeypatch.delenv("AWS_PROFILE")
    (aws_env / ".aws" / "credentials").write_text(
        "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = s\n"
    )
    assert credentials_problem() is None


@pytest.mark.skipif(sys.platform != "linux", reason="binfmt_misc is Linux's")
def test_images_for_another_cpu_need_an_emulator(tmp_path: Path) -> None:
    both = {"linux/amd64", "linux/arm64"}
    (problem,) = emulation_problems(both, binfmt=tmp_path, machine="x86_64")
    assert "emulation to build linux/arm64 images on this linux/amd64" in problem.what
    assert "tonistiigi/binfmt --install arm64" in problem.how
    assert emulation_problems({"linux/amd64"}, binfmt=tmp_path, machine="x86_64") == []
    (tmp_path / "qemu-aarch64").write_text("enabled\n")  # what QEMU registers
    assert emulation_problems(both, binfmt=tmp_path, machine="x86_64") == []
    (problem,) = emulation_problems(both, binfmt=tmp_path, machine="aarch64")
    assert "linux/amd64 images on this linux/arm64" in problem.what


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
    status = deploy(reference_spec, dry_run=True, root=ROOT, outdir=tmp_path / "out", out=out)
    text = out.getvalue()
    assert status == 0, text
    assert "fargo-demo-network:" in text and "fargo-demo-app:" in text
    assert "   4  AWS::ECS::Service" in text
    assert "   2  AWS::ElasticLoadBalancingV2::LoadBalancer" in text
    tag = context_tags(reference_spec, ROOT)["backend-private"]
    assert "docker build -f" in text and f"fargo-demo/backend-private:{tag}" in text
    assert f"monthly cost: about {monthly_total(reference_spec):,.2f} USD" in text
    assert "checks: cdk-nag, cfn-lint, checkov" in text
    assert "no findings" in text


def test_image_platform_follows_the_services_architecture(
    reference_spec: Spec, shop_spec: Spec
) -> None:
    assert image_platforms(reference_spec) == {
        "frontend": "linux/arm64",
        "backend-public": "linux/arm64",
        "backend-private": "linux/arm64",
    }
    assert image_platforms(shop_spec)["web"] == "linux/arm64"
    mixed = shop_spec.model_copy(deep=True)
    mixed.services["worker"].architecture = "ARM64"
    with pytest.raises(ImageContextError, match="image api is used by X86_64 and ARM64 services"):
        image_platforms(mixed)


def test_images_are_tagged_by_their_own_inputs(reference_spec: Spec, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "services", tmp_path / "services")
    before = context_tags(reference_spec, tmp_path)
    assert len(set(before.values())) == 3  # three images from one context, three tags
    (tmp_path / "services" / "backend_public" / "app.py").write_text("# changed\n")
    after = context_tags(reference_spec, tmp_path)
    assert {name for name in before if before[name] != after[name]} == {"backend-public"}
    moved = reference_spec.model_copy(deep=True)  # another CPU: another image
    moved.services["frontend"].architecture = "X86_64"
    assert context_tags(moved, tmp_path)["frontend"] != after["frontend"]


def test_a_missing_dockerfile_is_named_and_nothing_is_synthesized(
    reference_spec: Spec, tmp_path: Path
) -> None:
    out = io.StringIO()
    status = deploy(reference_spec, dry_run=True, root=tmp_path, outdir=tmp_path / "out", out=out)
    assert status == 1
    assert "images.frontend: no Dockerfile at" in out.getvalue()
    assert not (tmp_path / "out").exists()


class StackNotFound(Exception):
    def __init__(self) -> None:
        super().__init__("Stack with id fargo-demo-app does not exist")


class FakeClient:
    def __init__(self, calls: list[Any], answers: dict[str, Any]) -> None:
        self.calls = calls
        self.answers = answers

        names = [
            "ImageNotFoundException",
            "RepositoryNotFoundException",
            "ParameterNotFound",
            "NoSuchEntityException",
            "InvalidInputException",
        ]
        self.exceptions = type(
            "Exceptions", (), {name: type(name, (Exception,), {}) for name in names}
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
                "describe_stacks": StackNotFound,  # a first deploy
            }
            client = FakeClient(self.calls, answers)
            client.answers["describe_images"] = client.exceptions.ImageNotFoundException
            client.answers["get_parameter"] = client.exceptions.ParameterNotFound  # a new account
            client.answers["get_role"] = client.exceptions.NoSuchEntityException
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
                "BackendPrivateWithAlbServiceName": "svc-with-alb",
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
    checked: list[Mapping[str, str]] = []

    def points(spec: Spec, session: object, outputs: Mapping[str, str], **_: object) -> int:
        checked.append(outputs)
        return 0  # tests/cloud/test_demo.py checks the points themselves

    monkeypatch.setattr("fargo.cloud.demo.print_points", points)
    tags = context_tags(reference_spec, ROOT)

    spec = reference_spec.model_copy(deep=True)  # scaling from 1, starting at 2
    scaling = spec.services["backend-private-with-alb"].autoscaling
    assert scaling is not None
    scaling.min_capacity = 1
    out = io.StringIO()
    status = deploy(spec, dry_run=False, root=ROOT, outdir=tmp_path / "out", out=out)
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
        f"docker build --platform linux/arm64 -f {ROOT}/services/backend_private/Dockerfile "
        f"-t {registry}/fargo-demo/backend-private:{tags['backend-private']} {ROOT}/services"
    ) in builds
    assert f"docker push {registry}/fargo-demo/frontend:{tags['frontend']}" in commands
    app = commands[-1]
    assert app.startswith("cdk deploy") and app.endswith("fargo-demo-app")
    assert "--parameters fargo-demo-app:PublicHostedZoneId=ZPUBLIC1" in app
    created = [c[1] for c in session.calls if c[0] == "create_service_linked_role"]
    assert created == [
        {"AWSServiceName": "ecs.amazonaws.com"},
        {"AWSServiceName": "ecs.application-autoscaling.amazonaws.com"},
    ]
    services = ["svc-frontend", "svc-with-alb"]
    assert ("wait", {"cluster": "microservices", "services": services}) in session.calls
    # autoscaled: no DesiredCount in the template; set once, when the stack is created
    start = {"cluster": "microservices", "service": "svc-with-alb", "desiredCount": 2}
    assert [c for c in session.calls if c[0] == "update_service"] == [("update_service", start)]
    assert "PublicUrl: https://fargo.example.com" in out.getvalue()
    # the demonstration points, checked on what was deployed
    assert [o["PublicUrl"] for o in checked] == ["https://fargo.example.com"]
    template = json.loads((tmp_path / "out" / "fargo-demo-app.template.json").read_text())
    assert all(f":{tag}" in json.dumps(template) for tag in tags.values())


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


def test_a_broken_dockerfile_is_named_with_its_line(reference_spec: Spec, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "services", tmp_path / "services")
    dockerfile = tmp_path / "services" / "frontend" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "COPPY x /y\n")
    out = io.StringIO()
    status = deploy(reference_spec, dry_run=True, root=tmp_path, outdir=tmp_path / "out", out=out)
    assert status == 1
    lines = dockerfile.read_text().count("\n")
    assert f"images.frontend: {dockerfile}:{lines}: unknown instruction 'COPPY'" in out.getvalue()


@pytest.mark.slow  # a synth before the first AWS call
def test_a_denied_permission_stops_the_deploy_with_one_line(
    reference_spec: Spec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS's AccessDenied (a Stubber-checked answer of the real SSM client) is a message
    naming the action, the resource and what to grant, and exit status 1: no traceback."""
    import boto3
    from botocore.stub import Stubber

    bin_dir = tmp_path / "bin"
    executable(bin_dir, "docker", 'import sys\nprint("27.0.0")\n')
    cdk_log = tmp_path / "cdk.log"
    executable(bin_dir, "cdk", f"open({str(cdk_log)!r}, 'a').write('cdk ran')\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("HOME", str(tmp_path))
    ssm = boto3.client(
        "ssm",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",  # never reached: the Stubber answers
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="example",
    )
    session = FakeSession()
    real_client = session.client

    def client(service: str) -> Any:
        return ssm if service == "ssm" else real_client(service)

    session.client = client  # type: ignore[method-assign]
    monkeypatch.setattr(deploy_module, "_session", lambda spec: session)
    monkeypatch.setattr("fargo.cloud.checks.run_checks", lambda result: [])
    out = io.StringIO()
    with Stubber(ssm) as stub:
        stub.add_client_error(
            "get_parameter",
            "AccessDeniedException",
            "User: arn:aws:sts::123456789012:assumed-role/ci/x is not authorized to perform: "
            "ssm:GetParameter",
            400,
            expected_params={"Name": "/cdk-bootstrap/hnb659fds/version"},
        )
        status = deploy(reference_spec, dry_run=False, root=ROOT, outdir=tmp_path / "out", out=out)
        stub.assert_no_pending_responses()
    assert status == 1
    last = out.getvalue().strip().splitlines()[-1]
    assert last.startswith(
        "fargo deploy: AWS denied ssm:GetParameter on the SSM parameter "
        "/cdk-bootstrap/hnb659fds/version (AccessDeniedException): the deploying identity "
        "needs the IAM permission ssm:GetParameter on it."
    )
    assert "Traceback" not in out.getvalue() and not cdk_log.exists()  # nothing was run
