"""The architecture spec (``fargo.yaml``): typed model, loader, validation.

from fargo.spec import load_spec, check_spec
spec = load_spec("fargo.yaml")                    # what every world refuses raises
report = check_spec("fargo.yaml", world="cloud")  # and what the cloud refuses; warnings
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fargo.spec.elb import (
        Action,
        HealthCheck,
        Listener,
        ListenerRule,
        LoadBalancer,
        RuleCondition,
        TargetGroup,
    )
    from fargo.spec.errors import Problem, SpecError, SpecFileError, SpecInvalid
    from fargo.spec.loader import (
        SpecReport,
        World,
        check_spec,
        check_spec_text,
        load_spec,
        parse_spec,
    )
    from fargo.spec.model import Discovery, DiscoveryService, Image, Network, Service, Spec
    from fargo.spec.secrets import LocalSecret, Secret

# Imported when first asked for: a process that needs only a constant of a submodule
# (``fargo.spec.defaults``, say: the data plane's DNS processes) does not build the
# models (a fifth of a second).
_SUBMODULES = {
    **dict.fromkeys(
        [
            "Action",
            "HealthCheck",
            "Listener",
            "ListenerRule",
            "LoadBalancer",
            "RuleCondition",
            "TargetGroup",
        ],
        "elb",
    ),
    **dict.fromkeys(["Problem", "SpecError", "SpecFileError", "SpecInvalid"], "errors"),
    **dict.fromkeys(
        ["SpecReport", "World", "check_spec", "check_spec_text", "load_spec", "parse_spec"],
        "loader",
    ),
    **dict.fromkeys(
        ["Discovery", "DiscoveryService", "Image", "Network", "Service", "Spec"], "model"
    ),
    **dict.fromkeys(["LocalSecret", "Secret"], "secrets"),
}


def __getattr__(name: str) -> Any:
    submodule = _SUBMODULES.get(name)
    if submodule is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{submodule}"), name)
    globals()[name] = value
    return value


def json_schema() -> dict[str, object]:
    """The JSON Schema of ``fargo.yaml`` (for editor completion)."""
    from fargo.spec.model import Spec

    schema = Spec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "fargo.yaml"
    return schema


__all__ = [
    "Action",
    "Discovery",
    "DiscoveryService",
    "HealthCheck",
    "Image",
    "Listener",
    "ListenerRule",
    "LoadBalancer",
    "LocalSecret",
    "Network",
    "Problem",
    "RuleCondition",
    "Secret",
    "Service",
    "Spec",
    "SpecError",
    "SpecFileError",
    "SpecInvalid",
    "SpecReport",
    "TargetGroup",
    "World",
    "check_spec",
    "check_spec_text",
    "json_schema",
    "load_spec",
    "parse_spec",
]
