"""The architecture spec (``fargo.yaml``): typed model, loader, validation.

from fargo.spec import load_spec, check_spec
spec = load_spec("fargo.yaml")                    # what every world refuses raises
report = check_spec("fargo.yaml", world="cloud")  # and what the cloud refuses; warnings
"""

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
from fargo.spec.loader import SpecReport, World, check_spec, check_spec_text, load_spec, parse_spec
from fargo.spec.model import Discovery, DiscoveryService, Image, Network, Service, Spec
from fargo.spec.secrets import LocalSecret, Secret


def json_schema() -> dict[str, object]:
    """The JSON Schema of ``fargo.yaml`` (for editor completion)."""
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
