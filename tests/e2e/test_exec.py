"""`fargo exec` runs a command inside a running task: what the task resolves and reaches.

`TestInVpcMode` shares one VPC-mode twin of the reference system (its tasks have
namespaces of their own), stopped when the class is done: the loopback test after it
starts the loopback `reference_twin`, and two twins of one VPC CIDR may not run at once.
"""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.e2e.conftest import ROOT, Twin, fargo, make_twin

from fargo.local.ec2.vpc_mode import vpc_mode_unavailable
from fargo.local.status import TaskSummary

pytestmark = pytest.mark.slow

VPC = ipaddress.IPv4Network("10.0.0.0/16")  # fargo.yaml's network.cidr


@pytest.fixture(scope="class")
def vpc_twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    reason = vpc_mode_unavailable()
    if reason is not None:
        pytest.skip(f"VPC mode is not available here: {reason}")
    twin = make_twin(ROOT / "fargo.yaml", tmp_path_factory.mktemp("exec-vpc") / "state")
    twin.network = "vpc"
    fargo("up", "--detach", *twin.up_args())
    try:
        yield twin
    finally:
        fargo("down", "--state-dir", str(twin.state_dir), check=False)


def exec_in(twin: Twin, *args: str) -> subprocess.CompletedProcess[str]:
    """``fargo exec --state-dir <twin's> ARGS``; the exit status is not checked."""
    return fargo("exec", "--state-dir", str(twin.state_dir), *args, check=False)


def running_tasks(twin: Twin, service: str) -> list[TaskSummary]:
    return [t for t in twin.service(service).tasks if t.last_status == "RUNNING"]


def host_of(task: TaskSummary) -> str:
    assert task.address is not None, task
    return task.address.rpartition(":")[0]


def connect_program(host: str, port: int) -> list[str]:
    """A TCP connect with a 1 s timeout, on this interpreter: the task's PATH is the
    control plane's, which need not hold a ``python3``."""
    code = f"import socket; socket.create_connection(({host!r}, {port}), timeout=1)"
    return [sys.executable, "-c", code]


class TestInVpcMode:
    """The command runs in the task's network and mount namespaces."""

    def test_a_task_resolves_discovery_names_through_its_own_resolv_conf(
        self, vpc_twin: Twin
    ) -> None:
        # getent is libc's resolver, not Python's: no sitecustomize helps it in VPC mode.
        name = "private.backend.microservice.local"
        result = exec_in(vpc_twin, "backend-public", "--", "getent", "hosts", name)
        assert result.returncode == 0, result.stderr
        addresses = {line.split()[0] for line in result.stdout.splitlines()}
        assert len(addresses) == 2, result.stdout
        assert all(ipaddress.IPv4Address(a) in VPC for a in addresses), result.stdout
        assert addresses == {host_of(t) for t in running_tasks(vpc_twin, "backend-private")}

    def test_a_task_sees_its_own_resolv_conf(self, vpc_twin: Twin) -> None:
        result = exec_in(vpc_twin, "backend-public", "--", "cat", "/etc/resolv.conf")
        assert result.returncode == 0, result.stderr
        assert "nameserver 10.0.0.2" in result.stdout.splitlines()
        assert "search microservice.local" in result.stdout.splitlines()

    def test_security_groups_drop_what_the_spec_does_not_allow(self, vpc_twin: Twin) -> None:
        private = host_of(running_tasks(vpc_twin, "backend-private")[0])
        dropped = exec_in(vpc_twin, "frontend", "--", *connect_program(private, 8090))
        assert dropped.returncode == 1
        assert "TimeoutError" in dropped.stderr  # dropped, not refused
        allowed = exec_in(vpc_twin, "backend-public", "--", *connect_program(private, 8090))
        assert allowed.returncode == 0, allowed.stderr

    def test_task_option_runs_in_that_task(self, vpc_twin: Twin) -> None:
        # The address a datagram towards the DNS server leaves from: the task's ENI's.
        code = (
            "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
            "s.connect(('10.0.0.2', 53)); print(s.getsockname()[0])"
        )
        for task in running_tasks(vpc_twin, "backend-private"):
            result = exec_in(
                vpc_twin, "--task", task.id[:8], "backend-private", "--", sys.executable, "-c", code
            )
            assert result.returncode == 0, result.stderr
            assert result.stdout.strip() == host_of(task)

    def test_an_ambiguous_task_prefix_lists_the_candidates(self, vpc_twin: Twin) -> None:
        result = exec_in(vpc_twin, "--task", "", "backend-private", "--", "true")
        assert result.returncode == 1
        assert "ambiguous" in result.stderr
        for task in running_tasks(vpc_twin, "backend-private"):
            assert task.id in result.stderr

    def test_the_exit_status_and_stdin_are_the_commands(self, vpc_twin: Twin) -> None:
        command = ["exec", "--state-dir", str(vpc_twin.state_dir), "frontend", "--", "sh"]
        shell = subprocess.run(
            [sys.executable, "-m", "fargo.cli", *command],
            cwd=ROOT,
            input="cat /etc/hosts\nexit 7\n",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert shell.returncode == 7, shell.stderr
        frontend = running_tasks(vpc_twin, "frontend")[0]
        assert host_of(frontend) in shell.stdout  # the task's own /etc/hosts

    def test_an_unknown_service_lists_the_known_ones(self, vpc_twin: Twin) -> None:
        result = exec_in(vpc_twin, "no-such-service", "--", "true")
        assert result.returncode == 1
        assert "no-such-service" in result.stderr
        assert (
            "frontend, backend-public, backend-private, backend-private-with-alb" in result.stderr
        )


def test_without_a_twin_it_says_none_runs(tmp_path: Path) -> None:
    result = fargo("exec", "--state-dir", str(tmp_path), "frontend", "--", "true", check=False)
    assert result.returncode == 1
    assert "no twin is running" in result.stderr


def test_loopback_mode_runs_with_the_tasks_environment(reference_twin: Twin) -> None:
    task = running_tasks(reference_twin, "backend-public")[0]
    result = exec_in(reference_twin, "backend-public", "--", "env")
    assert result.returncode == 0, result.stderr
    environment = dict(line.partition("=")[::2] for line in result.stdout.splitlines())
    uri = environment["ECS_CONTAINER_METADATA_URI_V4"]
    assert f"/v4/{task.id}-" in uri  # the task id and its own token, as on Fargate
