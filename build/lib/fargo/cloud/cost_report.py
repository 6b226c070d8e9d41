"""``fargo cost``: the spec's monthly bill, the saving of each option, and the original's cost.

`cost_report` builds the whole answer as a typed model (``fargo cost --json`` prints it);
`render` writes it for people::

    report = cost_report(spec, region="us-east-1", requests_per_month=1_000_000)
    print(render(report))
    report.bill.total, report.original.bill.total, report.original.difference_percent
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from fargo.cloud.cost import Bill, price
from fargo.cloud.cost_footprint import footprint
from fargo.cloud.cost_options import Option, options
from fargo.cloud.cost_original import ORIGINAL_DESCRIPTION, original_footprint
from fargo.cloud.cost_usage import DEFAULT_REQUESTS_PER_MONTH
from fargo.cloud.prices import PRICE_FILE, load_price_table
from fargo.spec import Spec


class Original(BaseModel):
    """The original's architecture priced alike, and how the spec compares with it."""

    model_config = ConfigDict(frozen=True)

    description: str
    bill: Bill
    difference_percent: float  # the spec's total against the original's: negative is cheaper


class CostReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    spec: str
    prices_as_of: datetime.date
    prices_note: str
    bill: Bill
    options: list[Option]
    original: Original


def cost_report(
    spec: Spec, *, region: str | None = None, requests_per_month: int = DEFAULT_REQUESTS_PER_MONTH
) -> CostReport:
    """Price ``spec``, each option and the original's architecture in ``region``."""
    region = region or spec.region
    table = load_price_table()
    fp = footprint(spec)
    bill = price(fp, region=region, requests_per_month=requests_per_month)
    original = price(
        original_footprint(spec.logging.retention_days),
        region=region,
        requests_per_month=requests_per_month,
    )
    return CostReport(
        spec=spec.name,
        prices_as_of=table.as_of,
        prices_note=table.note,
        bill=bill,
        options=options(fp, bill),
        original=Original(
            description=ORIGINAL_DESCRIPTION,
            bill=original,
            difference_percent=_percent(bill.total, original.total),
        ),
    )


def render(report: CostReport) -> str:
    """The report for people: the bill's lines, the options, the comparison."""
    bill = report.bill
    original = report.original.bill.total
    lines = [
        f"{report.spec} in {bill.region}: USD a month ({bill.hours_per_month:g} hours), "
        f"{bill.requests_per_month:,} requests a month",
        f"prices: AWS list prices as of {report.prices_as_of} (src/fargo/cloud/{PRICE_FILE}); "
        "check them against the AWS pricing pages",
        "",
        *_table(
            ["SERVICE", "ITEM", "QUANTITY", "UNIT", "UNIT PRICE", "MONTHLY", "NOTE"],
            [
                [
                    line.service,
                    line.item,
                    _quantity(line.quantity),
                    line.unit,
                    f"{line.unit_price:.6g}",
                    f"{line.monthly:,.2f}",
                    line.note,
                ]
                for line in bill.lines
            ],
            numeric={2, 4, 5},
        ),
        f"total: {bill.total:,.2f} USD a month",
        "",
        "options, each priced as a whole bill (saving against this spec; "
        "difference against the original's architecture):",
        *_table(
            ["OPTION", "MONTHLY", "SAVING", "vs ORIGINAL", "POINTS", "NOTE"],
            [
                [
                    option.title,
                    f"{option.monthly:,.2f}",
                    f"{option.saving:,.2f}",
                    f"{_percent(option.monthly, original):+.1f} %",
                    "all kept"
                    if option.loses_point is None
                    else f"loses point {option.loses_point}",
                    option.note,
                ]
                for option in report.options
            ],
            numeric={1, 2, 3},
            empty="(none changes this spec)",
        ),
        "",
        f"the original's architecture ({report.original.description}): {original:,.2f} USD a month",
        f"this spec: {bill.total:,.2f} USD a month, {_versus(report.original.difference_percent)}",
    ]
    return "\n".join(lines)


def _percent(amount: float, reference: float) -> float:
    return (amount - reference) / reference * 100 if reference else 0.0


def _versus(percent: float) -> str:
    if percent <= 0:
        return f"{-percent:.1f} % less than the original"
    return f"{percent:.1f} % more than the original"


def _quantity(value: float) -> str:
    return f"{value:,.2f}" if value >= 1 or value == 0 else f"{value:.3g}"


def _table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    numeric: set[int],
    empty: str = "(none)",
) -> list[str]:
    """Columns two spaces apart, the ``numeric`` ones right-aligned."""
    if not rows:
        return [f"  {empty}"]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(width) if i in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return [line(headers), *(line(row) for row in rows)]
