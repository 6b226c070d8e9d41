"""AWS clients only botocore's Stubber answers (it checks each request and answer against
the service's own model); their endpoint is loopback, so nothing ever leaves the machine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.stub import Stubber


def client(service: str) -> Any:
    return boto3.client(
        service,
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",  # never reached: the Stubber answers
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="example",
    )


@dataclass
class StubbedSession:
    """``session.client(name)``: one stubbed client per service, answers queued in order."""

    clients: dict[str, Any] = field(default_factory=dict)
    stubs: dict[str, Stubber] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = client(service)
            self.stubs[service] = Stubber(self.clients[service])
        return self.clients[service]

    def stub(self, service: str) -> Stubber:
        self.client(service)
        return self.stubs[service]


@contextmanager
def activated(session: StubbedSession) -> Iterator[StubbedSession]:
    """The session's stubs answering; every queued answer must have been asked for."""
    with ExitStack() as stack:
        for stub in session.stubs.values():
            stack.enter_context(stub)
        yield session
        for stub in session.stubs.values():
            stub.assert_no_pending_responses()
