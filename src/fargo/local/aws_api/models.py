"""botocore's own service models: the shapes the endpoint reads requests and writes answers by.

model = service_model("ecs")          # a botocore ServiceModel, loaded once
model.operation_model("ListClusters").output_shape
"""

from __future__ import annotations

import functools

from botocore.loaders import Loader
from botocore.model import ServiceModel


@functools.cache
def _loader() -> Loader:
    return Loader()


@functools.cache
def service_model(name: str) -> ServiceModel:
    """The newest model of service ``name`` (botocore's name: ``ecs``, ``elbv2``...)."""
    data = _loader().load_service_model(name, "service-2")
    return ServiceModel(data, service_name=name)
