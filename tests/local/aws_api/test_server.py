"""The endpoint's routing, errors and port, with boto3 as the client on real sockets; the
services behind it are small stand-ins here (the e2e tests use the twin's own)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Mapping
from typing import Any

import boto3
import httpx
import pytest
from botocore import parsers, serialize
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError
from tests.local.aws_api.test_wire import needs_cbor

from fargo.local.aws_api.models import service_model
from fargo.local.aws_api.server import AwsApiServer, Handler


class StandInEcs:
    service = "ecs"
    invalid_parameter = "InvalidParameterException"

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def operations(self) -> Mapping[str, Handler]:
        return {"ListClusters": self.list_clusters, "DescribeClusters": self.broken}

    async def list_clusters(self, params: dict[str, Any]) -> dict[str, Any]:
        self.seen.append(params)
        return {"clusterArns": ["arn:aws:ecs:eu-west-1:000000000000:cluster/c"]}

    def broken(self, params: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("a fault in the twin")


class StandInElbv2:
    service = "elbv2"
    invalid_parameter = "ValidationError"

    def operations(self) -> Mapping[str, Handler]:
        return {"DescribeTags": self.describe_tags}

    def describe_tags(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "TagDescriptions": [
                {"ResourceArn": arn, "Tags": [{"Key": "k", "Value": "v"}]}
                for arn in params["ResourceArns"]
            ]
        }


class StandInCloudMap:
    service = "servicediscovery"
    invalid_parameter = "InvalidInput"

    def operations(self) -> Mapping[str, Handler]:
        return {"DiscoverInstances": self.discover_instances}

    def discover_instances(self, params: dict[str, Any]) -> dict[str, Any]:
        instance = {
            "InstanceId": "i-1",
            "NamespaceName": params["NamespaceName"],
            "ServiceName": params["ServiceName"],
            "HealthStatus": "HEALTHY",
        }
        return {"Instances": [instance], "InstancesRevision": 1}


def client(server: AwsApiServer, service: str, **config: Any) -> BaseClient:
    assert server.url.startswith("http://127.0.0.1:")  # never AWS's own endpoints
    session = boto3.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name="eu-west-1"
    )
    options = Config(retries={"max_attempts": 1}, **config)
    return session.client(service, endpoint_url=server.url, config=options)


@pytest.fixture
async def server() -> AsyncIterator[AwsApiServer]:
    running = AwsApiServer([StandInEcs(), StandInElbv2(), StandInCloudMap()], port=0)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


async def call(function: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(function, **kwargs)


async def test_json_requests_are_routed_by_their_target_header(server: AwsApiServer) -> None:
    answer = await call(client(server, "ecs").list_clusters)
    assert answer["clusterArns"] == ["arn:aws:ecs:eu-west-1:000000000000:cluster/c"]


async def test_query_requests_are_routed_by_their_credential_scope(server: AwsApiServer) -> None:
    answer = await call(client(server, "elbv2").describe_tags, ResourceArns=["arn:1", "arn:2"])
    assert [d["ResourceArn"] for d in answer["TagDescriptions"]] == ["arn:1", "arn:2"]


@pytest.mark.parametrize(
    ("service", "operation", "kwargs", "code"),
    [
        ("ecs", "create_cluster", {}, "UnknownOperationException"),
        ("elbv2", "describe_load_balancers", {}, "InvalidAction"),
    ],
)
async def test_an_operation_the_twin_lacks_is_named_in_the_error(
    server: AwsApiServer, service: str, operation: str, kwargs: dict[str, Any], code: str
) -> None:
    with pytest.raises(ClientError) as raised:
        await call(getattr(client(server, service), operation), **kwargs)
    error = raised.value.response["Error"]
    assert error["Code"] == code
    assert raised.value.operation_name in error["Message"]
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


async def test_a_service_the_twin_lacks_is_an_error_not_a_hang(server: AwsApiServer) -> None:
    with pytest.raises(ClientError) as raised:
        await call(client(server, "logs").describe_log_groups)
    assert raised.value.response["Error"]["Code"] == "UnrecognizedClientException"


async def test_a_fault_in_a_handler_is_an_internal_failure_without_a_traceback(
    server: AwsApiServer,
) -> None:
    with pytest.raises(ClientError) as raised:
        await call(client(server, "ecs").describe_clusters)
    assert raised.value.response["Error"]["Code"] == "InternalFailure"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert "Traceback" not in raised.value.response["Error"]["Message"]


async def test_a_malformed_request_gets_the_services_validation_error(
    server: AwsApiServer,
) -> None:
    unchecked = client(server, "elbv2", parameter_validation=False)
    with pytest.raises(ClientError) as raised:
        await call(unchecked.describe_tags)  # ResourceArns is required
    error = raised.value.response["Error"]
    assert error["Code"] == "ValidationError"
    assert "ResourceArns" in error["Message"]


async def test_a_port_in_use_is_left_alone_for_a_free_one() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        running = AwsApiServer([StandInEcs()], port=taken)
        await running.start()
        try:
            assert running.url.startswith("http://127.0.0.1:")
            assert not running.url.endswith(f":{taken}")
            answer = await call(client(running, "ecs").list_clusters)
            assert answer["clusterArns"]
        finally:
            await running.stop()
    assert not running.started


@needs_cbor
async def test_rpc_v2_cbor_requests_are_routed_by_their_path(server: AwsApiServer) -> None:
    # boto3 may pick JSON for Cloud Map; newer SDKs send CBOR: botocore's own CBOR
    # serializer and parser on the two ends, the endpoint between them.
    operation = service_model("servicediscovery").operation_model("DiscoverInstances")
    params = {"NamespaceName": "shop.internal", "ServiceName": "api"}
    request = serialize.create_serializer("smithy-rpc-v2-cbor").serialize_to_request(
        params, operation
    )
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.post(
            request["url_path"], content=request["body"], headers=dict(request["headers"])
        )
    assert response.headers["smithy-protocol"] == "rpc-v2-cbor"
    answer = parsers.create_parser("smithy-rpc-v2-cbor").parse(
        {"status_code": response.status_code, "headers": response.headers,
         "body": response.content},
        operation.output_shape,
    )  # fmt: skip
    assert answer["Instances"][0]["NamespaceName"] == "shop.internal"


async def test_a_host_prefixed_request_through_the_endpoint_as_proxy_is_answered(
    server: AwsApiServer,
) -> None:
    # DiscoverInstances goes to data-127.0.0.1:PORT (no resolver knows that name) when the
    # client cannot turn host prefixes off, as the AWS CLI v2 of Debian 12: with the
    # endpoint as its HTTP proxy, the request reaches the endpoint, in proxy form.
    sd = client(server, "servicediscovery", proxies={"http": server.url})
    sent: list[str] = []
    sd.meta.events.register("before-send", lambda request, **_: sent.append(request.url))
    answer = await call(sd.discover_instances, NamespaceName="shop.internal", ServiceName="api")
    assert answer["Instances"][0]["NamespaceName"] == "shop.internal"
    assert sent == [server.url.replace("http://", "http://data-") + "/"]


@pytest.mark.parametrize(
    "authority",
    ["ecs.eu-west-1.amazonaws.com", "ecs.eu-west-1.amazonaws.com:{port}", "127.0.0.1:1",
     "data-example.com:{port}"],
)  # fmt: skip
async def test_a_request_in_proxy_form_for_another_host_is_refused(
    server: AwsApiServer, authority: str
) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    target = f"http://{authority.format(port=port)}/"
    ecs = next(a for a in server.apis if isinstance(a, StandInEcs))
    reader, writer = await asyncio.open_connection("127.0.0.1", port)  # the endpoint only
    try:
        writer.write(
            f"POST {target} HTTP/1.1\r\nHost: x\r\n"
            "X-Amz-Target: AmazonEC2ContainerServiceV20141113.ListClusters\r\n"
            "Content-Type: application/x-amz-json-1.1\r\nContent-Length: 2\r\n"
            "Connection: close\r\n\r\n{}".encode()
        )
        await writer.drain()
        answer = await reader.read()
    finally:
        writer.close()
    head, _, body = answer.decode().partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 421 ")
    error = json.loads(body)
    assert error["__type"] == "MisdirectedRequest"
    assert f"not for {authority.format(port=port).split(':')[0]}" in error["message"]
    assert ecs.seen == []
