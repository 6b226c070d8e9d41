"""frontend over a real socket: the demo page, its assets and its headers."""

from __future__ import annotations

import re

import httpx
import pytest

from frontend.app import FILES, STATIC_DIR
from testkit import ServiceProcess, Spawn

ROUTES = ("/api/public", "/api/private", "/api/private-with-alb")


@pytest.fixture
def frontend(spawn: Spawn) -> ServiceProcess:
    return spawn("frontend")


def test_page_has_a_call_and_a_call_20_times_button_per_route(frontend: ServiceProcess) -> None:
    response = httpx.get(frontend.url + "/")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    for route in ROUTES:
        assert f'data-route="{route}" data-times="1"' in response.text
        assert f'data-route="{route}" data-times="20"' in response.text
    assert 'id="tally"' in response.text


def test_page_allows_only_its_own_origin(frontend: ServiceProcess) -> None:
    response = httpx.get(frontend.url + "/")

    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", ["/app.js", "/app.css"])
def test_assets_are_served(frontend: ServiceProcess, path: str) -> None:
    response = httpx.get(frontend.url + path)

    assert response.status_code == 200
    assert response.content == (STATIC_DIR / FILES[path][0]).read_bytes()
    assert "content-security-policy" in response.headers


def test_health_unknown_paths_and_methods(frontend: ServiceProcess) -> None:
    assert httpx.get(frontend.url + "/health").status_code == 200
    assert httpx.get(frontend.url + "/api/public").status_code == 404
    assert httpx.post(frontend.url + "/").status_code == 405
    head = httpx.head(frontend.url + "/")
    assert (head.status_code, head.content) == (200, b"")


def test_static_files_load_nothing_from_elsewhere() -> None:
    for name in {name for name, _ in FILES.values()}:
        text = (STATIC_DIR / name).read_text()
        assert not re.search(r"(src|href)=\"(https?:)?//", text), name
        assert "<script>" not in text, f"{name}: inline scripts break the CSP"
