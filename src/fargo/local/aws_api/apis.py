"""Every AWS service the twin's endpoint answers, for one runtime."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fargo.local.aws_api.autoscaling import AutoScalingApi
from fargo.local.aws_api.ecr import EcrApi
from fargo.local.aws_api.ecs import EcsApi
from fargo.local.aws_api.elbv2 import Elbv2Api
from fargo.local.aws_api.logs import LogsApi
from fargo.local.aws_api.server import ServiceApi
from fargo.local.aws_api.servicediscovery import ServiceDiscoveryApi

if TYPE_CHECKING:
    from fargo.local.runtime import Runtime


def aws_apis(runtime: Runtime) -> list[ServiceApi]:
    return [
        EcsApi(runtime),
        Elbv2Api(runtime),
        ServiceDiscoveryApi(runtime),
        LogsApi(runtime),
        EcrApi(runtime),
        AutoScalingApi(runtime),
    ]
