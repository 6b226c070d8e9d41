"""frontend's routes: the demo page and its two assets, plus ``/health``.

The files in ``static/`` are read once when the app is built (the container's
root filesystem is read-only; nothing is written). Every page carries a
Content-Security-Policy that allows only this origin, so the page can call the
API on the same origin and load nothing from anywhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from service_kit.asgi import Handler, Request, Response, Service

DEFAULT_PORT = 80
STATIC_DIR = Path(__file__).with_name("static")

CONTENT_SECURITY_POLICY = (
    b"default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    b"img-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    b"frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-cache"),
)
# URL path -> (file in static/, media type)
FILES = {
    "/": ("index.html", b"text/html; charset=utf-8"),
    "/index.html": ("index.html", b"text/html; charset=utf-8"),
    "/app.js": ("app.js", b"text/javascript; charset=utf-8"),
    "/app.css": ("app.css", b"text/css; charset=utf-8"),
}

HEALTHY = Response.text("OK")


def static_file(name: str, content_type: bytes, static_dir: Path = STATIC_DIR) -> Handler:
    """A handler answering with the file ``static_dir/name``, read now."""
    response = Response(200, (static_dir / name).read_bytes(), content_type, SECURITY_HEADERS)

    async def serve_file(request: Request) -> Response:
        return response

    return serve_file


async def health(request: Request) -> Response:
    """``GET /health`` (the target group checks ``/``, which also answers 200)."""
    return HEALTHY


def build_app(environ: Mapping[str, str]) -> Service:
    """The ASGI app (no settings beyond ``HOST``/``PORT``)."""
    routes = {path: static_file(name, media_type) for path, (name, media_type) in FILES.items()}
    routes["/health"] = health
    return Service(routes)
