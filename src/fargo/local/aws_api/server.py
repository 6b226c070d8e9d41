"""The AWS endpoint as a part of the twin: one HTTP server on loopback for every service.

    server = AwsApiServer([EcsApi(runtime), Elbv2Api(runtime)])
    await server.start()      # 127.0.0.1:4566 when free, else a port the kernel picks
    server.url                # "http://127.0.0.1:4566": AWS_ENDPOINT_URL for SDKs and the CLI
    await server.stop()

A request finds its service as AWS's front door does: the ``X-Amz-Target`` header (JSON
1.1), the ``/service/<target prefix>/operation/<name>`` path (Smithy RPC v2 CBOR), or, for
the query protocol, the service named in the SigV4 credential scope (``Credential=
KEY/DATE/REGION/elasticloadbalancing/aws4_request``). Any credentials and region are
accepted; nothing is checked against them. An operation the twin lacks gets AWS's error
for an unknown operation, naming it; a fault in a handler gets ``InternalFailure`` (500)
and is logged — never a traceback on the wire.

A request in proxy form (``POST http://data-127.0.0.1:4566/``: a client whose
``HTTP_PROXY`` is this endpoint) is answered when it names the endpoint itself, with or
without a host prefix before it. That is how the AWS CLI v2 of Debian 12, which always
puts DiscoverInstances' ``data-`` prefix before the endpoint's host (a name no resolver
knows), reaches the twin. A request in proxy form for any other host is refused
(``MisdirectedRequest``, 421): the endpoint forwards nothing and answers for no one else.
"""

from __future__ import annotations

import errno
import inspect
import logging
import re
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl

from aiohttp import web
from botocore.model import OperationModel, OperationNotFoundError, ServiceModel
from botocore.validate import ParamValidator
from yarl import URL

from fargo.local.aws_api import wire
from fargo.local.aws_api.errors import AwsError, internal_failure, unknown_operation
from fargo.local.aws_api.models import service_model
from fargo.local.events import about

logger = logging.getLogger(__name__)

DEFAULT_PORT = 4566  # where AWS tools' local endpoints are usually looked for
HOST = "127.0.0.1"
SHUTDOWN_TIMEOUT_SECONDS = 1.0
CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,]+/\d{8}/([^/,]+)/([^/,]+)/aws4_request")
RPC_V2_PATH = re.compile(r"^/service/([^/]+)/operation/([^/]+)$")
HOST_PREFIX = r"(?:[A-Za-z0-9.-]*[.-])?"  # "data-", "data-servicediscovery."

Handler = Callable[[dict[str, Any]], Awaitable[Mapping[str, Any]] | Mapping[str, Any]]


class ServiceApi(Protocol):
    """One AWS service's operations on the twin."""

    @property
    def service(self) -> str:
        """botocore's name of the service (``ecs``, ``elbv2``...)."""
        ...

    @property
    def invalid_parameter(self) -> str:
        """The service's error code for a malformed request (``ValidationError``...)."""
        ...

    def operations(self) -> Mapping[str, Handler]: ...


@dataclass(frozen=True)
class _Routed:
    api: ServiceApi | None
    model: ServiceModel | None
    protocol: str
    operation: str


class AwsApiServer:
    """The twin's AWS endpoint (a part: validate, start, stop)."""

    name = "AWS API endpoint"

    def __init__(
        self, apis: Sequence[ServiceApi], *, host: str = HOST, port: int = DEFAULT_PORT
    ) -> None:
        self.apis = list(apis)
        self.host = host
        self.port = port
        self._by_prefix = {
            service_model(a.service).metadata["targetPrefix"]: a
            for a in apis
            if "targetPrefix" in service_model(a.service).metadata
        }
        self._by_signing_name = {
            service_model(a.service).signing_name: a
            for a in apis
            if service_model(a.service).protocol == wire.QUERY
        }
        self._runner: web.AppRunner | None = None
        self._bound: tuple[str, int] | None = None

    @property
    def url(self) -> str:
        if self._bound is None:
            raise RuntimeError("the AWS API endpoint has not started")
        return f"http://{self._bound[0]}:{self._bound[1]}"

    @property
    def started(self) -> bool:
        return self._bound is not None

    def validate(self) -> list[str]:
        return []

    async def start(self) -> None:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS
        )
        await self._runner.setup()
        sock = _bind(self.host, self.port)
        self._bound = sock.getsockname()[:2]
        await web.SockSite(self._runner, sock).start()
        logger.info("AWS API endpoint at %s", self.url, extra=about("twin", "aws-api"))

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._bound = None

    # -- requests --------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        request_id = str(uuid.uuid4())
        body = await request.read()
        form = _form(request, body)
        routed = self._route(request, form)
        try:
            self._check_addressed_here(request)
            operation, answer = await self._answer(routed, body, form)
            status, headers, data = wire.encode(routed.protocol, operation, answer, request_id)
        except AwsError as err:
            status, headers, data = wire.encode_error(
                routed.protocol, routed.model, err, request_id
            )
        except Exception as err:  # a fault of the twin's, reported as AWS reports its own
            logger.exception("%s %s failed", routed.api and routed.api.service, routed.operation)
            failure = internal_failure(f"{type(err).__name__}: {err}")
            status, headers, data = wire.encode_error(
                routed.protocol, routed.model, failure, request_id
            )
        return web.Response(status=status, headers=headers, body=data)

    def _check_addressed_here(self, request: web.Request) -> None:
        """Refuse a request in proxy form (an absolute URL as its target) whose URL names
        another server than this endpoint (a host prefix before the endpoint's own host is
        fine: SDKs add one to some operations)."""
        target = URL(request.raw_path)  # as the request line has it
        if not target.absolute or self._bound is None:
            return
        host, port = self._bound
        own = rf"{HOST_PREFIX}(?:{re.escape(host)}|localhost)"
        if target.port == port and re.fullmatch(own, target.host or "", re.IGNORECASE):
            return
        raise AwsError(
            "MisdirectedRequest",
            f"this is the fargo twin's AWS endpoint {self.url}: it is not a proxy and "
            f"answers requests for itself only, not for {target.host}:{target.port}",
            status=421,
        )

    def _route(self, request: web.Request, form: Mapping[str, str]) -> _Routed:
        target = request.headers.get("X-Amz-Target")
        if target and "." in target:
            prefix, _, operation = target.rpartition(".")
            return self._routed(self._by_prefix.get(prefix), wire.JSON, operation)
        found = RPC_V2_PATH.match(request.path)
        if found:
            return self._routed(self._by_prefix.get(found[1]), wire.CBOR, found[2])
        scope = CREDENTIAL_SCOPE.search(request.headers.get("Authorization", ""))
        api = self._by_signing_name.get(scope[2]) if scope else None
        if api is None and len(self._by_signing_name) == 1 and "Action" in form:
            api = next(iter(self._by_signing_name.values()))  # an unsigned query request
        return self._routed(api, wire.QUERY, form.get("Action", ""))

    def _routed(self, api: ServiceApi | None, protocol: str, operation: str) -> _Routed:
        model = service_model(api.service) if api else None
        return _Routed(api, model, protocol, operation)

    async def _answer(
        self, routed: _Routed, body: bytes, form: Mapping[str, str]
    ) -> tuple[OperationModel, Mapping[str, Any]]:
        api, model = routed.api, routed.model
        if api is None or model is None:
            raise AwsError(
                "UnrecognizedClientException",
                "no service of the twin matches this request (X-Amz-Target, path or SigV4 "
                "credential scope)",
            )
        query = routed.protocol == wire.QUERY
        handler = api.operations().get(routed.operation)
        try:
            operation = model.operation_model(routed.operation)
        except OperationNotFoundError:
            handler = None
        if handler is None:
            raise unknown_operation(model.service_id.hyphenize(), routed.operation, query=query)
        params = wire.decode(routed.protocol, body, form, operation)
        if operation.input_shape is not None:
            report = ParamValidator().validate(params, operation.input_shape)
            if report.has_errors():
                raise AwsError(api.invalid_parameter, report.generate_report())
        answer = handler(params)
        if inspect.isawaitable(answer):
            answer = await answer
        return operation, answer


def _form(request: web.Request, body: bytes) -> dict[str, str]:
    """A query-protocol request's fields (form body, or the URL's query string)."""
    fields = dict(request.query)
    if request.content_type == "application/x-www-form-urlencoded" and body:
        fields.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return fields


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``port``, or on a free one when another program has it (a
    second twin on this machine)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((host, port))
    except OSError as err:
        if err.errno != errno.EADDRINUSE or port == 0:
            sock.close()
            raise
        sock.bind((host, 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock
