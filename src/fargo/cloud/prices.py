"""The price table `fargo cost` reads: AWS list prices per region, with their date and source.

The table is ``prices.json`` next to this module (shipped in the wheel). Each price is the
first tier of the public on-demand list price, in USD; the file's ``note`` says how it was
made and that it must be checked against the pages in ``source``::

    table = load_price_table()
    prices = table.region("us-east-1")
    prices.fargate.on_demand["ARM64"].vcpu_hour  # 0.03238
"""

from __future__ import annotations

import datetime
from functools import cache
from importlib import resources
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

Architecture = Literal["X86_64", "ARM64"]

PRICE_FILE = "prices.json"


class Prices(BaseModel):
    """A group of prices: every field a non-negative USD amount; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class FargateRate(Prices):
    vcpu_hour: float = Field(ge=0)
    gb_hour: float = Field(ge=0)


class FargatePrices(Prices):
    """Fargate Linux rates by architecture; Spot lists only the architectures it runs."""

    on_demand: dict[Architecture, FargateRate]
    spot: dict[Architecture, FargateRate]

    @model_validator(mode="after")
    def _every_architecture_on_demand(self) -> FargatePrices:
        missing = set(get_args(Architecture)) - set(self.on_demand)
        if missing:
            raise ValueError(f"on_demand has no price for {', '.join(sorted(missing))}")
        return self


class LoadBalancerPrices(Prices):
    hour: float = Field(ge=0)
    lcu_hour: float = Field(ge=0)


class NatGatewayPrices(Prices):
    hour: float = Field(ge=0)
    gb_processed: float = Field(ge=0)


class PublicIpv4Prices(Prices):
    hour: float = Field(ge=0)


class InterfaceEndpointPrices(Prices):
    hour_per_zone: float = Field(ge=0)
    gb_processed: float = Field(ge=0)


class CloudWatchPrices(Prices):
    logs_ingested_gb: float = Field(ge=0)
    vended_logs_ingested_gb: float = Field(ge=0, description="VPC flow logs to CloudWatch Logs")
    logs_stored_gb_month: float = Field(ge=0)
    metric_month: float = Field(ge=0, description="a custom metric (Container Insights)")


class CloudMapPrices(Prices):
    instance_month: float = Field(ge=0)


class Route53Prices(Prices):
    hosted_zone_month: float = Field(ge=0)
    million_queries: float = Field(ge=0)


class WafPrices(Prices):
    web_acl_month: float = Field(ge=0)
    rule_month: float = Field(ge=0, description="a rule or managed rule group")
    million_requests: float = Field(ge=0)


class XRayPrices(Prices):
    million_traces_recorded: float = Field(ge=0)
    free_traces_per_month: int = Field(ge=0, description="X-Ray's free tier, every month")


class RegionPrices(Prices):
    fargate: FargatePrices
    load_balancer: LoadBalancerPrices
    nat_gateway: NatGatewayPrices
    public_ipv4: PublicIpv4Prices
    interface_endpoint: InterfaceEndpointPrices
    cloudwatch: CloudWatchPrices
    cloud_map: CloudMapPrices
    route53: Route53Prices
    waf: WafPrices
    xray: XRayPrices


class UnknownRegionError(LookupError):
    """The table has no prices for a region."""

    def __init__(self, region: str, known: list[str]) -> None:
        self.region = region
        self.known = known
        super().__init__(
            f"no prices for region {region!r} in fargo's price table "
            f"(src/fargo/cloud/{PRICE_FILE}); known regions: {', '.join(known)}"
        )


class PriceTable(Prices):
    """``prices.json``: when the prices were read, where from, and the prices per region."""

    as_of: datetime.date
    currency: Literal["USD"]
    hours_per_month: float = Field(gt=0, description="AWS bills a month as 730 hours")
    note: str
    source: dict[str, str]
    regions: dict[str, RegionPrices] = Field(min_length=1)

    def region(self, name: str) -> RegionPrices:
        """The prices of region ``name``; `UnknownRegionError` names the regions known."""
        try:
            return self.regions[name]
        except KeyError:
            raise UnknownRegionError(name, sorted(self.regions)) from None


@cache
def load_price_table() -> PriceTable:
    """The table shipped with fargo (read and validated once per process)."""
    text = resources.files("fargo.cloud").joinpath(PRICE_FILE).read_text(encoding="utf-8")
    return PriceTable.model_validate_json(text)
