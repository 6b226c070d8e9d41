"""Shared fixtures: the reference system and a second spec, each synthesized once per session.

Synthesis takes seconds and checkov several more, so templates and check reports are
session-scoped; construct tests build one construct in a bare ``cdk.Stack()`` instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# Before any aws_cdk import: jsii must start on the wheel's Node. Test modules import
# aws_cdk at their top, after this conftest ran; here it is only imported in fixtures.
import fargo.cloud  # noqa: F401
from fargo.cloud.checks import CheckReport, check_report
from fargo.cloud.synth import SynthResult, synthesize
from fargo.spec import Spec, load_spec

if TYPE_CHECKING:
    from aws_cdk import assertions

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "fargo.yaml"
SHOP = Path(__file__).with_name("shop.yaml")


@pytest.fixture(scope="session")
def reference_spec() -> Spec:
    return load_spec(REFERENCE)


@pytest.fixture(scope="session")
def shop_spec() -> Spec:
    return load_spec(SHOP)


# Without a NAT gateway: tasks reach AWS through these VPC endpoints only (and their X-Ray
# daemons through xray's).
TASK_ENDPOINTS = ["ecr.api", "ecr.dkr", "s3", "logs", "xray"]


@pytest.fixture(scope="session")
def endpoints_spec(reference_spec: Spec) -> Spec:
    """The reference system without a NAT gateway, with the endpoints its tasks start with."""
    spec = reference_spec.model_copy(deep=True)
    spec.network.nat_gateways = 0
    spec.network.vpc_endpoints = list(TASK_ENDPOINTS)
    return spec


@pytest.fixture(scope="session")
def endpoints(endpoints_spec: Spec, tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    return synthesize(endpoints_spec, tmp_path_factory.mktemp("endpoints"), image_tags="e1")


@pytest.fixture(scope="session")
def endpoints_checks(endpoints: SynthResult) -> CheckReport:
    return check_report(endpoints)


@pytest.fixture(scope="session")
def reference(reference_spec: Spec, tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    return synthesize(reference_spec, tmp_path_factory.mktemp("reference"), image_tags="abc123")


@pytest.fixture(scope="session")
def shop(shop_spec: Spec, tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    return synthesize(shop_spec, tmp_path_factory.mktemp("shop"), image_tags="v2")


def stack_template(result: SynthResult, stack: str) -> assertions.Template:
    """One synthesized stack, for assertions (aws_cdk imported only here: see above)."""
    from aws_cdk import assertions

    return assertions.Template.from_json(result.template(stack))


@pytest.fixture(scope="session")
def network_template(reference: SynthResult) -> assertions.Template:
    return stack_template(reference, "network")


@pytest.fixture(scope="session")
def registry_template(reference: SynthResult) -> assertions.Template:
    return stack_template(reference, "registry")


@pytest.fixture(scope="session")
def app_template(reference: SynthResult) -> assertions.Template:
    return stack_template(reference, "app")


@pytest.fixture(scope="session")
def shop_app_template(shop: SynthResult) -> assertions.Template:
    return stack_template(shop, "app")


@pytest.fixture(scope="session")
def reference_checks(reference: SynthResult) -> CheckReport:
    return check_report(reference)


@pytest.fixture(scope="session")
def shop_checks(shop: SynthResult) -> CheckReport:
    return check_report(shop)
