"""`fargo validate` as a user runs it: a real process, exit codes, messages on stderr."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from tests.cli import ROOT, modules_loaded_by, run_fargo

BROKEN = """\
name: shop
network:
  cidr: 10.20.0.0/16
  subnets:
    public: [10.20.0.0/24, 10.20.1.0/24]
    private: [10.20.10.0/24, 10.21.11.0/24]
images:
  web: {dockerfile: web/Dockerfile}
cluster: {name: shop}
target_groups:
  web: {}
services:
  web:
    image: web
    port: 8000
    cpu: 256
    memory: 4096
    target_groups: [wbe]
"""


def fargo(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    run = run_fargo(*args, cwd=cwd)
    assert "Traceback" not in run.stderr + run.stdout, run.stderr
    return run


def test_reference_spec_is_valid() -> None:
    run = fargo("validate", "-f", "fargo.yaml")

    assert (run.returncode, run.stderr) == (0, "")
    assert run.stdout == "fargo.yaml: valid (4 services, 2 load balancers)\n"


def test_validate_reads_fargo_yaml_in_the_working_directory_by_default() -> None:
    run = fargo("validate")

    assert run.returncode == 0
    assert run.stdout.startswith("fargo.yaml: valid")


def test_every_problem_goes_to_stderr_with_file_line_column_and_field(tmp_path: Path) -> None:
    (tmp_path / "shop.yaml").write_text(BROKEN)

    run = fargo("validate", "-f", "shop.yaml", cwd=tmp_path)

    assert (run.returncode, run.stdout) == (1, "")
    assert run.stderr.splitlines() == [
        "shop.yaml: 3 problems in the spec",
        "  shop.yaml:6:30: network.subnets.private[1]: subnet 10.21.11.0/24 is outside "
        "the VPC CIDR 10.20.0.0/16 (pick a range inside 10.20.0.0/16)",
        "  shop.yaml:17:5: services.web.memory: Fargate offers no task with 256 CPU units "
        "and 4096 MiB (with cpu 256 use memory 512, 1024, 2048)",
        "  shop.yaml:18:21: services.web.target_groups[0]: no target group named 'wbe' "
        "(did you mean 'web'?)",
    ]


def test_a_field_error_does_not_hide_the_cross_checks(tmp_path: Path) -> None:
    # The port is required: a stand-in keeps the service in the cross-checks. What they
    # say beside the broken port (its memory) waits for the next run; references do not.
    (tmp_path / "shop.yaml").write_text(BROKEN.replace("port: 8000", "port: eighty"))

    run = fargo("validate", "-f", "shop.yaml", cwd=tmp_path)

    assert (run.returncode, run.stdout) == (1, "")
    assert run.stderr.splitlines() == [
        "shop.yaml: 3 problems in the spec",
        "  shop.yaml:6:30: network.subnets.private[1]: subnet 10.21.11.0/24 is outside "
        "the VPC CIDR 10.20.0.0/16 (pick a range inside 10.20.0.0/16)",
        "  shop.yaml:15:5: services.web.port: Input should be a valid integer, unable to "
        "parse string as an integer; found 'eighty'",
        "  shop.yaml:18:21: services.web.target_groups[0]: no target group named 'wbe' "
        "(did you mean 'web'?)",
    ]


@pytest.mark.parametrize(
    ("name", "content", "stderr"),
    [
        pytest.param(
            "absent.yaml",
            None,
            "absent.yaml: no such file; create it or pass -f PATH",
            id="missing",
        ),
        pytest.param(
            "folder", "dir", "folder: is a directory, expected a YAML file", id="directory"
        ),
        pytest.param(
            "bad.yaml",
            b"name: shop\n  region: [eu\n",
            "bad.yaml:2:1: this line is indented 2 spaces, deeper than the line before (0) "
            "though that line's value is already given; align it with its sibling keys",
            id="not YAML",
        ),
        pytest.param(
            "deep.yaml",
            b"name: " + b"[" * 500 + b"]" * 500 + b"\n",
            "deep.yaml:1:70: brackets or indentation nest more than 64 levels deep here; "
            "a fargo spec needs fewer than ten",
            id="nested hundreds deep",
        ),
        pytest.param(
            "empty.yaml",
            b"",
            "empty.yaml: the file is empty; start from the fargo.yaml in the project root",
            id="empty",
        ),
        pytest.param(
            "list.yaml",
            b"- name: shop\n",
            "list.yaml:1:1: the top level must be a mapping of keys, found a list",
            id="top-level list",
        ),
        pytest.param(
            "latin1.yaml",
            b"name: caf\xe9\n",
            "latin1.yaml:1:10: not UTF-8 text: byte 0xe9 here (invalid continuation byte); "
            "save the file as UTF-8",
            id="not UTF-8",
        ),
    ],
)
def test_unusable_file_exits_1_with_one_line_on_stderr(
    tmp_path: Path, name: str, content: bytes | str | None, stderr: str
) -> None:
    if content == "dir":
        (tmp_path / name).mkdir()
    elif isinstance(content, bytes):
        (tmp_path / name).write_bytes(content)

    run = fargo("validate", "-f", name, cwd=tmp_path)

    assert (run.returncode, run.stdout) == (1, "")
    assert run.stderr == stderr + "\n"


def test_wrong_types_and_missing_sections_are_all_reported(tmp_path: Path) -> None:
    (tmp_path / "wrong.yaml").write_text("name: 42\nimages: [web]\n")

    run = fargo("validate", "-f", "wrong.yaml", cwd=tmp_path)

    assert (run.returncode, run.stdout) == (1, "")
    lines = run.stderr.splitlines()
    assert lines[0] == "wrong.yaml: 5 problems in the spec"
    assert "  wrong.yaml:1:1: name: Input should be a valid string; found 42" in lines
    assert "  wrong.yaml:2:1: images: Input should be a valid dictionary; found a list" in lines
    for section in ("network", "cluster", "services"):
        assert f"  wrong.yaml:1:1: {section}: missing required field {section!r}" in lines


def test_missing_default_file_tells_how_to_point_at_another(tmp_path: Path) -> None:
    run = fargo("validate", cwd=tmp_path)

    assert (run.returncode, run.stdout) == (1, "")
    assert run.stderr == "fargo.yaml: no such file; create it or pass -f PATH\n"


def reference_with(tmp_path: Path, old: str, new: str, name: str = "edited.yaml") -> Path:
    text = (ROOT / "fargo.yaml").read_text()
    assert text.count(old) == 1, old
    (tmp_path / name).write_text(text.replace(old, new))
    return tmp_path / name


def position(path: Path, needle: str) -> str:
    text = path.read_text()
    index = text.index(needle)
    return f"{text.count(chr(10), 0, index) + 1}:{index - text.rfind(chr(10), 0, index)}"


def test_what_only_the_cloud_refuses_is_an_error_with_file_line_and_field(tmp_path: Path) -> None:
    path = reference_with(tmp_path, "nat_gateways: 1", "nat_gateways: 0")

    run = fargo("validate", "-f", "edited.yaml", cwd=tmp_path)

    assert (run.returncode, run.stdout) == (1, "")
    head, problem, tracing = run.stderr.splitlines()
    assert head == "edited.yaml: 2 problems in the spec"
    assert problem.startswith(
        f"  edited.yaml:{position(path, 'nat_gateways')}: network.nat_gateways: tasks run in "
        "the private subnets, and without a NAT gateway they cannot reach ECR"
    )
    assert "could not pull their images" in problem and "vpc_endpoints" in problem
    # The reference traces (tracing: xray): its daemons would need the xray endpoint too.
    assert tracing.startswith(
        f"  edited.yaml:{position(path, 'tracing: xray')}: tracing: the X-Ray daemon in each "
        "task sends traces to the X-Ray API"
    )


def test_the_cloud_problems_synth_found_are_located_by_validate(tmp_path: Path) -> None:
    path = reference_with(tmp_path, "      hosted_zone: example.com\n", "")

    run = fargo("validate", "-f", str(path), cwd=tmp_path)

    assert run.returncode == 1
    assert run.stderr.splitlines()[1] == (
        f"  {path}:{position(path, 'certificate:')}: load_balancers.public.certificate: ACM "
        "cannot validate 'fargo.example.com' without a Route 53 hosted zone (add hosted_zone "
        "(the zone's name) for DNS validation, or arn of an existing ACM certificate)"
    )


def test_a_secret_looking_value_is_a_warning_that_never_shows_the_value(tmp_path: Path) -> None:
    secret = "correct-horse-battery-staple"
    path = reference_with(
        tmp_path,
        '      PRIVATE_ALB_URL: "http://${lb:internal.dns_name}:8090"\n',
        '      PRIVATE_ALB_URL: "http://${lb:internal.dns_name}:8090"\n'
        f"      DB_PASSWORD: {secret}\n",
    )

    run = fargo("validate", "-f", "edited.yaml", cwd=tmp_path)

    assert run.returncode == 0
    assert run.stdout == "edited.yaml: valid (4 services, 2 load balancers; 1 warning)\n"
    [warning] = run.stderr.splitlines()
    assert warning.startswith(
        f"edited.yaml:{position(path, 'DB_PASSWORD')}: warning: "
        "services.backend-public.environment.DB_PASSWORD: DB_PASSWORD looks like the name of "
        "a secret ("
    )
    assert "secrets:" in warning
    assert secret not in run.stderr + run.stdout


def test_validate_does_not_load_either_world() -> None:
    worlds = ("aws_cdk", "fargo.cloud", "fargo.local.runtime", "uvloop")
    assert modules_loaded_by(["validate"], worlds) == []
