"""`fargo cost`: each line of the bill checked against amounts worked out by hand from the table.

The hand computations use the us-east-1 list prices of ``prices.json`` and the traffic
assumptions of `fargo.cloud.cost_usage` (1,000,000 requests a month, 730 hours).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from tests.cli import modules_loaded_by

from fargo.cli import main
from fargo.cloud.cost import Bill, bill, monthly_total, price
from fargo.cloud.cost_footprint import footprint
from fargo.cloud.cost_report import CostReport, cost_report
from fargo.cloud.prices import UnknownRegionError, load_price_table
from fargo.spec import Spec, load_spec, parse_spec
from fargo.spec.model import ServiceConnect, ServiceConnectDefaults

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "fargo.yaml"
CENT = 0.005

# One service of 0.5 vCPU / 1 GB behind one internet-facing load balancer, one NAT gateway
# over two zones; no Cloud Map, certificate, flow logs or Container Insights.
TINY = """\
name: tiny
region: us-east-1
network:
  cidr: 10.1.0.0/16
  availability_zones: 2
  nat_gateways: 1
  subnets: {public: [10.1.0.0/24, 10.1.1.0/24], private: [10.1.10.0/24, 10.1.11.0/24]}
  flow_logs: false
images:
  web: {dockerfile: web/Dockerfile}
cluster: {name: tiny, container_insights: false}
target_groups:
  web: {}
load_balancers:
  public:
    scheme: internet-facing
    listeners:
      - port: 80
        protocol: HTTP
        default_action: {forward: web}
services:
  web:
    image: web
    port: 8080
    cpu: 512
    memory: 1024
    desired_count: 1
    target_groups: [web]
"""

# By hand, us-east-1. Logs: 1e6 requests × 400 B + 730 h × 60,000 B = 443,800,000 B
# = 0.413321 GB (of 2^30 bytes); image pulls: 1 task × 30 starts × 0.08 GB = 2.4 GB.
TINY_LINES = {
    ("Fargate", "web: X86_64 on-demand, 0.5 vCPU"): 365 * 0.04048,  # 14.7752
    ("Fargate", "web: X86_64 on-demand, 1 GB"): 730 * 0.004445,  # 3.24485
    ("Elastic Load Balancing", "public: load balancer hours"): 730 * 0.0225,  # 16.425
    # new connections dominate: 1e6 / (730 h × 3600 s) / 25 a second, for 730 h = 11.11 LCU-h
    ("Elastic Load Balancing", "public: load balancer capacity units"): 11.1111 * 0.008,
    ("NAT Gateway", "NAT gateway hours"): 730 * 0.045,  # 32.85
    ("NAT Gateway", "data processed"): (2.4 + 0.413321) * 0.045,  # 0.1266
    ("Public IPv4", "NAT gateways' Elastic IPs"): 730 * 0.005,  # 3.65
    ("Public IPv4", "public: an address in each zone"): 2 * 730 * 0.005,  # 7.30
    ("CloudWatch Logs", "application logs ingested"): 0.413321 * 0.50,  # 0.2067
    ("CloudWatch Logs", "application logs stored"): 0.413321 * 0.03,  # 30 days kept: 0.0124
}
TINY_TOTAL = 78.68
FARGATE_TASK_X86 = 365 * 0.04048 + 730 * 0.004445  # 0.5 vCPU / 1 GB for a month: 18.02005


def tiny(**service: object) -> Spec:
    spec = parse_spec(TINY)
    web = spec.services["web"].model_copy(update=service)
    return spec.model_copy(update={"services": {"web": web}})


def amounts(result: Bill) -> dict[tuple[str, str], float]:
    return {(line.service, line.item): line.monthly for line in result.lines}


@pytest.fixture(scope="module")
def reference() -> CostReport:
    return cost_report(load_spec(REFERENCE))


def test_each_line_of_a_small_spec_to_the_cent() -> None:
    result = bill(tiny())

    assert amounts(result) == pytest.approx(TINY_LINES, abs=CENT)
    assert result.total == pytest.approx(TINY_TOTAL, abs=CENT)
    assert monthly_total(tiny()) == result.total


def test_arm64_is_cheaper_by_the_tables_ratio() -> None:
    rates = load_price_table().region("us-east-1").fargate.on_demand
    x86 = bill(tiny()).amount("Fargate")
    arm = bill(tiny(architecture="ARM64")).amount("Fargate")

    assert arm == pytest.approx(365 * 0.03238 + 730 * 0.00356, abs=CENT)  # 14.42
    ratio = (0.5 * rates["ARM64"].vcpu_hour + rates["ARM64"].gb_hour) / (
        0.5 * rates["X86_64"].vcpu_hour + rates["X86_64"].gb_hour
    )
    assert arm / x86 == pytest.approx(ratio)
    assert ratio < 0.81


def test_spot_tasks_are_priced_on_their_own_lines() -> None:
    fp = footprint(tiny(desired_count=3))
    on_spot = fp.with_services([replace(fp.services[0], spot_tasks=2)])

    lines = amounts(price(on_spot, region="us-east-1", requests_per_month=1_000_000))

    assert lines[("Fargate", "web: X86_64 on-demand, 0.5 vCPU")] == pytest.approx(14.78, abs=CENT)
    assert lines[("Fargate", "web: X86_64 Spot, 0.5 vCPU")] == pytest.approx(
        2 * 365 * 0.012144, abs=CENT
    )
    assert lines[("Fargate", "web: X86_64 Spot, 1 GB")] == pytest.approx(
        2 * 730 * 0.0013335, abs=CENT
    )


def test_spot_options_save_the_difference_on_the_tasks_beyond_the_base() -> None:
    report = cost_report(tiny(desired_count=3))
    options = {option.key: option for option in report.options}
    per_task = 365 * (0.04048 - 0.012144) + 730 * (0.004445 - 0.0013335)  # 12.6139

    assert options["spot-100"].saving == pytest.approx(2 * per_task, abs=CENT)  # 25.23
    assert options["spot-50"].saving == pytest.approx(per_task, abs=CENT)
    assert options["spot-100"].keeps_every_point


def test_spot_is_not_offered_to_arm64_services() -> None:
    keys = {option.key for option in cost_report(tiny(architecture="ARM64")).options}

    assert not keys & {"spot-50", "spot-100", "arm64"}


def test_right_sizing_halves_a_half_vcpu_task() -> None:
    options = {option.key: option for option in cost_report(tiny()).options}

    assert options["right-size"].saving == pytest.approx(FARGATE_TASK_X86 / 2, abs=CENT)  # 9.01


def test_vpc_endpoints_instead_of_the_nat_gateway_cost_more_here_and_lose_point_1() -> None:
    options = {option.key: option for option in cost_report(tiny()).options}
    endpoints = options["vpc-endpoints"]
    nat = 730 * 0.045 + (2.4 + 0.413321) * 0.045 + 730 * 0.005  # hours, data, Elastic IP
    interface = 3 * 2 * 730 * 0.01 + 0.413321 * 0.01  # ecr.api, ecr.dkr, logs in 2 zones

    assert endpoints.saving == pytest.approx(nat - interface, abs=CENT)  # -7.18
    assert endpoints.monthly == pytest.approx(TINY_TOTAL - endpoints.saving, abs=CENT)
    assert endpoints.loses_point == 1
    assert not endpoints.keeps_every_point


def tiny_network(**network: object) -> Spec:
    spec = parse_spec(TINY)
    return spec.model_copy(update={"network": spec.network.model_copy(update=network)})


def test_the_specs_own_endpoints_are_billed_and_no_nat_gateway() -> None:
    spec = tiny_network(nat_gateways=0, vpc_endpoints=["ecr.api", "ecr.dkr", "s3", "logs"])

    lines = amounts(bill(spec))

    nat_lines = {key: amount for key, amount in TINY_LINES.items() if "NAT" in " ".join(key)}
    assert not [key for key in lines if key[0] == "NAT Gateway" or "NAT" in key[1]]
    endpoint_lines = {key: amount for key, amount in lines.items() if key[0] == "VPC endpoints"}
    assert endpoint_lines == pytest.approx(
        {
            ("VPC endpoints", "interface endpoint ecr.api: hours in each zone"): 2 * 730 * 0.01,
            ("VPC endpoints", "interface endpoint ecr.dkr: hours in each zone"): 2 * 730 * 0.01,
            ("VPC endpoints", "interface endpoint logs: hours in each zone"): 2 * 730 * 0.01,
            ("VPC endpoints", "interface endpoint logs: data processed"): 0.413321 * 0.01,
            ("VPC endpoints", "gateway endpoint s3 (image layers)"): 0.0,
        },
        abs=CENT,
    )
    interface = 3 * 2 * 730 * 0.01 + 0.413321 * 0.01
    assert bill(spec).total == pytest.approx(
        TINY_TOTAL - sum(nat_lines.values()) + interface, abs=CENT
    )


def test_endpoints_next_to_a_nat_gateway_take_their_traffic_off_it() -> None:
    spec = tiny_network(vpc_endpoints=["s3"])  # layers through the free gateway endpoint

    lines = amounts(bill(spec))

    assert lines[("NAT Gateway", "data processed")] == pytest.approx(0.413321 * 0.045, abs=1e-6)
    assert lines[("VPC endpoints", "gateway endpoint s3 (image layers)")] == 0.0
    assert bill(spec).total == pytest.approx(TINY_TOTAL - 2.4 * 0.045, abs=CENT)


def test_the_endpoints_option_keeps_the_specs_endpoints_and_adds_the_missing_ones() -> None:
    spec = tiny_network(vpc_endpoints=["s3", "kms"])
    options = {option.key: option for option in cost_report(spec).options}

    # Without the NAT gateway: kms stays, ecr.api, ecr.dkr and logs are added.
    expected = price(
        replace(
            footprint(spec),
            nat_gateways=0,
            interface_endpoints=("kms", "ecr.api", "ecr.dkr", "logs"),
            gateway_endpoints=("s3",),
        ),
        region="us-east-1",
        requests_per_month=1_000_000,
    )
    assert options["vpc-endpoints"].monthly == pytest.approx(expected.total, abs=CENT)


def test_no_endpoints_option_once_the_spec_has_no_nat_gateway() -> None:
    spec = tiny_network(nat_gateways=0, vpc_endpoints=["ecr.api", "ecr.dkr", "s3", "logs"])

    assert "vpc-endpoints" not in {option.key for option in cost_report(spec).options}


def test_keeping_every_point_brings_back_a_nat_gateway_the_pulls_go_through() -> None:
    spec = tiny_network(nat_gateways=0, vpc_endpoints=["ecr.api", "ecr.dkr", "s3", "logs"])
    options = {option.key: option for option in cost_report(spec).options}
    with_nat = tiny_network(vpc_endpoints=["s3", "logs"])  # the same without ECR endpoints

    every_point = options["every-point"]
    assert every_point.keeps_every_point
    assert every_point.monthly == pytest.approx(
        {o.key: o for o in cost_report(with_nat).options}["every-point"].monthly, abs=CENT
    )


def test_options_that_change_nothing_are_not_listed() -> None:
    keys = {option.key for option in cost_report(tiny()).options}

    assert "one-load-balancer" not in keys  # one load balancer already
    assert "no-container-insights" not in keys  # off already
    assert "every-point-no-insights" not in keys  # the same as every-point


def test_use_based_lines_follow_the_requests() -> None:
    lines = amounts(bill(tiny(), requests_per_month=10_000_000))

    assert lines[("Elastic Load Balancing", "public: load balancer capacity units")] == (
        pytest.approx(111.111 * 0.008, abs=CENT)
    )


def test_another_region_uses_its_prices() -> None:
    lines = amounts(bill(tiny(), region="eu-central-1"))

    assert lines[("Fargate", "web: X86_64 on-demand, 0.5 vCPU")] == pytest.approx(
        365 * 0.04656, abs=CENT
    )
    assert lines[("NAT Gateway", "NAT gateway hours")] == pytest.approx(730 * 0.052, abs=CENT)


def test_an_unknown_region_names_the_known_ones() -> None:
    with pytest.raises(UnknownRegionError) as raised:
        bill(tiny(), region="ap-south-1")

    message = str(raised.value)
    assert "'ap-south-1'" in message
    assert "eu-central-1, eu-west-1, us-east-1, us-east-2, us-west-2" in message


def test_the_reference_system_against_the_original(reference: CostReport) -> None:
    # fargo's default: 0.25 vCPU / 0.5 GB ARM64 tasks; frontend and backend-public one
    # each; backend-private and backend-private-with-alb (at its min_capacity of 2) two
    # each, the second on Spot. us-east-1 prices per vCPU-hour and GB-hour:
    arm = 730 * (0.25 * 0.03238 + 0.5 * 0.00356)
    spot = 730 * (0.25 * 0.009714 + 0.5 * 0.001068)
    assert reference.bill.amount("Fargate") == pytest.approx(4 * arm + 2 * spot, abs=CENT)
    assert reference.original.bill.amount("Fargate") == pytest.approx(6 * FARGATE_TASK_X86)
    assert reference.bill.amount("Container Insights") == 0  # off: a cost trade-off
    assert reference.original.bill.amount("Container Insights") == pytest.approx(
        (12 + 4 * (15 + 10)) * 0.30 + 6 * 730 * 120_000 / 2**30 * 0.50, abs=CENT
    )
    # X-Ray (tracing: xray): 900,000 traces beyond the free 100,000, at 5 USD a million
    assert reference.bill.amount("X-Ray") == pytest.approx(4.50, abs=CENT)
    assert reference.bill.total == pytest.approx(117.84, abs=CENT)
    assert reference.original.bill.total == pytest.approx(221.40, abs=CENT)
    # the goal: a default at least 40 % cheaper than the original, every point kept
    assert reference.original.difference_percent == pytest.approx(-46.8, abs=0.05)


def test_the_reference_systems_options(reference: CostReport) -> None:
    options = {option.key: option for option in reference.options}

    assert options["one-load-balancer"].saving == pytest.approx(730 * 0.0225 + 0.0889, abs=CENT)
    assert options["one-load-balancer"].loses_point == 2
    # the default already is the cheapest configuration that keeps every point
    assert all(not o.keeps_every_point for o in options.values()), options


def test_container_insights_on_is_priced_as_the_option_to_turn_it_off(
    reference_spec: Spec,
) -> None:
    spec = reference_spec.model_copy(deep=True)
    spec.cluster.container_insights = True
    options = {option.key: option for option in cost_report(spec).options}
    assert options["no-container-insights"].saving == pytest.approx(33.84, abs=CENT)
    assert options["every-point-no-insights"].monthly == pytest.approx(117.84, abs=CENT)


def test_the_readme_shows_the_numbers(reference: CostReport) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for amount in (reference.original.bill.total, reference.bill.total):
        assert f"${amount:,.2f}" in readme
    assert f"−{-reference.original.difference_percent:.1f} %" in readme


def test_the_price_table_has_its_date_source_and_regions() -> None:
    table = load_price_table()

    assert {"us-east-1", "us-west-2", "eu-west-1", "eu-central-1"} <= set(table.regions)
    assert table.hours_per_month == 730
    assert all(url.startswith("https://aws.amazon.com/") for url in table.source.values())
    assert "check" in table.note
    for prices in table.regions.values():
        fargate = prices.fargate
        assert fargate.on_demand["ARM64"].vcpu_hour < fargate.on_demand["X86_64"].vcpu_hour
        assert set(fargate.spot) == {"X86_64", "ARM64"}
        for cpu in ("X86_64", "ARM64"):
            assert fargate.spot[cpu].vcpu_hour < fargate.on_demand[cpu].vcpu_hour


@pytest.fixture
def tiny_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY, encoding="utf-8")
    return path


def test_cli_prints_the_lines_options_and_comparison(
    tiny_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cost", "-f", str(tiny_file)]) == 0

    out = capsys.readouterr().out
    assert "tiny in us-east-1: USD a month (730 hours), 1,000,000 requests a month" in out
    assert "web: X86_64 on-demand, 0.5 vCPU" in out
    assert f"total: {TINY_TOTAL:.2f} USD a month" in out
    assert "VPC endpoints instead of the NAT gateway" in out
    assert "loses point 1" in out
    assert "the original's architecture (6 X86_64 tasks of 0.5 vCPU / 1 GB on-demand" in out


def test_cli_json_shape(tiny_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "-f", str(tiny_file), "--json", "--requests-per-month", "0"]) == 0

    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"spec", "prices_as_of", "prices_note", "bill", "options", "original"}
    assert data["bill"]["requests_per_month"] == 0
    assert data["bill"]["region"] == "us-east-1"
    for line in data["bill"]["lines"]:
        assert set(line) == {"service", "item", "quantity", "unit", "unit_price", "note", "monthly"}
    assert sum(line["monthly"] for line in data["bill"]["lines"]) == pytest.approx(
        data["bill"]["total"]
    )
    assert {"key", "title", "monthly", "saving", "loses_point", "keeps_every_point"} <= set(
        data["options"][0]
    )
    assert set(data["original"]) == {"description", "bill", "difference_percent"}


def test_cli_unknown_region_exits_2_with_the_known_ones(
    tiny_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cost", "-f", str(tiny_file), "--region", "ap-south-1"]) == 2

    captured = capsys.readouterr()
    assert captured.out == ""
    assert "fargo cost: no prices for region 'ap-south-1'" in captured.err
    assert "us-east-1" in captured.err


def test_cli_refuses_a_negative_request_count(
    tiny_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["cost", "-f", str(tiny_file), "--requests-per-month", "-5"])

    assert exited.value.code == 2
    assert "whole number of requests" in capsys.readouterr().err


def test_cli_missing_spec_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "-f", str(tmp_path / "none.yaml")]) == 1

    assert "none.yaml" in capsys.readouterr().err


def test_cost_loads_no_cdk() -> None:
    assert modules_loaded_by(["cost"], ("aws_cdk", "cdk_nag", "jsii")) == []


# -- Service Connect ----------------------------------------------------------------------

CONNECT = ROOT / "tests" / "e2e" / "service_connect.yaml"


def test_service_connect_bills_its_registered_tasks_and_no_hosted_zone() -> None:
    """An HTTP namespace: Cloud Map charges the endpoint's registered tasks; no Route 53 zone
    or DNS queries; the proxy is a line of its own at no charge."""
    result = bill(load_spec(CONNECT))
    lines = {(line.service, line.item): line for line in result.lines}

    registered = lines[("Cloud Map", "registered instances")]
    assert registered.quantity == 2  # backend-private's two tasks; the client registers none
    assert registered.monthly == pytest.approx(2 * 0.10, abs=CENT)
    proxy = lines[("ECS Service Connect", "proxy in each task of backend-public, backend-private")]
    assert (proxy.quantity, proxy.monthly) == (3, 0)
    assert "256 CPU units and 64 MiB" in proxy.note
    items = {item for _, item in lines}
    assert "private hosted zone of the Cloud Map namespace" not in items
    assert "discovery DNS queries" not in items


def test_service_connect_in_the_discovery_namespace_registers_a_task_twice() -> None:
    """A service with a discovery name and an endpoint is two Cloud Map instances a task."""
    spec = load_spec(REFERENCE)
    private = spec.services["backend-private"].model_copy(
        update={"service_connect": ServiceConnect(dns_name="backend.internal")}
    )
    cluster = spec.cluster.model_copy(
        update={"service_connect": ServiceConnectDefaults(namespace="microservice.local")}
    )
    connected = spec.model_copy(
        update={"cluster": cluster, "services": {**spec.services, "backend-private": private}}
    )

    before = amounts(bill(spec))[("Cloud Map", "registered instances")]
    after = amounts(bill(connected))[("Cloud Map", "registered instances")]

    assert after == pytest.approx(2 * before, abs=CENT)  # 2 tasks → 4 instances
    assert ("Route 53", "private hosted zone of the Cloud Map namespace") in amounts(
        bill(connected)
    )


def test_right_sizing_leaves_the_proxy_its_share() -> None:
    """AWS advises 256 CPU units for the proxy: a Service Connect task is not sized below
    0.5 vCPU / 1 GB, so the connect spec (already there) gets no right-size option."""
    keys = {option.key for option in cost_report(load_spec(CONNECT)).options}

    assert "right-size" not in keys


def test_xray_bills_the_traces_recorded_beyond_the_free_tier() -> None:
    traced = tiny().model_copy(update={"tracing": "xray"})
    # 1,000,000 requests over 730 h (2,628,000 s): the reservoir (1 a second) takes them
    # all; the first 100,000 a month are free, the rest 5 USD a million.
    assert amounts(bill(traced))[("X-Ray", "traces recorded")] == pytest.approx(4.50, abs=CENT)
    busy = price(footprint(traced), region="us-east-1", requests_per_month=10_000_000)
    # 2,628,000 in the reservoir + 5 % of the other 7,372,000 = 2,996,600 traces
    expected = (2_628_000 + 0.05 * 7_372_000 - 100_000) / 1e6 * 5.0
    assert amounts(busy)[("X-Ray", "traces recorded")] == pytest.approx(expected, abs=CENT)
    assert ("X-Ray", "traces recorded") not in amounts(bill(tiny()))  # tracing: off
