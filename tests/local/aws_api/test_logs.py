"""CloudWatch Logs' event ids on real task log files, written and rotated by the log
router's own stream writer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

from fargo.local.aws_api.logs import LogsApi
from fargo.local.logs.lines import stamp
from fargo.local.logs.router import LogStream
from fargo.spec import load_spec

if TYPE_CHECKING:
    from fargo.local.runtime import Runtime

ROOT = Path(__file__).resolve().parents[3]
GROUP = "/ecs/awsapi/web-a"  # tests/e2e/aws_api.yaml's web-a
START = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def logs_api(state_dir: Path) -> LogsApi:
    runtime = SimpleNamespace(spec=load_spec(ROOT / "tests/e2e/aws_api.yaml"), state_dir=state_dir)
    return LogsApi(cast("Runtime", runtime))


def write(stream: LogStream, numbers: range) -> None:
    """Lines ``line N``, two to a millisecond, as the router stamps them."""
    for n in numbers:
        stream.write(stamp(START + timedelta(milliseconds=n // 2)) + f"line {n:02d}\n".encode())


def ids(api: LogsApi, **params: Any) -> dict[str, str]:
    """Message → event id of the group's events."""
    events = api.filter_log_events({"logGroupName": GROUP, **params})["events"]
    return {e["message"]: e["eventId"] for e in events}


def test_event_ids_stay_when_the_oldest_rotated_file_is_deleted(tmp_path: Path) -> None:
    # 37-byte lines, 8 to a file; one rotated file kept, the one before it deleted
    stream = LogStream(tmp_path / "logs/web-a/0123456789abcdef.log", max_bytes=300, keep=1)
    api = logs_api(tmp_path)
    write(stream, range(12))  # .log.1: lines 0-7, .log: 8-11
    before = ids(api)
    assert len(before) == len(set(before.values())) == 12
    write(stream, range(12, 20))  # rotated: .log.1 is lines 8-15 (0-7 are gone), .log 16-19
    after = ids(api)
    assert sorted(after) == [f"line {n:02d}" for n in range(8, 20)]
    assert {m: after[m] for m in before if m in after} == {
        m: before[m] for m in after if m in before
    }
    assert len(set(after.values())) == len(after)


def test_polling_from_the_newest_millisecond_finds_the_same_ids(tmp_path: Path) -> None:
    # `aws logs tail --follow`: again from the newest event's millisecond, dropping the ids
    # it has printed: the events of that millisecond come back with the same ids
    stream = LogStream(tmp_path / "logs/web-a/0123456789abcdef.log", max_bytes=10_000, keep=1)
    api = logs_api(tmp_path)
    write(stream, range(6))
    first = ids(api)
    newest = int((START + timedelta(milliseconds=2)).timestamp() * 1000)
    write(stream, range(6, 8))
    again = ids(api, startTime=newest)
    assert list(again) == ["line 04", "line 05", "line 06", "line 07"]
    assert {m: again[m] for m in ("line 04", "line 05")} == {
        m: first[m] for m in ("line 04", "line 05")
    }
