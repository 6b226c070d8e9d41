"""AWS errors as the endpoint answers them: a code (AWS's own), a message, an HTTP status.

raise AwsError("ServiceNotFoundException", "service 'x' does not exist")
"""

from __future__ import annotations


class AwsError(Exception):
    """An error answer in the service's own shape (``__type`` in JSON, ``<Error>`` in XML)."""

    def __init__(self, code: str, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    @property
    def sender_fault(self) -> bool:
        return self.status < 500


def unknown_operation(service: str, operation: str, *, query: bool = False) -> AwsError:
    """What AWS answers an operation it does not know; here also one the twin lacks."""
    code = "InvalidAction" if query else "UnknownOperationException"
    return AwsError(
        code,
        f"{service} operation {operation!r} is not supported by the fargo twin "
        "(docs/aws-api.md lists the supported ones)",
    )


def internal_failure(what: str) -> AwsError:
    return AwsError("InternalFailure", f"the twin failed to answer: {what}", status=500)
