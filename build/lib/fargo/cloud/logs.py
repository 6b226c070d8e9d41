"""CloudWatch log groups with the spec's retention."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_logs as logs
from constructs import Construct

from fargo.cloud import acknowledgements as ack


def log_group(scope: Construct, id: str, *, retention_days: int) -> logs.LogGroup:
    """A log group that keeps events ``retention_days`` and goes away with its stack.

    The spec validates the period against the values CloudWatch accepts; ``RetentionDays``
    names them rather than numbering them, so the number is set on the L1 resource.
    """
    group = logs.LogGroup(scope, id, removal_policy=cdk.RemovalPolicy.DESTROY)
    cfn = group.node.default_child
    assert isinstance(cfn, logs.CfnLogGroup)
    cfn.retention_in_days = retention_days
    ack.log_group(group)
    return group
