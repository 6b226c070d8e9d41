"""CloudWatch's datapoint period, on the twin's clock.

    period_seconds(TwinClock(0.1))    # 6.0: one datapoint every 6 s
    period_seconds(TwinClock.aws())   # 60.0: `fargo up --aws-timings`

The metrics the twin computes are one-minute metrics on AWS (AWS/ECS,
AWS/ApplicationELB, Container Insights), and target tracking evaluates one datapoint a
minute. The twin scales that minute like every other interval (`fargo.local.clock`), so
the metrics `fargo top` shows and the datapoints Application Auto Scaling evaluates
come at the same pace.
"""

from __future__ import annotations

from fargo.local.clock import TwinClock

PERIOD_SECONDS = 60.0  # CloudWatch's period of these metrics on AWS
# Rounded to the millisecond: 60 × 0.1 is 6.000000000000001 in floating point.
_DIGITS = 3


def period_seconds(clock: TwinClock) -> float:
    """Seconds one datapoint covers on ``clock`` (never below a millisecond)."""
    return max(10.0**-_DIGITS, round(clock.interval(PERIOD_SECONDS), _DIGITS))
