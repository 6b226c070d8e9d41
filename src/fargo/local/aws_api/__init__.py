"""The twin's AWS-compatible endpoint: boto3, the AWS CLI and SDKs against the running twin.

    server = AwsApiServer(apis=[EcsApi(runtime), Elbv2Api(runtime), ...])   # a runtime part
    await server.start(); server.url   # "http://127.0.0.1:4566"

`wire` speaks the wire protocols (JSON 1.1, the query protocol with XML answers, Smithy
RPC v2 CBOR) from botocore's own service models; `server` routes a request to its service
(by ``X-Amz-Target``, the RPC v2 path, or the SigV4 credential scope) and operation; one
module per service (`ecs`, `elbv2`, `servicediscovery`, `logs`, `ecr`, `autoscaling`)
answers from the twin's live state. docs/aws-api.md lists what is supported.
"""
