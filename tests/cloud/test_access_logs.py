"""The access-log bucket: encrypted, private, TLS only, versioned, expiring per prefix."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import assertions

from fargo.cloud.access_logs import AccessLogBucket


def bucket(template: assertions.Template) -> dict[str, Any]:
    (found,) = template.find_resources("AWS::S3::Bucket").values()
    return found


def test_bucket_is_encrypted_private_and_versioned(app_template: assertions.Template) -> None:
    props = bucket(app_template)["Properties"]
    assert props["BucketEncryption"] == {
        "ServerSideEncryptionConfiguration": [
            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
        ]
    }
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}


def test_bucket_policy_denies_requests_without_tls_1_2(app_template: assertions.Template) -> None:
    (policy,) = app_template.find_resources("AWS::S3::BucketPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    conditions = [s["Condition"] for s in statements if s["Effect"] == "Deny"]
    assert {"Bool": {"aws:SecureTransport": "false"}} in conditions
    assert {"NumericLessThan": {"s3:TlsVersion": 1.2}} in conditions


def test_bucket_policy_lets_elb_log_delivery_write(app_template: assertions.Template) -> None:
    (policy,) = app_template.find_resources("AWS::S3::BucketPolicy").values()
    writes = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Allow" and "s3:PutObject" in str(s["Action"])
    ]
    assert writes


def test_each_prefix_expires_after_its_retention(app_template: assertions.Template) -> None:
    rules = bucket(app_template)["Properties"]["LifecycleConfiguration"]["Rules"]
    assert {(r["Prefix"], r["ExpirationInDays"]) for r in rules} == {
        ("public/", 90),
        ("internal/", 90),
    }
    assert all(r["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1} for r in rules)


def test_bucket_is_kept_when_the_stack_goes(app_template: assertions.Template) -> None:
    assert bucket(app_template)["DeletionPolicy"] == "Retain"


def test_retention_per_load_balancer() -> None:
    stack = cdk.Stack()
    AccessLogBucket(stack, "Logs", retention_days={"edge": 7, "inner": 400})
    rules = bucket(assertions.Template.from_stack(stack))["Properties"]["LifecycleConfiguration"][
        "Rules"
    ]
    assert {(r["Prefix"], r["ExpirationInDays"]) for r in rules} == {("edge/", 7), ("inner/", 400)}
