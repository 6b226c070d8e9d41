"""The CLI's side of the control plane's API (`fargo.local.control.api`): a client on
the state folder's unix socket whose `status`, `metrics` and `readiness` parse the answers
back into the status models.

    client = ControlClient(state.control_socket(state_dir))
    status = asyncio.run(client.status())   # a `fargo.local.status.TwinStatus`
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import pydantic
from pydantic import BaseModel

from fargo.local.status import SCHEMA_VERSION, MetricsStatus, Readiness, TwinStatus

M = TypeVar("M", bound=BaseModel)


class ControlError(RuntimeError):
    """Base of the errors `ControlClient` raises; the message is for people."""


class ControlPlaneUnavailable(ControlError):
    """No control plane answers on this state folder's socket (none runs, or it is stuck)."""


class ControlPlaneErrorAnswer(ControlError):
    """The control plane answered with an error status (a bad request, or a fault in it)."""

    def __init__(self, path: str, status: int, text: str) -> None:
        super().__init__(f"{path}: {status} {text.strip()}")
        self.status = status
        self.text = text.strip()


class ControlClient:
    """Talks to a running control plane.

    Raises `ControlPlaneUnavailable` if none answers (no socket, refused, timed out) and
    `ControlPlaneErrorAnswer` if it answers with an error status.
    """

    def __init__(self, socket_path: Path, timeout: float = 10.0) -> None:
        self._path = socket_path
        self._timeout = timeout

    async def get(self, path: str) -> Any:
        return await self._call("GET", path)

    async def post(self, path: str, timeout: float | None = None) -> Any:
        return await self._call("POST", path, timeout)

    async def status(self) -> TwinStatus:
        """``GET /status``, checked against the status schema."""
        return _parse(TwinStatus, "/status", await self.get("/status"))

    async def metrics(self) -> MetricsStatus:
        """``GET /metrics``: the last few minutes of every metric."""
        return _parse(MetricsStatus, "/metrics", await self.get("/metrics"))

    async def readiness(self, wait: float | None = None) -> Readiness:
        """``GET /ready``, checked against the status schema; with ``wait``, answered once
        the twin is ready or failing, or after ``wait`` seconds."""
        if wait is None:
            answer = await self.get("/ready")
        else:  # held up to ``wait`` seconds, on top of the usual timeout
            answer = await self._call("GET", f"/ready?wait={wait:g}", self._timeout + wait)
        return _parse(Readiness, "/ready", answer)

    async def _call(self, method: str, path: str, timeout: float | None = None) -> Any:
        if not self._path.exists():
            raise ControlPlaneUnavailable(f"no control plane socket at {self._path}")
        import aiohttp  # here: a command that starts the twin forks before it loads aiohttp

        connector = aiohttp.UnixConnector(path=str(self._path))
        limit = aiohttp.ClientTimeout(total=timeout or self._timeout)
        try:
            async with (
                aiohttp.ClientSession(connector=connector, timeout=limit) as session,
                session.request(method, f"http://fargo{path}") as response,
            ):
                if response.status >= 400:
                    raise ControlPlaneErrorAnswer(path, response.status, await response.text())
                return await response.json()
        except TimeoutError as err:  # aiohttp's total timeout raises a bare TimeoutError
            raise ControlPlaneUnavailable(
                f"the control plane at {self._path} did not answer {path} within "
                f"{limit.total or 0:g} s"
            ) from err
        except (aiohttp.ContentTypeError, ValueError) as err:
            raise ControlPlaneErrorAnswer(path, 200, f"an answer that is not JSON: {err}") from err
        except (aiohttp.ClientError, OSError) as err:
            raise ControlPlaneUnavailable(
                f"the control plane does not answer at {self._path}: {err}"
            ) from err


def _parse(model: type[M], path: str, answer: Any) -> M:
    """The answer as ``model``; one that does not fit is an error answer that says so."""
    try:
        return model.model_validate(answer)
    except pydantic.ValidationError as err:
        raise ControlPlaneErrorAnswer(
            path,
            200,
            f"an answer that does not fit this fargo's status schema (version {SCHEMA_VERSION}); "
            f"was the twin started by another version of fargo? (`fargo down`, then `fargo up` "
            f"starts it again with this one): {err}",
        ) from err
