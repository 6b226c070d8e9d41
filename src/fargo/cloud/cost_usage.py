"""What a month of use is assumed to be, for `fargo cost`: each assumption named, with its reason.

AWS bills part of a deployment by the hour (tasks, load balancers, NAT gateways, public
addresses, endpoints), which follows from the spec alone, and part by use (load balancer
capacity units, NAT data, logs, DNS queries), which needs a guess at the traffic. The
guesses are the constants below; ``docs/cloud.md`` ("Cost") lists them. Only the number of
requests a month is a command-line option (``--requests-per-month``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

GB: Final = 1024**3  # AWS bills data by the GB of 2^30 bytes

DEFAULT_REQUESTS_PER_MONTH: Final = 1_000_000

# One load balancer capacity unit (LCU) covers, for an hour, any one of these (ELB pricing
# page, Application Load Balancer); an hour is billed on the dimension that uses most.
LCU_NEW_CONNECTIONS_PER_SECOND: Final = 25
LCU_ACTIVE_CONNECTIONS_PER_MINUTE: Final = 3_000
LCU_PROCESSED_GB_PER_HOUR: Final = 1.0
LCU_RULE_EVALUATIONS_PER_SECOND: Final = 1_000
LCU_FREE_RULES: Final = 10  # rule evaluations count only beyond the first ten rules

# Traffic, spread evenly over the month. Every load balancer is assumed to carry every
# request: right for the internet-facing one, an upper bound for an internal one.
REQUESTS_PER_CONNECTION: Final = 1  # no keep-alive: each request opens a connection (upper bound)
BYTES_PER_REQUEST: Final = 10_000  # request and response with headers: the page and API answers

# Image pulls through the NAT gateway: Fargate keeps no image cache, so every task start pulls.
IMAGE_PULL_GB: Final = 0.08  # a compressed python:3.12-slim service image with its venv
TASK_STARTS_PER_MONTH: Final = 30  # each task replaced once a day (a deployment a day)

# Application logs (awslogs → CloudWatch Logs, through the NAT gateway or the Logs endpoint).
# A JSON access-log line is ~140 bytes, plus 26 bytes CloudWatch counts per event.
LOG_BYTES_PER_REQUEST: Final = 400  # the task that answers and the one it calls: two lines
LOG_BYTES_PER_TASK_HOUR: Final = 60_000  # health checks: two zones' ALB checks + ECS's, each 30 s

# VPC flow logs (all traffic, to CloudWatch Logs as vended logs).
FLOW_LOG_RECORD_BYTES: Final = 150
FLOW_LOG_RECORDS_PER_REQUEST: Final = 8  # each direction at the load balancer's and tasks' ENIs
FLOW_LOG_RECORDS_PER_TASK_HOUR: Final = 480  # ALB health checks from two zones every 30 s

# Container Insights (standard): custom metrics per dimension set (the ECS Container Insights
# metric list: ten resource metrics at each of cluster, service and task definition family,
# plus counts), and one performance log event per task and container a minute.
CONTAINER_INSIGHTS_METRICS_PER_CLUSTER: Final = 12
CONTAINER_INSIGHTS_METRICS_PER_SERVICE: Final = 15
CONTAINER_INSIGHTS_METRICS_PER_TASK_DEFINITION_FAMILY: Final = 10
CONTAINER_INSIGHTS_BYTES_PER_TASK_HOUR: Final = 120_000

# Cloud Map: each request may resolve one discovery name (an upper bound: resolvers cache
# answers for the record's TTL).
DISCOVERY_QUERIES_PER_REQUEST: Final = 1.0

# X-Ray (spec: tracing: xray): a request through the public load balancer is one trace (the
# services it calls add segments to it). The services sample by X-Ray's default rule: one
# trace a second (the reservoir, across the account), then 5 % of the other requests.
XRAY_RESERVOIR_PER_SECOND: Final = 1
XRAY_FIXED_RATE: Final = 0.05


@dataclass(frozen=True)
class Traffic:
    """A month's requests, spread evenly over ``hours`` hours."""

    requests: int
    hours: float

    @property
    def requests_per_second(self) -> float:
        return self.requests / (self.hours * 3600)

    def lcus(self, rules: int) -> float:
        """Load balancer capacity units used each hour by a load balancer with ``rules`` rules."""
        new_per_second = self.requests_per_second / REQUESTS_PER_CONNECTION
        active_per_minute = new_per_second * 60  # a connection lasts well under a minute
        gb_per_hour = self.requests * BYTES_PER_REQUEST / GB / self.hours
        evaluations = self.requests_per_second * max(0, rules - LCU_FREE_RULES)
        return max(
            new_per_second / LCU_NEW_CONNECTIONS_PER_SECOND,
            active_per_minute / LCU_ACTIVE_CONNECTIONS_PER_MINUTE,
            gb_per_hour / LCU_PROCESSED_GB_PER_HOUR,
            evaluations / LCU_RULE_EVALUATIONS_PER_SECOND,
        )

    def xray_traces(self) -> float:
        """Traces recorded a month under X-Ray's default sampling rule."""
        reservoir = min(float(self.requests), XRAY_RESERVOIR_PER_SECOND * self.hours * 3600)
        return reservoir + XRAY_FIXED_RATE * (self.requests - reservoir)

    def application_log_gb(self, tasks: float) -> float:
        """GB of application logs a month from ``tasks`` running tasks."""
        task_hours = tasks * self.hours
        return (self.requests * LOG_BYTES_PER_REQUEST + task_hours * LOG_BYTES_PER_TASK_HOUR) / GB

    def flow_log_gb(self, tasks: float) -> float:
        """GB of VPC flow log records a month."""
        records = (
            self.requests * FLOW_LOG_RECORDS_PER_REQUEST
            + tasks * self.hours * FLOW_LOG_RECORDS_PER_TASK_HOUR
        )
        return records * FLOW_LOG_RECORD_BYTES / GB

    def container_insights_gb(self, tasks: float) -> float:
        """GB of Container Insights performance log events a month."""
        return tasks * self.hours * CONTAINER_INSIGHTS_BYTES_PER_TASK_HOUR / GB

    def discovery_queries(self) -> float:
        return self.requests * DISCOVERY_QUERIES_PER_REQUEST


def image_pull_gb(tasks: float) -> float:
    """GB of images pulled a month by ``tasks`` running tasks."""
    return tasks * TASK_STARTS_PER_MONTH * IMAGE_PULL_GB


def stored_gb(ingested_gb_per_month: float, retention_days: int) -> float:
    """GB held in a log group once it keeps ``retention_days`` of logs (uncompressed: an upper
    bound, CloudWatch bills storage after compression)."""
    return ingested_gb_per_month * retention_days / 30


def container_insights_metrics(services: int) -> int:
    """Custom metrics of a cluster with ``services`` services (a task definition family each)."""
    return CONTAINER_INSIGHTS_METRICS_PER_CLUSTER + services * (
        CONTAINER_INSIGHTS_METRICS_PER_SERVICE
        + CONTAINER_INSIGHTS_METRICS_PER_TASK_DEFINITION_FAMILY
    )
