"""frontend over a real socket: the demo page, its assets and its headers."""

from __future__ import annotations

import re

import httpx
import pytest

from frontend.app import FILES, STATIC_DIR, build_app
from service_kit.settings import SettingError
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


def test_page_has_a_burst_button_per_route_and_the_dashboards_sections(
    frontend: ServiceProcess,
) -> None:
    text = httpx.get(frontend.url + "/").text

    for route in ROUTES:
        assert f'data-burst="{route}"' in text
    for section in ("diagram", "points", "stats", "service-map", "traces", "metrics", "scaling"):
        assert f'id="{section}"' in text


def test_without_a_console_the_page_is_told_there_is_none(frontend: ServiceProcess) -> None:
    response = httpx.get(frontend.url + "/console.json")

    assert response.status_code == 200
    assert response.json() == {"console": None}  # on AWS: the page shows its request part
    assert "connect-src 'self';" in response.headers["content-security-policy"]


def test_the_twins_console_is_served_to_the_page_and_allowed_by_its_policy(
    spawn: Spawn,
) -> None:
    frontend = spawn("frontend", env={"FARGO_CONSOLE_URL": "http://127.0.0.1:40123/"})

    answer = httpx.get(frontend.url + "/console.json").json()
    page = httpx.get(frontend.url + "/")

    assert answer == {"console": "http://127.0.0.1:40123"}
    policy = page.headers["content-security-policy"]
    assert "connect-src 'self' http://127.0.0.1:40123;" in policy
    assert "script-src 'self';" in policy  # still nothing but this origin's scripts


@pytest.mark.parametrize(
    "value",
    [
        "127.0.0.1:40123",
        "ftp://127.0.0.1:1",
        "http://127.0.0.1:40123/api",
        "http://:1",
        "http://h:x",
    ],
)
def test_a_console_url_that_is_no_origin_is_refused_naming_the_variable(value: str) -> None:
    with pytest.raises(SettingError, match="FARGO_CONSOLE_URL="):
        build_app({"FARGO_CONSOLE_URL": value})


@pytest.mark.parametrize("path", ["/app.js", "/app.css", "/favicon.svg"])
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
