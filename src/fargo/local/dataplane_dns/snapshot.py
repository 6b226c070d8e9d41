"""The snapshot a data-plane DNS process answers from: a JSON file the control plane
replaces atomically, the process re-reads when it changed.

    writer = SnapshotFile(path)
    writer.write({"kind": "targets", "records": {"a.targets.fargo.": ["127.0.1.7"]}})
    reader = SnapshotFile(path)
    reader.current()            # the data, re-read only when the file was replaced

A reader checks the file at every query (one ``stat``, a few microseconds) and keeps
the last good snapshot when the file is missing or unreadable: what it answers never
goes backwards to nothing. It holds the file's folder open and reads in it: a folder a
new control plane sets aside (``previous-*``, taking a VPC-mode run over) is still the
one its processes read, not the new run's folder made at the old path. Cloud Map's
state is encoded by `discovery_snapshot` and answered by `SnapshotZones` with the same
Route 53 logic the control plane has.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fargo.local.cloudmap.route53 import (
    Answer,
    ARecord,
    DiscoveryService,
    PrivateHostedZones,
    ServiceInstance,
)

logger = logging.getLogger(__name__)

FORMAT = 1
JSON = dict[str, Any]


class SnapshotError(ValueError):
    """A snapshot file that is not one this version writes."""


class SnapshotFile:
    """One snapshot file: written whole by the control plane, read by a DNS process."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path = path
        self.kind = kind
        self._seen: tuple[int, int, int] | None = None  # inode, mtime, size of what we read
        self._data: JSON | None = None
        self._folder: int | None = None  # the reader's descriptor of the file's folder

    def write(self, data: JSON) -> None:
        """Replace the file with ``data`` in one rename (no fsync: a snapshot only has to
        outlive the control plane, not the machine)."""
        body = json.dumps({"format": FORMAT, "kind": self.kind, **data}).encode()
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, body)
            finally:
                os.close(fd)
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def hold_folder(self) -> None:
        """Open the file's folder, where every later read looks: a reader process does so
        before it answers, so the folder it reads is the one it was started in even if a
        new control plane sets that folder aside before the first query. Raises OSError."""
        if self._folder is None:
            self._folder = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)

    def changed(self) -> JSON | None:
        """The new data if the file was replaced since the last call, else None."""
        try:
            self.hold_folder()
            assert self._folder is not None
            status = os.stat(self.path.name, dir_fd=self._folder)
        except OSError:
            return None  # gone (a `fargo down` racing us): keep answering what we have
        seen = (status.st_ino, status.st_mtime_ns, status.st_size)
        if seen == self._seen:
            return None
        try:
            data = self.parse(self._read())
        except (OSError, SnapshotError) as err:
            logger.warning("keeping the last snapshot: %s", err)
            return None
        self._seen = seen
        self._data = data
        return data

    def _read(self) -> bytes:
        fd = os.open(self.path.name, os.O_RDONLY, dir_fd=self._folder)
        with os.fdopen(fd, "rb") as file:
            return file.read()

    def current(self) -> JSON | None:
        """The latest good snapshot (re-read if the file changed), or None before any."""
        self.changed()
        return self._data

    def parse(self, body: bytes) -> JSON:
        try:
            data = json.loads(body)
        except ValueError as err:
            raise SnapshotError(f"{self.path} is not JSON: {err}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise SnapshotError(f"{self.path} is not a format-{FORMAT} snapshot")
        if data.get("kind") != self.kind:
            raise SnapshotError(
                f"{self.path} is a {data.get('kind')!r} snapshot, not {self.kind!r}"
            )
        return data


# -- targets ------------------------------------------------------------------------------


def targets_snapshot(records: Mapping[str, Sequence[str]]) -> JSON:
    """Lookup name → IPv4 addresses of its routable targets."""
    return {"records": {name: list(ips) for name, ips in records.items()}}


def targets_from_snapshot(data: JSON) -> dict[str, list[str]]:
    records = data.get("records")
    if not isinstance(records, dict):
        raise SnapshotError("a targets snapshot needs a 'records' object")
    return {str(name): [str(ip) for ip in ips] for name, ips in records.items()}


# -- Cloud Map ----------------------------------------------------------------------------


def discovery_snapshot(
    namespaces: Mapping[str, Mapping[str, DiscoveryService]],
    records: Mapping[str, ARecord],
    aliases: Mapping[str, DiscoveryService],
) -> JSON:
    """Cloud Map's DNS state (private namespaces, plain records, client aliases)."""
    return {
        "namespaces": {
            namespace: {name: _service(service) for name, service in services.items()}
            for namespace, services in namespaces.items()
        },
        "records": {name: [r.ipv4, r.ttl] for name, r in records.items()},
        "aliases": {name: _service(service) for name, service in aliases.items()},
    }


def _service(service: DiscoveryService) -> JSON:
    return {
        "ttl": service.ttl,
        "record_types": sorted(service.record_types),
        "routing_policy": service.routing_policy,
        "instances": {
            key: [i.ipv4, i.port, i.health_status] for key, i in service.instances.items()
        },
    }


def _decode_service(data: JSON) -> DiscoveryService:
    return DiscoveryService(
        ttl=int(data["ttl"]),
        record_types=frozenset(str(t) for t in data["record_types"]),
        routing_policy=data["routing_policy"],
        instances={
            str(key): ServiceInstance(str(ip), int(port), {}, health)
            for key, (ip, port, health) in data["instances"].items()
        },
    )


class SnapshotZones:
    """Answers as `fargo.local.cloudmap.route53.PrivateHostedZones` over the snapshot in
    ``snapshot``, re-read whenever the control plane replaced it."""

    def __init__(self, snapshot: SnapshotFile, *, rng: random.Random | None = None) -> None:
        self._snapshot = snapshot
        self._rng = rng or random.Random()  # noqa: S311 - load spreading, not security
        self._zones = PrivateHostedZones({}, {}, rng=self._rng)

    def refresh(self) -> None:
        data = self._snapshot.changed()
        if data is None:
            return
        try:
            self._zones = zones_from_snapshot(data, self._rng)
        except (KeyError, TypeError, ValueError) as err:
            logger.warning(
                "keeping the last discovery records: %s is malformed: %s", self._snapshot.path, err
            )

    def zones(self) -> list[str]:
        self.refresh()
        return self._zones.zones()

    def answer(self, qname: str, qtype: str) -> Answer:
        self.refresh()
        return self._zones.answer(qname, qtype)


def zones_from_snapshot(data: JSON, rng: random.Random) -> PrivateHostedZones:
    namespaces = {
        str(namespace): {str(name): _decode_service(s) for name, s in services.items()}
        for namespace, services in data["namespaces"].items()
    }
    records = {str(name): ARecord(str(ip), int(ttl)) for name, (ip, ttl) in data["records"].items()}
    aliases = {str(name): _decode_service(s) for name, s in data["aliases"].items()}
    return PrivateHostedZones(namespaces, records, rng=rng, aliases=aliases)
