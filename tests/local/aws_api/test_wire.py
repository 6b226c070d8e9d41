"""The wire protocols against botocore's own serializers (requests) and parsers (answers):
what a real client sends is read back exactly, and what the endpoint writes parses back
into what the handler answered."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import botocore
import pytest
from botocore import parsers, serialize

from fargo.local.aws_api import wire
from fargo.local.aws_api.errors import AwsError
from fargo.local.aws_api.models import service_model

MOMENT = datetime(2026, 12, 3, 4, 5, 6, 789000, tzinfo=UTC)

# botocore learnt Cloud Map's RPC v2 CBOR protocol after 1.35, which checkov's pin of boto3
# can hold the test environment at; the twin then answers Cloud Map in JSON 1.1 only.
needs_cbor = pytest.mark.skipif(
    "smithy-rpc-v2-cbor" not in serialize.SERIALIZERS,
    reason=f"botocore {botocore.__version__} has no RPC v2 CBOR protocol",
)


def parsed(protocol: str, service: str, operation: str, status: int, headers: dict[str, str],
           body: bytes) -> dict[str, Any]:  # fmt: skip
    """What botocore makes of an answer, as a client does."""
    model = service_model(service).operation_model(operation)
    response = {"status_code": status, "headers": headers, "body": body}
    result: dict[str, Any] = parsers.create_parser(protocol).parse(response, model.output_shape)
    result.pop("ResponseMetadata", None)
    return result


def test_a_query_request_with_nested_lists_reads_back_as_sent() -> None:
    params = {
        "RuleArn": "arn:aws:elasticloadbalancing:eu-west-1:000000000000:listener-rule/app/x/1/2/3",
        "Conditions": [
            {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/a/*", "/b"]}},
            {"Field": "http-header",
             "HttpHeaderConfig": {"HttpHeaderName": "X-Canary", "Values": ["on"]}},
        ],
        "Actions": [
            {"Type": "fixed-response", "Order": 1,
             "FixedResponseConfig": {"StatusCode": "418", "MessageBody": "teapot"}},
        ],
    }  # fmt: skip
    operation = service_model("elbv2").operation_model("ModifyRule")
    request = serialize.create_serializer("query").serialize_to_request(params, operation)
    form = dict(parse_qsl(urlencode(request["body"]), keep_blank_values=True))
    assert form["Action"] == "ModifyRule"
    assert wire.decode(wire.QUERY, b"", form, operation) == params


def test_a_query_request_with_an_empty_list_reads_back_empty() -> None:
    operation = service_model("elbv2").operation_model("DescribeTargetGroups")
    params = {"Names": [], "PageSize": 5}
    request = serialize.create_serializer("query").serialize_to_request(params, operation)
    form = dict(parse_qsl(urlencode(request["body"]), keep_blank_values=True))
    assert wire.decode(wire.QUERY, b"", form, operation) == params


def test_an_xml_answer_parses_back_with_members_lists_and_timestamps() -> None:
    answer = {
        "LoadBalancers": [
            {
                "LoadBalancerArn": "arn:lb",
                "DNSName": "edge.example",
                "CreatedTime": MOMENT,
                "Scheme": "internet-facing",
                "State": {"Code": "active"},
                "AvailabilityZones": [{"ZoneName": "eu-west-1a", "SubnetId": "subnet-1"}],
                "SecurityGroups": ["sg-1", "sg-2"],
            }
        ],
        "NextMarker": "1",
    }
    operation = service_model("elbv2").operation_model("DescribeLoadBalancers")
    status, headers, body = wire.encode(wire.QUERY, operation, answer, "rid")
    assert body.startswith(b"<DescribeLoadBalancersResponse")
    assert parsed("query", "elbv2", "DescribeLoadBalancers", status, headers, body) == answer


def test_a_json_answer_parses_back_with_epoch_timestamps() -> None:
    answer = {
        "services": [{"serviceName": "web", "createdAt": MOMENT, "desiredCount": 2,
                      "deployments": [{"id": "ecs-svc/1", "rolloutState": "COMPLETED"}]}],
        "failures": [{"arn": "x", "reason": "MISSING"}],
    }  # fmt: skip
    operation = service_model("ecs").operation_model("DescribeServices")
    status, headers, body = wire.encode(wire.JSON, operation, answer, "rid")
    assert headers["Content-Type"] == "application/x-amz-json-1.1"
    assert parsed("json", "ecs", "DescribeServices", status, headers, body) == answer


@needs_cbor
def test_a_cbor_request_and_answer_round_trip_through_botocore() -> None:
    operation = service_model("servicediscovery").operation_model("DiscoverInstances")
    params = {"NamespaceName": "second.internal", "ServiceName": "api", "MaxResults": 5}
    request = serialize.create_serializer("smithy-rpc-v2-cbor").serialize_to_request(
        params, operation
    )
    assert request["url_path"] == "/service/Route53AutoNaming_v20170314/operation/DiscoverInstances"
    assert wire.decode(wire.CBOR, request["body"], {}, operation) == params
    answer = {
        "Instances": [{"InstanceId": "i1", "HealthStatus": "HEALTHY",
                       "Attributes": {"AWS_INSTANCE_IPV4": "10.0.0.1"}}],
        "InstancesRevision": 1,
    }  # fmt: skip
    status, headers, body = wire.encode(wire.CBOR, operation, answer, "rid")
    assert headers["smithy-protocol"] == "rpc-v2-cbor"
    assert parsed("smithy-rpc-v2-cbor", "servicediscovery", "DiscoverInstances", status,
                  headers, body) == answer  # fmt: skip


@needs_cbor
def test_a_cbor_timestamp_parses_back() -> None:
    operation = service_model("servicediscovery").operation_model("GetNamespace")
    answer = {"Namespace": {"Id": "ns-1", "Name": "x", "CreateDate": MOMENT}}
    status, headers, body = wire.encode(wire.CBOR, operation, answer, "rid")
    assert parsed("smithy-rpc-v2-cbor", "servicediscovery", "GetNamespace", status, headers,
                  body) == answer  # fmt: skip


@pytest.mark.parametrize(
    ("protocol", "service"),
    [
        (wire.JSON, "ecs"),
        (wire.QUERY, "elbv2"),
        pytest.param(wire.CBOR, "servicediscovery", marks=needs_cbor),
    ],
)
def test_errors_parse_back_with_their_code_and_message(protocol: str, service: str) -> None:
    model = service_model(service)
    error = AwsError("TargetGroupNotFound", "no target group 'x'")
    status, headers, body = wire.encode_error(protocol, model, error, "rid")
    response = {"status_code": status, "headers": headers, "body": body}
    operation = next(iter(model.operation_names))
    shape = model.operation_model(operation).output_shape
    result = parsers.create_parser(protocol).parse(response, shape)
    assert status == 400
    assert result["Error"]["Code"] == "TargetGroupNotFound"
    assert result["Error"]["Message"] == "no target group 'x'"


def test_an_answer_with_a_member_the_shape_lacks_is_refused() -> None:
    operation = service_model("ecs").operation_model("ListClusters")
    with pytest.raises(ValueError, match="no member"):
        wire.encode(wire.JSON, operation, {"clusterArns": [], "bogus": 1}, "rid")


def test_a_body_that_is_not_json_is_a_serialization_error() -> None:
    operation = service_model("ecs").operation_model("ListClusters")
    with pytest.raises(AwsError) as raised:
        wire.decode(wire.JSON, b"{not json", {}, operation)
    assert raised.value.code == "SerializationException"
