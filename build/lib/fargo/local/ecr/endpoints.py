"""The OCI distribution API's pull endpoints, as aiohttp handlers over a ``BlobStore``.

``RegistryServer`` (``distribution``) mounts them; on their own, for an app::

    app = web.Application(middlewares=[oci_errors])
    app[STORE] = BlobStore(root)
    app.router.add_routes(routes)

Errors follow the spec: a JSON body ``{"errors": [{"code", "message", "detail"}]}``
with the codes NAME_INVALID, NAME_UNKNOWN, MANIFEST_UNKNOWN, BLOB_UNKNOWN,
DIGEST_INVALID, TAG_INVALID and UNSUPPORTED (every write method: the registry is
read-only; images enter it through ``build_image``).
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from fargo.local.ecr.blobs import BlobStore
from fargo.local.ecr.oci import MANIFEST_MEDIA_TYPE, is_digest, is_repository_name, is_tag

STORE = web.AppKey("store", BlobStore)
API_VERSION = {"Docker-Distribution-API-Version": "registry/2.0"}
_ACCEPTED = {MANIFEST_MEDIA_TYPE, "*/*", "application/*"}

routes = web.RouteTableDef()


class OciError(Exception):
    """An error answer in the distribution spec's shape."""

    def __init__(self, status: int, code: str, message: str, **detail: object) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.detail = status, code, message, detail

    def response(self) -> web.Response:
        error = {"code": self.code, "message": self.message, "detail": self.detail}
        return web.json_response({"errors": [error]}, status=self.status)


@web.middleware
async def oci_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse writes, turn errors into the spec's shape, label every answer registry/2.0."""
    response: web.StreamResponse
    if request.method not in ("GET", "HEAD"):
        message = f"{request.method} is not supported: this registry is read-only"
        response = OciError(405, "UNSUPPORTED", message, method=request.method).response()
        response.headers["Allow"] = "GET, HEAD"
    else:
        try:
            response = await handler(request)
        except OciError as error:
            response = error.response()
        except web.HTTPNotFound:
            response = OciError(404, "UNSUPPORTED", f"no endpoint {request.path}").response()
    response.headers.update(API_VERSION)
    return response


@routes.get("/v2/")
async def base(request: web.Request) -> web.Response:
    return web.json_response({})


@routes.get("/v2/{name:.+}/manifests/{reference}")
async def manifest(request: web.Request) -> web.Response:
    store, name = _repository(request)
    reference = request.match_info["reference"]
    if not is_digest(reference) and not is_tag(reference):
        if ":" in reference:
            raise OciError(400, "DIGEST_INVALID", f"unsupported digest {reference!r}")
        raise OciError(400, "TAG_INVALID", f"invalid tag {reference!r}")
    accepted = _accept(request)
    if accepted and not accepted & _ACCEPTED:
        message = f"no manifest of the types {sorted(accepted)}; only {MANIFEST_MEDIA_TYPE}"
        raise OciError(404, "MANIFEST_UNKNOWN", message, name=name, reference=reference)
    digest = store.resolve(name, reference)
    if digest is None:
        message = f"manifest unknown: {name}:{reference}"
        raise OciError(404, "MANIFEST_UNKNOWN", message, name=name, reference=reference)
    return web.Response(
        body=store.read(digest),
        content_type=MANIFEST_MEDIA_TYPE,
        headers={"Docker-Content-Digest": digest},
    )


@routes.get("/v2/{name:.+}/blobs/{digest}")
async def blob(request: web.Request) -> web.FileResponse:
    store, name = _repository(request)
    digest = request.match_info["digest"]
    if not is_digest(digest):
        raise OciError(400, "DIGEST_INVALID", f"unsupported digest {digest!r}")
    if not store.has_blob(name, digest):
        raise OciError(404, "BLOB_UNKNOWN", f"blob unknown to {name}: {digest}", digest=digest)
    headers = {"Docker-Content-Digest": digest, "Content-Type": "application/octet-stream"}
    return web.FileResponse(store.path(digest), headers=headers)


@routes.get("/v2/{name:.+}/tags/list")
async def tags(request: web.Request) -> web.Response:
    store, name = _repository(request)
    found = store.tags(name)
    if last := request.query.get("last"):
        found = [tag for tag in found if tag > last]
    headers = {}
    count = request.query.get("n", "")
    if count.isdigit() and int(count) < len(found):
        found = found[: int(count)]
        if found:
            link = f"/v2/{name}/tags/list?n={count}&last={found[-1]}"
            headers["Link"] = f'<{link}>; rel="next"'
    return web.json_response({"name": name, "tags": found}, headers=headers)


def _repository(request: web.Request) -> tuple[BlobStore, str]:
    store, name = request.app[STORE], request.match_info["name"]
    if not is_repository_name(name):
        raise OciError(400, "NAME_INVALID", f"invalid repository name {name!r}", name=name)
    if not store.has_repository(name):
        raise OciError(404, "NAME_UNKNOWN", f"repository {name!r} not known", name=name)
    return store, name


def _accept(request: web.Request) -> set[str]:
    """The media types an ``Accept`` header lists (parameters dropped); empty for any."""
    values = ",".join(request.headers.getall("Accept", []))
    return {part.split(";")[0].strip().lower() for part in values.split(",") if part.strip()}
