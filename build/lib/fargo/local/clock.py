"""The twin's clock: every AWS interval the twin honours, on one time scale.

    clock = TwinClock(0.1)            # `fargo up` (ten times faster than AWS)
    clock.interval(30)                # 3.0: a 30 s health check interval
    clock.timeout(5, floor=2)         # 2.0: timeouts never drop below what a busy machine needs
    clock.backoff(failed_starts=3)    # 1.0: the third failed start in a row waits longer
    TwinClock.aws()                   # `fargo up --aws-timings`: AWS's own numbers

Health checks (ALB and container), the ECS health check grace period, the
deregistration delay and the crash back-off all read their seconds here, so one
option changes them together.
"""

from __future__ import annotations

from dataclasses import dataclass

from fargo.spec.defaults import LOCAL_TIME_SCALE

# ECS backs off restarting tasks that fail to start; these are its numbers on AWS's clock.
BACKOFF_FIRST_SECONDS = 2.5
BACKOFF_CAP_SECONDS = 300.0


@dataclass(frozen=True)
class TwinClock:
    """AWS seconds → the twin's seconds."""

    time_scale: float = LOCAL_TIME_SCALE

    def __post_init__(self) -> None:
        if not self.time_scale > 0:
            raise ValueError(f"the time scale must be above 0, not {self.time_scale}")

    @classmethod
    def aws(cls) -> TwinClock:
        """AWS's own timings (scale 1)."""
        return cls(1.0)

    def interval(self, aws_seconds: float) -> float:
        """An interval, period or delay of AWS's, on this clock."""
        return aws_seconds * self.time_scale

    def timeout(self, aws_seconds: float, *, floor: float) -> float:
        """A timeout on this clock, but never below ``floor`` (nor above AWS's own)."""
        return max(aws_seconds * self.time_scale, min(aws_seconds, floor))

    def backoff(self, failed_starts: int) -> float:
        """Seconds before the next start after ``failed_starts`` failures in a row."""
        if failed_starts <= 0:
            return 0.0
        aws = min(BACKOFF_CAP_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** (failed_starts - 1))
        return self.interval(aws)
