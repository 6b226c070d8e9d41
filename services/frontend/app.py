"""frontend's routes: the demo page and its assets, ``/console.json``, ``/health``.

The files in ``static/`` are read once when the app is built (the container's
root filesystem is read-only; nothing is written). Every page carries a
Content-Security-Policy that allows only this origin, so the page can call the
API on the same origin and load nothing from anywhere else — and, in the twin, the
twin's console: ``FARGO_CONSOLE_URL`` (set by the twin only) is served to the page
at ``/console.json`` and added to ``connect-src``, so the page can draw the
architecture's dashboard from it. On AWS it is absent and ``/console.json`` says
``{"console": null}``: the page shows its request part only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from service_kit.asgi import Handler, Request, Response, Service
from service_kit.settings import SettingError

DEFAULT_PORT = 80
STATIC_DIR = Path(__file__).with_name("static")
CONSOLE_URL_ENV = "FARGO_CONSOLE_URL"

POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src {connect}; "
    "img-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
CONTENT_SECURITY_POLICY = POLICY.format(connect="'self'").encode()
OTHER_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-cache"),
)
SECURITY_HEADERS = ((b"content-security-policy", CONTENT_SECURITY_POLICY), *OTHER_HEADERS)
# URL path -> (file in static/, media type)
FILES = {
    "/": ("index.html", b"text/html; charset=utf-8"),
    "/index.html": ("index.html", b"text/html; charset=utf-8"),
    "/app.js": ("app.js", b"text/javascript; charset=utf-8"),
    "/app.css": ("app.css", b"text/css; charset=utf-8"),
    "/favicon.svg": ("favicon.svg", b"image/svg+xml"),
}

HEALTHY = Response.text("OK")


def console_origin(environ: Mapping[str, str]) -> str | None:
    """``FARGO_CONSOLE_URL`` as an origin (``http://127.0.0.1:40123``), or None if unset;
    `SettingError` if it is not an http(s) origin."""
    url = environ.get(CONSOLE_URL_ENV, "").strip()
    if not url:
        return None
    expected = f"{CONSOLE_URL_ENV}={url!r}: expected an origin like http://127.0.0.1:40123"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise SettingError(f"{expected} ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingError(expected)
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise SettingError(expected + " (no path, query, fragment or user)")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def security_headers(console: str | None) -> tuple[tuple[bytes, bytes], ...]:
    """The headers of every file: the page may connect to this origin (and the console)."""
    if console is None:
        return SECURITY_HEADERS
    policy = POLICY.format(connect=f"'self' {console}").encode()
    return ((b"content-security-policy", policy), *OTHER_HEADERS)


def static_file(
    name: str,
    content_type: bytes,
    static_dir: Path = STATIC_DIR,
    headers: tuple[tuple[bytes, bytes], ...] = SECURITY_HEADERS,
) -> Handler:
    """A handler answering with the file ``static_dir/name``, read now."""
    response = Response(200, (static_dir / name).read_bytes(), content_type, headers)

    async def serve_file(request: Request) -> Response:
        return response

    return serve_file


def console_document(console: str | None, headers: tuple[tuple[bytes, bytes], ...]) -> Handler:
    """``GET /console.json``: where the twin's console is, or null (on AWS)."""
    body = json.dumps({"console": console}).encode()
    response = Response(200, body, b"application/json", headers)

    async def serve_console(request: Request) -> Response:
        return response

    return serve_console


async def health(request: Request) -> Response:
    """``GET /health`` (the target group checks ``/``, which also answers 200)."""
    return HEALTHY


def build_app(environ: Mapping[str, str]) -> Service:
    """The ASGI app (settings: ``HOST``/``PORT``, and ``FARGO_CONSOLE_URL`` in the twin)."""
    console = console_origin(environ)
    headers = security_headers(console)
    routes = {
        path: static_file(name, media_type, headers=headers)
        for path, (name, media_type) in FILES.items()
    }
    routes["/console.json"] = console_document(console, headers)
    routes["/health"] = health
    return Service(routes)
