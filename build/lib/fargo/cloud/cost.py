"""The monthly bill of a spec: one line per thing AWS charges for, from the price table.

Pure Python (no CDK), so ``fargo cost`` is fast and needs no cloud extras::

    from fargo.cloud.cost import bill, monthly_total
    monthly_total(spec)                     # USD a month in the spec's region
    for line in bill(spec, region="eu-west-1").lines:
        print(line.service, line.item, line.quantity, line.unit, line.unit_price, line.monthly)

A month is the table's ``hours_per_month`` (730). Hourly things come from the spec; things
billed by use come from the traffic assumptions in `fargo.cloud.cost_usage`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, computed_field

from fargo.cloud.cost_footprint import Footprint, footprint
from fargo.cloud.cost_lines import BillLine, bill_lines
from fargo.cloud.cost_usage import DEFAULT_REQUESTS_PER_MONTH, Traffic
from fargo.cloud.prices import load_price_table
from fargo.spec import Spec

__all__ = ["Bill", "BillLine", "bill", "monthly_total", "price"]


class Bill(BaseModel):
    """A month of a deployment, line by line, in USD."""

    model_config = ConfigDict(frozen=True)

    region: str
    hours_per_month: float
    requests_per_month: int
    lines: list[BillLine]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total(self) -> float:
        return sum(line.monthly for line in self.lines)

    def amount(self, service: str) -> float:
        """The month's total of one AWS service's lines."""
        return sum(line.monthly for line in self.lines if line.service == service)


def bill(
    spec: Spec, *, region: str | None = None, requests_per_month: int = DEFAULT_REQUESTS_PER_MONTH
) -> Bill:
    """The monthly bill of ``spec`` in ``region`` (default: the spec's region)."""
    return price(
        footprint(spec), region=region or spec.region, requests_per_month=requests_per_month
    )


def monthly_total(
    spec: Spec, region: str | None = None, requests_per_month: int = DEFAULT_REQUESTS_PER_MONTH
) -> float:
    """USD a month to run ``spec`` (what ``fargo deploy --dry-run`` prints)."""
    return bill(spec, region=region, requests_per_month=requests_per_month).total


def price(fp: Footprint, *, region: str, requests_per_month: int) -> Bill:
    """Price a footprint in ``region``; `fargo.cloud.prices.UnknownRegionError` if unknown."""
    table = load_price_table()
    traffic = Traffic(requests=requests_per_month, hours=table.hours_per_month)
    return Bill(
        region=region,
        hours_per_month=traffic.hours,
        requests_per_month=requests_per_month,
        lines=bill_lines(fp, table.region(region), traffic),
    )
