"""A task's argv, environment and working directory from its image, in both network modes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fargo.local.images.builder import ProcessImage
from fargo.local.images.launch import ROOTFS_SCRIPT, ProgramNotFound, task_process
from fargo.local.images.plan import RunConfig

TASK_ENV = {"PATH": "/usr/bin:/bin", "PORT": "8000", "PYTHONPATH": "/resolver", "GREETING": "task"}


@pytest.fixture
def image(tmp_path: Path) -> ProcessImage:
    root = tmp_path / "root"
    (root / "fargoapp" / "bin").mkdir(parents=True)
    environment = tmp_path / "env"
    (environment / "bin").mkdir(parents=True)
    python = environment / "bin" / "python"
    python.symlink_to(sys.executable)
    run = RunConfig(
        cmd=("/opt/venv/bin/python", "/fargoapp/main.py", "--config", "/etc/app.conf"),
        working_dir="/fargoapp",
        env={
            "PATH": "/opt/venv/bin:/usr/local/bin:/usr/bin",
            "PYTHONPATH": "/fargoapp",
            "DATA": "/fargoapp/data:/var/lib/x",
            "GREETING": "image",
        },
        venv_paths=("/opt/venv",),
    )
    return ProcessImage(run, environment)


def test_loopback_rewrites_the_images_own_paths_and_starts_in_its_workdir(
    image: ProcessImage, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    process = task_process(image, root=root, env=TASK_ENV, namespaced=False)
    environment = str(image.environment)
    assert process.argv == [
        f"{environment}/bin/python",  # the venv the Dockerfile made is the image's environment
        f"{root}/fargoapp/main.py",  # a folder this machine does not have: the image's
        "--config",
        "/etc/app.conf",  # the machine's /etc: left alone
    ]
    assert process.cwd == root / "fargoapp"
    assert process.env["PATH"].split(":") == [
        f"{environment}/bin", "/usr/local/bin", "/usr/bin", "/bin"
    ]  # fmt: skip
    assert process.env["PYTHONPATH"] == f"/resolver:{root}/fargoapp"
    assert process.env["DATA"] == f"{root}/fargoapp/data:/var/lib/x"
    assert process.env["GREETING"] == "task"  # the task's environment wins over ENV
    assert process.env["PORT"] == "8000" and process.env["VIRTUAL_ENV"] == environment


def test_vpc_mode_keeps_the_paths_and_lays_the_image_out_in_the_mount_namespace(
    image: ProcessImage, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    process = task_process(image, root=root, env=TASK_ENV, namespaced=True)
    wrapper = [sys.executable, "-I", "-S", str(ROOTFS_SCRIPT), str(root), "/fargoapp", "--"]
    assert process.argv[: len(wrapper)] == wrapper
    assert process.argv[len(wrapper) + 1 :] == ["/fargoapp/main.py", "--config", "/etc/app.conf"]
    assert process.env["PYTHONPATH"] == "/resolver:/fargoapp"


def test_a_program_nobody_has_is_a_clear_error(image: ProcessImage, tmp_path: Path) -> None:
    missing = ProcessImage(RunConfig(cmd=("fargo-no-such-program", "server.js")), None)
    with pytest.raises(ProgramNotFound, match=r'exec: "fargo-no-such-program": executable file'):
        task_process(missing, root=tmp_path, env=TASK_ENV, namespaced=False)
    present = ProcessImage(RunConfig(cmd=("sh", "-c", "true")), None)
    assert task_process(present, root=tmp_path, env=TASK_ENV, namespaced=False).argv[0] == "sh"
