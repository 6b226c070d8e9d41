"""A network namespace held by a descriptor: made, used from any thread, closed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from tests.local.ec2.for_nobody import readable_source

from fargo.local.ec2.commands import find_tool, ip_batch
from fargo.local.ec2.errors import CommandFailed, NamespaceError
from fargo.local.ec2.namespaces import user_namespaces_available
from fargo.local.ec2.netns import NetworkNamespace

SRC = Path(__file__).resolve().parents[3] / "src"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="in-process namespaces need root")


@needs_root
def test_a_namespace_has_only_lo_up_and_its_own_sysctls():
    host_forwarding = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    with NetworkNamespace.create("t", {"net/ipv4/ip_forward": "1"}) as ns:
        shown = ns.run([find_tool("ip"), "-o", "link"]).stdout.splitlines()
        assert len(shown) == 1 and "lo:" in shown[0] and "UP" in shown[0]
        assert ns.call(lambda: Path("/proc/sys/net/ipv4/ip_forward").read_text()) == "1\n"
        assert os.readlink(ns.path) != os.readlink("/proc/self/ns/net")
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == host_forwarding


@needs_root
def test_sockets_stay_in_their_namespace_from_any_thread():
    with NetworkNamespace.create("t") as ns:
        server = ns.socket()
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        inside = ns.socket()
        inside.connect(("127.0.0.1", port))  # made on the worker, connected from here
        outside = socket.socket()
        outside.settimeout(0.5)
        with pytest.raises(OSError):  # the host's loopback has no such listener
            outside.connect(("127.0.0.1", port))
        results: list[bool] = []
        worker = threading.Thread(target=lambda: results.append(server.accept() is not None))
        worker.start()
        worker.join(2)
        assert results == [True]
        for s in (server, inside, outside):
            s.close()


@needs_root
def test_command_prefix_and_close_are_idempotent_and_final():
    ns = NetworkNamespace.create("t")
    prefix = ns.command_prefix()
    assert prefix[1] == f"--net={ns.path}"
    done = subprocess.run([*prefix, find_tool("ip"), "-o", "link"], capture_output=True, text=True)
    assert done.stdout.count("\n") == 1
    ns.close()
    ns.close()
    with pytest.raises(NamespaceError, match="closed"):
        ns.socket()


@needs_root
def test_ip_batch_errors_name_the_failing_command():
    with NetworkNamespace.create("t") as ns:
        with pytest.raises(CommandFailed, match=r"`ip link set nope up`") as caught:
            ip_batch(ns, ["link set lo up", "link set nope up"])
        assert "namespace 't'" in str(caught.value)


def test_entering_a_user_namespace_refuses_a_threaded_process():
    if os.geteuid() == 0 and not Path("/usr/bin/python3.11").exists():
        pytest.skip("needs the system interpreter to run as nobody")
    code = (
        "import threading, time\n"
        "from fargo.local.ec2.namespaces import enter_user_namespace\n"
        "threading.Thread(target=time.sleep, args=(1,), daemon=True).start()\n"
        "try:\n    enter_user_namespace()\nexcept Exception as e:\n    print(e)\n"
    )
    if os.geteuid() == 0:
        argv = [
            "su",
            "nobody",
            "-s",
            "/bin/sh",
            "-c",
            f"cd /tmp && PYTHONPATH={readable_source()} /usr/bin/python3.11 -c '{code}'",
        ]
    else:
        argv = [sys.executable, "-c", code]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=30, env={"PYTHONPATH": str(SRC)}
    )
    assert "before starting threads" in done.stdout, done.stderr


def test_the_probe_answers_with_none_or_a_reason():
    reason = user_namespaces_available()
    assert reason is None or reason.startswith(("the kernel refused", "could not run"))
