"""Named defaults and AWS limits for the spec: one place for policy values.

Numbers follow the AWS documentation for ALB target groups, ECS services,
Fargate task sizes and Cloud Map; the security policy values are ours.
"""

from typing import Final

SPEC_FILE: Final = "fargo.yaml"
SCHEMA_FILE: Final = "fargo.schema.json"

# ALB target group health checks (AWS defaults for HTTP targets of type ip).
HEALTH_CHECK_PATH: Final = "/"
HEALTH_CHECK_INTERVAL_SECONDS: Final = 30
HEALTH_CHECK_TIMEOUT_SECONDS: Final = 5
HEALTHY_THRESHOLD: Final = 5
UNHEALTHY_THRESHOLD: Final = 2
HEALTH_CHECK_MATCHER: Final = "200"
DEREGISTRATION_DELAY_SECONDS: Final = 300

# ALB idle timeout (ELBv2 ``idle_timeout.timeout_seconds``), and a service's HTTP keep-alive,
# which must outlast it: then the load balancer, not the task, closes an idle connection, and
# never reuses one the task has just closed (a 502). AWS advises the same.
IDLE_TIMEOUT_SECONDS: Final = 60
KEEP_ALIVE_SECONDS: Final = 75

# ECS services: the most tasks a service's desired count may ask for.
MAX_DESIRED_COUNT: Final = 1000

# ECS rolling deployment.
MIN_HEALTHY_PERCENT: Final = 100
MAX_PERCENT: Final = 200
STOP_TIMEOUT_SECONDS: Final = 30
# ECS healthCheckGracePeriodSeconds: load balancer health checks of a task that has just
# started are not acted on for this long (the cloud's services and the twin's scheduler).
HEALTH_CHECK_GRACE_SECONDS: Final = 60

# Fargate task size.
TASK_CPU: Final = 256
TASK_MEMORY: Final = 512

# Cloud Map.
DISCOVERY_TTL_SECONDS: Final = 60
MULTIVALUE_MAX_RECORDS: Final = 8

# Load balancer security: TLS 1.2+ with TLS 1.3 (the reference used ELBSecurityPolicy-2016-08).
TLS_POLICY: Final = "ELBSecurityPolicy-TLS13-1-2-2021-06"
ALLOWED_TLS_POLICIES: Final = frozenset(
    {
        "ELBSecurityPolicy-TLS13-1-2-2021-06",
        "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
        "ELBSecurityPolicy-TLS13-1-3-2021-06",
        "ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06",
        "ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06",
        "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04",
        "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
        "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-3-PQ-2025-09",
    }
)

LOG_RETENTION_DAYS: Final = 30
# `tracing:` when the spec says nothing. Off: tracing adds a daemon sidecar to every task
# (its CPU and memory come out of the task's) and X-Ray bills per trace recorded; the
# services' own cost is small (docs/benchmarks.md, "Tracing"). The reference spec turns
# it on, as the original system traced every service.
TRACING: Final = "off"
# The X-Ray daemon sidecar (cloud): AWS's image, and its share of the task.
XRAY_DAEMON_IMAGE: Final = "public.ecr.aws/xray/aws-xray-daemon:3.3.14"
XRAY_DAEMON_PORT: Final = 2000
XRAY_DAEMON_CPU_UNITS: Final = 16
XRAY_DAEMON_MEMORY_RESERVATION_MIB: Final = 32
# CloudWatch Logs accepts only these retention periods (days).
CLOUDWATCH_RETENTION_DAYS: Final = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
)  # fmt: skip
ECR_MAX_IMAGES: Final = 20

# VPC endpoints a spec may name, as AWS names them: ``com.amazonaws.<region>.<name>``. The
# ones a Fargate task needs to start come first; the rest are the AWS APIs an application
# on ECS most often calls. s3 and dynamodb are gateway endpoints, the others interface ones.
VPC_ENDPOINT_NAMES: Final = (
    "ecr.api", "ecr.dkr", "s3", "logs",
    "secretsmanager", "ssm", "ssmmessages", "kms", "sts", "monitoring", "xray", "sqs", "sns",
    "events", "dynamodb", "ecs", "ecs-agent", "ecs-telemetry", "elasticloadbalancing",
    "execute-api", "servicediscovery", "application-autoscaling",
)  # fmt: skip

# ALB limits.
PATH_PATTERN_MAX_LENGTH: Final = 128
RULE_PRIORITY_MIN: Final = 1
RULE_PRIORITY_MAX: Final = 50000
# The ALB user guide ("Condition types for listener rules", "Quotas"): up to three match
# evaluations (values) per condition, five per rule, and five wildcards per rule.
CONDITION_MAX_VALUES: Final = 3
RULE_MAX_CONDITION_VALUES: Final = 5
RULE_MAX_WILDCARDS: Final = 5

# VPC and subnet CIDR blocks: AWS takes prefixes from /16 (65,536 addresses) to /28 (16).
CIDR_PREFIX_MIN: Final = 16
CIDR_PREFIX_MAX: Final = 28

# Fargate CPU units → memory (MiB) it offers.
FARGATE_MEMORY_BY_CPU: Final[dict[int, tuple[int, ...]]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}

# The local twin runs health checks on a faster clock by default (``--aws-timings`` for 1.0).
LOCAL_TIME_SCALE: Final = 0.1
