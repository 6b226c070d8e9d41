"""Users' own services, built from ordinary Dockerfiles (tests/e2e/byo/), run by the twin:
each in its own Python environment with requirements fargo itself does not have, 2 tasks
behind a listener rule, balanced; what the twin cannot honour is reported with the line;
a failed install names the image, the line and the installer's error."""

from __future__ import annotations

import importlib.util
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.e2e.conftest import Twin, fargo, make_twin, start_twin

from fargo.local.ec2.vpc_mode import vpc_mode_unavailable
from fargo.local.state import folder as state

pytestmark = pytest.mark.slow

SPEC = Path(__file__).with_name("byo.yaml")
BYO = Path(__file__).with_name("byo")


@pytest.fixture(scope="module")
def byo_twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    yield from start_twin(SPEC, tmp_path_factory.mktemp("byo") / "state")


def answers(twin: Twin, path: str, count: int = 12) -> list[dict[str, str]]:
    base = twin.url("web", "http")
    with httpx.Client(timeout=10) as client:
        responses = [client.get(base + path) for _ in range(count)]
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    return [r.json() for r in responses]


def test_fargo_itself_has_neither_flask_nor_fastapi() -> None:
    # What makes the tests below mean something: the tasks cannot borrow fargo's packages.
    assert importlib.util.find_spec("flask") is None
    assert importlib.util.find_spec("fastapi") is None


def test_a_flask_service_multi_stage_binding_every_address_is_balanced(byo_twin: Twin) -> None:
    bodies = answers(byo_twin, "/flask/whoami")
    assert {b["greeting"] for b in bodies} == {"hello from flask"}  # read relative to WORKDIR
    assert {b["python"] for b in bodies} == {"3.12"}  # FROM python:3.12-slim
    assert all(b["cwd"].endswith("/app") for b in bodies)
    assert all("/environments/" in b["executable"] for b in bodies)  # its own venv
    tasks = {t.id for t in byo_twin.service("flask").tasks}
    assert len(tasks) == 2 and {b["task"] for b in bodies} == tasks  # both tasks answer


def test_a_fastapi_service_with_shell_form_cmd_env_and_workdir_is_balanced(
    byo_twin: Twin,
) -> None:
    bodies = answers(byo_twin, "/fastapi/whoami")
    assert {b["greeting"] for b in bodies} == {"hello from fastapi"}  # ENV
    assert {b["data"] for b in bodies} == {"fastapi data"}  # ENV naming an image path
    assert all(b["cwd"].endswith("/srv/api") for b in bodies)  # WORKDIR from an ARG
    tasks = {t.id for t in byo_twin.service("fastapi").tasks}
    assert len(tasks) == 2 and {b["task"] for b in bodies} == tasks


def test_what_the_twin_cannot_honour_is_reported_with_file_and_line(byo_twin: Twin) -> None:
    built = fargo("build", "-f", str(SPEC), "--state-dir", str(byo_twin.state_dir), "fastapi")
    dockerfile = "byo/fastapi/Dockerfile"
    assert f"{dockerfile}:7: RUN apt-get update && apt-get install -y" in built.stdout
    assert "system packages are not installed" in built.stdout
    assert f"{dockerfile}:14: HEALTHCHECK: not run" in built.stdout
    assert "image fastapi: up to date" in built.stdout


def test_a_failed_install_names_the_image_the_line_and_the_installers_error(
    tmp_path: Path,
) -> None:
    spec = tmp_path / "broken.yaml"
    spec.write_text(
        textwrap.dedent(
            f"""
            name: broken
            network:
              cidr: 10.4.0.0/16
              subnets: {{public: [10.4.0.0/24, 10.4.1.0/24],
                         private: [10.4.10.0/24, 10.4.11.0/24]}}
            images: {{broken: {{context: {BYO / "broken"}, dockerfile: Dockerfile}}}}
            cluster: {{name: broken}}
            services:
              api: {{image: broken, port: 8000}}
            """
        )
    )
    state_dir = tmp_path / "state"
    built = fargo("build", "-f", str(spec), "--state-dir", str(state_dir), check=False)
    assert built.returncode == 1
    assert "image 'broken'" in built.stdout
    assert "broken/Dockerfile:6: uv pip install failed" in built.stdout
    assert "fargo-no-such-package-for-tests" in built.stdout  # uv's own words
    twin = make_twin(spec, state_dir)
    started = fargo("up", "--detach", *twin.up_args(), check=False)
    assert started.returncode == 1
    assert "broken/Dockerfile:6: uv pip install failed" in started.stderr
    # the control plane, started while the image was building, is stopped again
    assert "nothing is running" in fargo("down", "--state-dir", str(state_dir)).stdout
    assert not any(record.alive() for record in state.recorded_processes(state_dir))


def test_vpc_mode_lays_out_the_images_folders_at_their_absolute_paths(tmp_path: Path) -> None:
    if (reason := vpc_mode_unavailable()) is not None:
        pytest.skip(f"VPC mode is not possible here: {reason}")
    spec = tmp_path / "byo.yaml"  # its own VPC range: no clash with another twin's
    text = SPEC.read_text().replace("10.3.", "10.93.")
    spec.write_text(text.replace("context: byo/", f"context: {BYO}/"))
    twin = make_twin(spec, tmp_path / "state")
    twin.network = "vpc"
    fargo("up", "--detach", *twin.up_args())
    try:
        api = answers(twin, "/fastapi/whoami", count=4)
        assert {(b["cwd"], b["app_home"], b["data"]) for b in api} == {
            ("/srv/api", "/srv/api", "fastapi data")  # WORKDIR and ENV paths as in Docker
        }
        assert {b["cwd"] for b in answers(twin, "/flask/whoami", count=4)} == {"/app"}
    finally:
        fargo("down", "--state-dir", str(twin.state_dir), check=False)
