"""Environment variables: defaults, parsing, and errors that name the variable."""

from __future__ import annotations

import pytest

from service_kit.downstream import Callee, Downstream, env_callee
from service_kit.server import KEEP_ALIVE_S, keep_alive_seconds
from service_kit.settings import SettingError, env_float, env_port, env_whole_seconds


def test_callee_from_a_discovery_url() -> None:
    callee = Callee.parse("http://private.backend.microservice.local:8090/", setting="X")

    assert callee.host == "private.backend.microservice.local"
    assert callee.port == 8090
    assert callee.host_header == "private.backend.microservice.local:8090"
    assert callee.url == "http://private.backend.microservice.local:8090"
    assert callee.base_path == ""
    assert not callee.is_ip


def test_callee_defaults_and_addresses() -> None:
    metadata = Callee.parse("http://169.254.170.2/v4/abc", setting="X")
    ipv6 = Callee.parse("http://[::1]:8090", setting="X")

    assert (metadata.port, metadata.host_header, metadata.base_path) == (
        80,
        "169.254.170.2",
        "/v4/abc",
    )
    assert metadata.is_ip
    assert (ipv6.netloc, ipv6.is_ip) == ("[::1]:8090", True)


@pytest.mark.parametrize(
    "url", ["https://x:8090", "x:8090", "http://", "http://x:99999", "http://x/?q=1"]
)
def test_bad_callee_url_names_the_variable(url: str) -> None:
    with pytest.raises(SettingError, match=r"^PRIVATE_ALB_URL="):
        env_callee({"PRIVATE_ALB_URL": url}, "PRIVATE_ALB_URL")


def test_unset_callee_is_none() -> None:
    assert env_callee({"PRIVATE_ALB_URL": " "}, "PRIVATE_ALB_URL") is None


def test_numbers_and_ports() -> None:
    assert env_float({}, "T", 2.0) == 2.0
    assert env_float({"T": "0.25"}, "T", 2.0) == 0.25
    assert env_port({"PORT": "8080"}, "PORT", 80) == 8080
    for bad in ("0", "-1", "soon", "nan", "inf"):
        with pytest.raises(SettingError, match=r"^T="):
            env_float({"T": bad}, "T", 2.0)
    for bad in ("0", "65536", "http"):
        with pytest.raises(SettingError, match=r"^PORT="):
            env_port({"PORT": bad}, "PORT", 80)


def test_downstream_timeouts_from_env() -> None:
    client = Downstream.from_env(
        {"DOWNSTREAM_CONNECT_TIMEOUT": "0.5", "DOWNSTREAM_READ_TIMEOUT": "1.5"}
    )
    default = Downstream.from_env({})

    assert (client.connect_timeout_s, client.read_timeout_s) == (0.5, 1.5)
    assert (default.connect_timeout_s, default.read_timeout_s) == (2.0, 5.0)


def test_keep_alive_comes_from_the_spec_through_the_environment() -> None:
    assert keep_alive_seconds({"HTTP_KEEP_ALIVE_TIMEOUT": "125"}) == 125
    assert keep_alive_seconds({"HTTP_KEEP_ALIVE_TIMEOUT": " "}) == KEEP_ALIVE_S == 75


@pytest.mark.parametrize("raw", ["0", "-5", "7.5", "1m", "ten"])
def test_a_keep_alive_that_is_no_whole_number_of_seconds_names_the_variable(raw: str) -> None:
    with pytest.raises(SettingError) as caught:
        keep_alive_seconds({"HTTP_KEEP_ALIVE_TIMEOUT": raw})

    assert str(caught.value) == (
        f"HTTP_KEEP_ALIVE_TIMEOUT={raw!r}: expected a whole number of seconds, at least 1"
    )
    assert env_whole_seconds({}, "T", 3) == 3
