"""Why a downstream GET got no answer: what `service_kit.http_pool` raises and
`service_kit.downstream` decides on (retry, eject, 502 or 504). No aiohttp here: the
pool's module loads in the background, the policy's does not wait for it."""

from __future__ import annotations


class CallFailed(Exception):
    """A GET that got no answer; the message says why, in the caller's words."""


class ConnectTimeout(CallFailed):
    """No connection within the connect timeout: nothing was sent."""


class ReadTimeout(CallFailed):
    """Sent, and no answer within the read timeout."""


class ConnectionFailed(CallFailed):
    """Refused, reset, or dropped by the callee."""


class BadResponse(CallFailed):
    """An answer that is not HTTP."""
