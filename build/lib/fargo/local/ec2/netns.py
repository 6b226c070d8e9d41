"""A network namespace held by a file descriptor and served by one worker thread.

Nothing is created in the host's network namespace and nothing is named in
/run/netns: a dedicated thread calls ``unshare(CLONE_NEWNET)``, opens
``/proc/thread-self/ns/net`` (that descriptor keeps the namespace alive), brings ``lo``
up and then stays in the namespace, running what it is asked to. When the creating
process exits, the descriptor closes and the namespace vanishes with everything in
it (unless a process still runs inside).

One thread per namespace: the VPC of the reference system has about twenty (router,
internet, NAT gateways, one per task or load balancer); an idle thread costs a
stack mapping and nothing else. A pool entering namespaces with ``setns`` per request
would only pay off at hundreds of namespaces.

Usage::

    ns = NetworkNamespace.create("task-1")
    server = ns.socket()                        # made inside; usable from any thread
    server.bind(("127.0.0.1", 8080))
    ns.run(["ip", "-o", "addr"])                 # a program inside, without nsenter
    argv = [*ns.command_prefix(), "python", "app.py"]   # for the caller's own processes
    ns.close()
"""

from __future__ import annotations

import fcntl
import os
import queue
import socket
import struct
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from fargo.local.ec2.commands import find_tool
from fargo.local.ec2.errors import NamespaceError
from fargo.local.ec2.namespaces import CLONE_NEWNET, unshare

T = TypeVar("T")
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_Job = tuple[Callable[[], Any], "Future[Any]"] | None


class NetworkNamespace:
    """A network namespace of this process; create it with `NetworkNamespace.create`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._fd = -1
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name=f"netns-{name}", daemon=True)

    @classmethod
    def create(cls, name: str, sysctls: Mapping[str, str] | None = None) -> NetworkNamespace:
        """A new, empty namespace with ``lo`` up and these sysctls written (keys are paths
        under /proc/sys, e.g. ``net/ipv4/ip_forward``)."""
        ns = cls(name)
        ready: Future[int] = Future()
        ns._jobs.put((lambda: ns._enter(sysctls or {}), ready))
        ns._thread.start()
        try:
            ns._fd = ready.result()
        except BaseException:
            ns.close()
            raise
        return ns

    @property
    def fd(self) -> int:
        """The descriptor holding the namespace (``/proc/<pid>/fd/<fd>`` names it)."""
        return self._fd

    @property
    def path(self) -> str:
        """A path naming the namespace while this process lives (for ``ip ... netns``)."""
        return f"/proc/{os.getpid()}/fd/{self._fd}"

    @property
    def closed(self) -> bool:
        return self._closed

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the namespace's thread (so inside the namespace) and return its result."""
        if threading.current_thread() is self._thread:
            return fn()
        done: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise NamespaceError(f"network namespace {self.name!r} is closed")
            self._jobs.put((fn, done))
        return done.result()

    def socket(
        self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM, proto: int = 0
    ) -> socket.socket:
        """A socket created inside the namespace; it stays there wherever it is used."""
        return self.call(lambda: socket.socket(family, type, proto))

    def run(
        self, argv: Sequence[str], input: str | None = None, timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        """Run a program inside the namespace (started from its thread: one exec, no
        nsenter) and wait for it; output is captured, the exit status not checked."""
        return self.call(
            lambda: subprocess.run(
                list(argv), input=input, capture_output=True, text=True, timeout=timeout
            )
        )

    def command_prefix(self) -> list[str]:
        """An argv prefix running a program inside: ``nsenter --net=/proc/<pid>/fd/<fd> --``.
        As an unprivileged user the child inherits this process's user namespace, in which
        it is uid 0, so nsenter has the capability to enter."""
        if self._closed:
            raise NamespaceError(f"network namespace {self.name!r} is closed")
        return [find_tool("nsenter"), f"--net={self.path}", "--"]

    def write_sysctl(self, key: str, value: str) -> None:
        """Write /proc/sys/<key> as seen from inside the namespace."""
        self.call(lambda: _write_sysctl(key, value))

    def close(self) -> None:
        """End the thread and close the descriptor; idempotent. The namespace vanishes
        unless a process still runs inside (or holds a socket made in it)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._jobs.put(None)
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=10)
        if self._fd >= 0:
            os.close(self._fd)

    def __enter__(self) -> NetworkNamespace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else self.path
        return f"NetworkNamespace({self.name!r}, {state})"

    def _enter(self, sysctls: Mapping[str, str]) -> int:
        try:
            unshare(CLONE_NEWNET)
        except OSError as exc:
            raise NamespaceError(
                f"cannot create network namespace {self.name!r} ({exc.strerror}); run as "
                "root or call enter_user_namespace() first, at the start of the process"
            ) from exc
        fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        if os.fstat(fd).st_ino == os.stat("/proc/self/ns/net").st_ino:  # never the host's
            os.close(fd)
            raise NamespaceError(f"network namespace {self.name!r} is the process's own")
        try:
            _bring_up("lo")
            for key, value in sysctls.items():
                _write_sysctl(key, value)
        except OSError as exc:
            os.close(fd)
            raise NamespaceError(f"cannot set up network namespace {self.name!r}: {exc}") from exc
        return fd

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, done = job
            if not done.set_running_or_notify_cancel():
                continue
            try:
                done.set_result(fn())
            except BaseException as exc:
                done.set_exception(exc)
        while True:  # closed: fail what raced in before the sentinel
            try:
                late = self._jobs.get_nowait()
            except queue.Empty:
                return
            if late is not None:
                late[1].set_exception(NamespaceError(f"network namespace {self.name!r} closed"))


def _bring_up(interface: str) -> None:
    """Set IFF_UP on an interface of the calling thread's namespace (no exec needed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh22x", interface.encode(), 0)
        flags = struct.unpack("16sh22x", fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(
            sock, _SIOCSIFFLAGS, struct.pack("16sh22x", interface.encode(), flags | _IFF_UP)
        )


def _write_sysctl(key: str, value: str) -> None:
    # /proc/sys/net resolves against the *calling thread's* network namespace.
    with open(f"/proc/sys/{key.strip('/')}", "w") as f:
        f.write(f"{value}\n")
