"""What ALB answers itself, as Caddy handlers: redirects, fixed responses, its error pages.

    redirect(action.redirect, listener, local_port=8443, listener_port=mapped)
    # {"handler": "static_response", "status_code": 301, "headers": {"Location": [...]}}
    fixed_response(action.fixed_response)
    service_unavailable()   # ALB's 503 page, for a target group with no target
    bad_request()           # ALB's 400 page, for a request over its size limits
    error_routes(unavailable)   # Caddy's error routes: ALB's page for 502, 504, ...

A redirect's ``#{path}`` and ``#{query}`` are placeholders that `redirect_handlers`
define, so a server that has a redirect action runs those handlers first.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fargo.spec.elb import FixedResponseAction, Listener, RedirectAction

JSON = dict[str, Any]

SERVER_HEADER = "awselb/2.0"
# Caddy placeholders `redirect_handlers` define.
REDIRECT_PATH = "fargo.redirect_path"
REDIRECT_QUERY = "fargo.redirect_query"
ALB_PLACEHOLDER = re.compile(r"#\{(protocol|host|port|path|query)\}")


def literal(text: str) -> str:
    """``text`` with Caddy placeholders' braces escaped, so it is sent as written."""
    return text.replace("{", "\\{").replace("}", "\\}")


def redirect_handlers() -> list[JSON]:
    """Handlers that define the placeholders a redirect uses: the path without ``/``, ``?query``."""
    return [
        {
            "handler": "map",
            "source": "{http.request.uri}",
            "destinations": ["{" + REDIRECT_PATH + "}"],
            "mappings": [{"input_regexp": "^/([^?]*)", "outputs": ["${1}"]}],
            "defaults": [""],
        },
        {
            "handler": "map",
            "source": "{http.request.uri.query}",
            "destinations": ["{" + REDIRECT_QUERY + "}"],
            "mappings": [{"input_regexp": "^(.+)$", "outputs": ["?${1}"]}],
            "defaults": [""],
        },
    ]


def redirect(
    redirect: RedirectAction,
    listener: Listener,
    local_port: int,
    listener_port: Callable[[int], int],
) -> JSON:
    """A ``redirect`` action of ``listener`` (which listens on ``local_port`` here)."""
    protocol = listener.protocol if redirect.protocol == "#{protocol}" else redirect.protocol
    if redirect.port.isdigit():
        # The target port is a spec port; on the twin it listens where that port is mapped.
        port = str(listener_port(int(redirect.port)))
    else:
        port = _template(redirect.port, listener, local_port)
    host = _template(redirect.host, listener, local_port)
    path = _template(redirect.path, listener, local_port)
    if redirect.query == "#{query}":
        query = "{" + REDIRECT_QUERY + "}"
    elif redirect.query:
        query = "?" + _template(redirect.query, listener, local_port)
    else:
        query = ""
    location = f"{protocol.lower()}://{host}:{port}{path}{query}"
    status = 301 if redirect.status_code == "HTTP_301" else 302
    return {
        "handler": "static_response",
        "status_code": status,
        "headers": {"Location": [location]},
    }


def fixed_response(fixed: FixedResponseAction) -> JSON:
    """A ``fixed-response`` action."""
    return _static(fixed.status_code, fixed.message_body, fixed.content_type)


def service_unavailable() -> JSON:
    """What ALB answers when a target group has no target to send to."""
    return _static(503, _alb_page("503 Service Temporarily Unavailable"), "text/html")


def bad_request() -> JSON:
    """ALB's 400 for a request it will not route (too large a header); the connection closes."""
    return {**_static(400, _alb_page("400 Bad Request"), "text/html"), "close": True}


def error_routes(unavailable: Path) -> list[JSON]:
    """Caddy's error routes: ALB's page for the errors Caddy raises, 502 (refused, reset),
    504 (timeout), ...; and 503 when the error was in reaching the internal 503 server on
    ``unavailable`` (a take-over sets its folder aside before the new server listens)."""
    return [
        {
            "match": [{"vars": {"{http.reverse_proxy.upstream.address}": [f"unix/{unavailable}"]}}],
            "handle": [{**service_unavailable(), "headers": _page_headers()}],
            "terminal": True,
        },
        {
            "handle": [
                {
                    "handler": "static_response",
                    "status_code": "{http.error.status_code}",
                    "headers": _page_headers(),
                    "body": _alb_page("{http.error.status_code} {http.error.status_text}"),
                }
            ]
        },
    ]


def _page_headers() -> JSON:
    return {"Content-Type": ["text/html"], "Server": [SERVER_HEADER]}


def _template(text: str, listener: Listener, local_port: int) -> str:
    """An ALB redirect component with ``#{...}`` keywords as Caddy placeholders."""
    values = {
        "protocol": listener.protocol.lower(),
        "host": "{http.request.host}",
        "port": str(local_port),
        "path": "{" + REDIRECT_PATH + "}",
        "query": "{http.request.uri.query}",
    }
    out = []
    position = 0
    for match in ALB_PLACEHOLDER.finditer(text):
        out.append(literal(text[position : match.start()]))
        out.append(values[match.group(1)])
        position = match.end()
    out.append(literal(text[position:]))
    return "".join(out)


def _static(status: int, body: str, content_type: str) -> JSON:
    response: JSON = {
        "handler": "static_response",
        "status_code": status,
        "headers": {"Content-Type": [content_type]},
    }
    if body:
        response["body"] = literal(body)
    return response


def _alb_page(status: str) -> str:
    return (
        f"<html>\r\n<head><title>{status}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status}</h1></center>\r\n</body>\r\n</html>\r\n"
    )
