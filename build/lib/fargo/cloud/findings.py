"""A finding of a template check (cdk-nag, cfn-lint, checkov), for people and for tests."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    """One problem a checker reports in a synthesized stack."""

    tool: str  # "cdk-nag", "cfn-lint", "checkov"
    rule: str  # "AwsSolutions-S1", "W3005", "CKV_AWS_2"
    stack: str
    resource: str  # construct path (cdk-nag) or logical id
    message: str

    def render(self) -> str:
        return f"{self.tool} {self.rule} {self.stack}/{self.resource}: {self.message}"


@dataclass(frozen=True)
class Acknowledged:
    """A finding a checker found and fargo acknowledged in code, with the reason."""

    tool: str
    rule: str
    resource: str
    reason: str
