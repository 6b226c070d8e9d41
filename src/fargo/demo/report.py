"""``fargo demo``'s outcome: a `Point` per demonstration point, as text or as JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Point:
    number: int
    title: str
    status: str = "fail"  # pass | fail | skipped
    evidence: dict[str, Any] = field(default_factory=dict)

    def done(self, passed: bool, **evidence: Any) -> Point:
        self.status = "pass" if passed else "fail"
        self.evidence.update(evidence)
        return self

    def skip(self, reason: str) -> Point:
        self.status = "skipped"
        self.evidence["reason"] = reason
        return self


def render(points: list[Point]) -> str:
    lines = []
    for point in points:
        lines.append(f"{point.number}. [{point.status.upper()}] {point.title}")
        for key, value in point.evidence.items():
            if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                lines.append(f"     {key}:")
                lines += [f"       - {_one_line(item)}" for item in value]
            else:
                lines.append(f"     {key}: {value}")
    passed = sum(p.status == "pass" for p in points)
    lines.append(
        f"{passed} of {len(points)} points pass"
        f" ({sum(p.status == 'skipped' for p in points)} skipped)"
    )
    return "\n".join(lines)


def _one_line(item: dict[str, Any]) -> str:
    return ", ".join(f"{key}: {value}" for key, value in item.items())


def as_json(points: list[Point]) -> list[dict[str, Any]]:
    return [asdict(p) for p in points]
