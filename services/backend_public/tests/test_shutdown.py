"""SIGTERM: stop accepting, finish the request in flight, exit 0."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from testkit import FakeCallee, ServiceProcess, refuses_connections, wait_until

pytestmark = pytest.mark.slow  # starts service processes: the full suite runs it


async def test_sigterm_lets_the_request_in_flight_finish_then_exits_0() -> None:
    with FakeCallee(hold=True) as callee:
        public = ServiceProcess("backend_public", env={"PRIVATE_DISCOVERY_URL": callee.url})
        await asyncio.to_thread(lambda: public.start().wait_ready())
        try:
            assert public.process is not None
            async with httpx.AsyncClient(base_url=public.url, timeout=10) as client:
                in_flight = asyncio.create_task(client.get("/api/private"))
                assert await asyncio.to_thread(callee.received.wait, 5)

                public.process.terminate()
                await asyncio.to_thread(
                    wait_until,
                    lambda: refuses_connections(public.host, public.port),
                    5,
                    "listener closed after SIGTERM",
                )
                callee.release.set()
                response = await in_flight

            assert (response.status_code, response.text) == (200, "TaskId: fake")
            assert await asyncio.to_thread(public.process.wait, 10) == 0
        finally:
            public.stop()
