"""A task's argv, environment and working directory from its image, in both network modes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from fargo.local.ecs.task_exec import ExecTarget, exec_argv, mount_namespace_owner
from fargo.local.images import launch
from fargo.local.images.builder import ProcessImage
from fargo.local.images.launch import ROOTFS_SCRIPT, ProgramNotFound, task_process
from fargo.local.images.plan import RunConfig
from fargo.local.images.user import Switch

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


SYSTEM_PYTHON = Path("/usr/bin/python3.11")  # readable by nobody, unlike root's pyenv
AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.mark.skipif(
    os.geteuid() != 0 or not SYSTEM_PYTHON.exists(), reason="needs root, to act as nobody"
)
def test_with_one_id_a_task_is_its_user_in_namespaces_of_its_own_and_exec_finds_it_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not root, without subordinate ids (loopback mode): the task's first process maps the
    user running fargo to the image's USER in a user namespace of its own, lays out the
    image's root in a mount namespace owned by it, and runs the command as that user;
    `fargo exec`'s argv enters both and runs as it too."""
    monkeypatch.setattr(launch, "switch_for", lambda uid, gid, *, namespaced: Switch.ONE_ID)
    folder = Path(tempfile.mkdtemp(prefix="fargo-one-id-"))
    try:
        root = folder / "root"
        (root / "fargoapp").mkdir(parents=True)
        (root / "fargoapp" / "marker").write_text("image's")
        # under /root, which this machine's nobody may not list: the image's alone
        (root / "root" / "app").mkdir(parents=True)
        (root / "root" / "app" / "note").write_text("in-root")
        script = folder / "rootfs.py"  # where nobody may read it (the checkout may be 0700)
        shutil.copyfile(ROOTFS_SCRIPT, script)
        subprocess.run(["chown", "-R", "nobody", str(folder)], check=True)
        said = 'echo "$(id -u):$(id -g) $(pwd) $(cat marker /root/app/note) $HOME"; exec sleep 30'
        run = RunConfig(cmd=("sh", "-c", said), working_dir="/fargoapp", user="10001:10001")
        process = task_process(ProcessImage(run, None), root=root, env=TASK_ENV, namespaced=False)
        assert "unshare" not in process.argv[0]  # it makes its namespaces itself
        swap = {sys.executable: str(SYSTEM_PYTHON), str(ROOTFS_SCRIPT): str(script)}
        argv = [swap.get(word, word) for word in process.argv]
        task = subprocess.Popen(
            [*AS_NOBODY, *argv], env=process.env, stdout=subprocess.PIPE, text=True, cwd="/"
        )
        try:
            assert task.stdout is not None
            assert task.stdout.readline().strip() == "10001:10001 /fargoapp image'sin-root /"
            target = ExecTarget.read(task.pid, what="the task")  # as root: its ids in it
            assert (target.uid, target.gid) == (10001, 10001) and target.other_mount_namespace
            assert mount_namespace_owner(task.pid) is None  # it owns its mount namespace
            command = ["sh", "-c", 'echo "$(id -u) $(cat marker)"']
            entered = exec_argv(target, command, network=False)
            ran = subprocess.run(
                [*AS_NOBODY, *entered], capture_output=True, text=True, check=False, cwd="/"
            )
            assert (ran.returncode, ran.stdout.strip()) == (0, "10001 image's"), ran.stderr
            # this machine sees the user who ran it: nobody, not 10001
            assert Path(f"/proc/{task.pid}/status").read_text().count("65534") >= 4
        finally:
            task.kill()
            task.wait()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
