"""The S3 bucket the load balancers write their access logs to."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3
from constructs import Construct

from fargo.cloud import acknowledgements as ack
from fargo.cloud import policy

# S3 rejects requests below TLS 1.2 on this bucket (besides requiring TLS at all).
MINIMUM_TLS_VERSION = 1.2


class AccessLogBucket(Construct):
    """Encrypted (SSE-S3: the only encryption ALB log delivery supports), private,
    versioned, TLS-only; each load balancer writes under its own prefix, which expires
    after that load balancer's ``access_logs.retention_days``.

    The bucket is retained when its stack is deleted: access logs are audit records.

    Children: ``bucket``.
    """

    def __init__(self, scope: Construct, id: str, *, retention_days: dict[str, int]) -> None:
        super().__init__(scope, id)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            minimum_tls_version=MINIMUM_TLS_VERSION,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id=f"expire-{prefix}",
                    prefix=f"{prefix}/",
                    expiration=cdk.Duration.days(days),
                    noncurrent_version_expiration=cdk.Duration.days(
                        policy.NONCURRENT_VERSION_EXPIRATION_DAYS
                    ),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(
                        policy.ABORT_INCOMPLETE_UPLOAD_DAYS
                    ),
                )
                for prefix, days in sorted(retention_days.items())
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        ack.access_log_bucket(self.bucket)
