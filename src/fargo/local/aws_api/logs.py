"""CloudWatch Logs on the twin's task logs: a log group per service
(``/ecs/<spec>/<service>``), a stream per task named as awslogs names it
(``<service>/<service>/<task id>``), its lines as log events.

An event's id is its stream's, its millisecond and its place among the stream's events of
that millisecond: the same on every call, while the files grow and when the oldest rotated
file goes. ``aws logs tail --follow`` polls FilterLogEvents again from the newest event's
millisecond and drops the ids it has printed, so it prints each line once. The tokens of
GetLogEvents (``f/N``, ``b/N``) and FilterLogEvents (an offset) are positions in the
events a request selects.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fargo.local.aws_api import arns
from fargo.local.aws_api.ecs_shapes import log_group, log_stream
from fargo.local.aws_api.errors import AwsError
from fargo.local.aws_api.paging import page
from fargo.local.aws_api.server import Handler
from fargo.local.logs.streams import LogStream, find_streams, read_stream

if TYPE_CHECKING:
    from fargo.local.runtime import Runtime

INVALID = "InvalidParameterException"
MAX_EVENTS = 10_000  # per answer, as CloudWatch Logs


def millis(moment: datetime | None) -> int:
    return int((moment or datetime.fromtimestamp(0, UTC)).timestamp() * 1000)


class LogsApi:
    service = "logs"
    invalid_parameter = INVALID

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def operations(self) -> Mapping[str, Handler]:
        return {
            "DescribeLogGroups": self.describe_log_groups,
            "DescribeLogStreams": self.describe_log_streams,
            "GetLogEvents": self.get_log_events,
            "FilterLogEvents": self.filter_log_events,
        }

    # -- groups and streams ----------------------------------------------------------------

    def _groups(self) -> dict[str, str]:
        """Log group name → service."""
        return {log_group(self.runtime.spec, s): s for s in self.runtime.spec.services}

    def _streams(self, group: str) -> dict[str, LogStream]:
        service = self._groups().get(group)
        if service is None:
            raise AwsError("ResourceNotFoundException", "The specified log group does not exist.")
        found = find_streams(self.runtime.state_dir / "logs", {service})
        return {log_stream(s.service, s.task_id): s for s in found}

    def describe_log_groups(self, params: dict[str, Any]) -> dict[str, Any]:
        prefix = params.get("logGroupNamePrefix") or ""
        pattern = params.get("logGroupNamePattern")
        groups = [
            g for g in self._groups() if g.startswith(prefix) and (not pattern or pattern in g)
        ]
        items, token = page(
            groups, params.get("nextToken"), params.get("limit"), default=50, invalid=INVALID
        )
        region = self.runtime.spec.region
        return {
            "logGroups": [
                {
                    "logGroupName": g,
                    "creationTime": millis(self.runtime.created_at),
                    "retentionInDays": self.runtime.spec.logging.retention_days,
                    "metricFilterCount": 0,
                    "arn": arns.arn("logs", region, f"log-group:{g}:*"),
                    "logGroupArn": arns.arn("logs", region, f"log-group:{g}"),
                    "storedBytes": sum(_size(s) for s in self._streams(g).values()),
                    "logGroupClass": "STANDARD",
                }
                for g in items
            ],
            "nextToken": token,
        }

    def describe_log_streams(self, params: dict[str, Any]) -> dict[str, Any]:
        group = params.get("logGroupName") or _group_of(params.get("logGroupIdentifier", ""))
        streams = self._streams(group)
        prefix = params.get("logStreamNamePrefix") or ""
        described = [
            self._describe_stream(group, name, stream)
            for name, stream in streams.items()
            if name.startswith(prefix)
        ]
        if params.get("orderBy") == "LastEventTime":
            described.sort(key=lambda s: s.get("lastEventTimestamp", 0))
        if params.get("descending"):
            described.reverse()
        items, token = page(
            described, params.get("nextToken"), params.get("limit"), default=50, invalid=INVALID
        )
        return {"logStreams": items, "nextToken": token}

    def _describe_stream(self, group: str, name: str, stream: LogStream) -> dict[str, Any]:
        times = [e.timestamp for e in read_stream(stream) if e.timestamp is not None]
        region = self.runtime.spec.region
        described: dict[str, Any] = {
            "logStreamName": name,
            "creationTime": millis(times[0]) if times else millis(_mtime(stream)),
            "arn": arns.arn("logs", region, f"log-group:{group}:log-stream:{name}"),
            "storedBytes": _size(stream),
        }
        if times:
            described["firstEventTimestamp"] = millis(times[0])
            described["lastEventTimestamp"] = millis(times[-1])
            described["lastIngestionTime"] = millis(times[-1])
        return described

    # -- events ----------------------------------------------------------------------------

    def get_log_events(self, params: dict[str, Any]) -> dict[str, Any]:
        group = params.get("logGroupName") or _group_of(params.get("logGroupIdentifier", ""))
        stream = self._streams(group).get(params["logStreamName"])
        if stream is None:
            raise AwsError("ResourceNotFoundException", "The specified log stream does not exist.")
        events = [e for _, e in _events(stream, params.get("startTime"), params.get("endTime"))]
        limit = min(params.get("limit") or MAX_EVENTS, MAX_EVENTS)
        token = params.get("nextToken")
        head = params.get("startFromHead", False)
        if token:
            direction, _, position = token.partition("/")
            if direction not in ("f", "b") or not position.isdigit():
                raise AwsError(INVALID, f"The specified nextToken is invalid: {token}")
            head = direction == "f"
            end = start = int(position)
        else:
            start, end = 0, len(events)
        if head:
            end = min(start + limit, len(events))
        else:
            start = max(0, end - limit)
        return {
            "events": events[start:end],
            "nextForwardToken": f"f/{end}",
            "nextBackwardToken": f"b/{start}",
        }

    def filter_log_events(self, params: dict[str, Any]) -> dict[str, Any]:
        group = params.get("logGroupName") or _group_of(params.get("logGroupIdentifier", ""))
        streams = self._streams(group)
        names = params.get("logStreamNames") or list(streams)
        prefix = params.get("logStreamNamePrefix") or ""
        matches = _matcher(params.get("filterPattern") or "")
        found: list[dict[str, Any]] = []
        for name in names:
            if name not in streams or not name.startswith(prefix):
                continue
            for event_id, event in _events(
                streams[name], params.get("startTime"), params.get("endTime")
            ):
                if matches(event["message"]):
                    found.append({"logStreamName": name, "eventId": event_id, **event})
        found.sort(key=lambda e: (e["timestamp"], e["eventId"]))
        limit = min(params.get("limit") or MAX_EVENTS, MAX_EVENTS)
        items, token = page(found, params.get("nextToken"), limit, default=limit, invalid=INVALID)
        return {"events": items, "nextToken": token, "searchedLogStreams": []}


def _events(
    stream: LogStream, start: int | None, end: int | None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event id, OutputLogEvent) of a stream, within [start, end) in epoch ms."""
    prefix = arns.stable_id(stream.task_id, length=8)
    previous, same = None, 0  # the millisecond before, and how many events it had so far
    for event in read_stream(stream):
        stamp = millis(event.timestamp)
        same = same + 1 if stamp == previous else 0
        previous = stamp
        if (start is not None and stamp < start) or (end is not None and stamp >= end):
            continue
        yield (
            f"{prefix}{stamp:015d}{same:06d}",
            {"timestamp": stamp, "message": event.message, "ingestionTime": stamp},
        )


def _matcher(pattern: str) -> Any:
    """CloudWatch Logs' plain filter pattern: every term in the message (a quoted term as is,
    a ``-term`` absent); an empty pattern matches everything."""
    terms = re.findall(r'-?"[^"]*"|\S+', pattern.strip())
    wanted = [t.strip('"') for t in terms if not t.startswith("-")]
    unwanted = [t[1:].strip('"') for t in terms if t.startswith("-")]
    return lambda message: (
        all(w in message for w in wanted) and not any(u in message for u in unwanted)
    )


def _group_of(identifier: str) -> str:
    """A log group's name from its name or ARN."""
    if identifier.startswith("arn:"):
        return identifier.split(":log-group:", 1)[-1].removesuffix(":*")
    return identifier


def _size(stream: LogStream) -> int:
    return sum(p.stat().st_size for p in stream.files() if p.exists())


def _mtime(stream: LogStream) -> datetime:
    try:
        return datetime.fromtimestamp(stream.path.stat().st_mtime, UTC)
    except OSError:
        return datetime.now(UTC)
