"""Every mistake in one run: after a field error, the cross-checks still run on the rest
(fargo.spec.salvage), and say nothing about the broken parts."""

from __future__ import annotations

import pytest

from fargo.spec import SpecInvalid, check_spec_text

RULES = "load_balancers.edge.listeners[0].rules"
SECOND_RULE = """            action: {forward: api}
          - priority: 20
            conditions: [{path_pattern: ["/v2/*"]}]
            action: {forward: wbe}
"""


def test_a_type_error_does_not_hide_an_unknown_reference_beside_it(shop) -> None:
    bad = shop.edit("desired_count: 2", "desired_count: two").edit("image: api", "image: apii")

    assert bad.rendered() == [
        f"shop.yaml:{bad.at('image: apii')}: services.api.image: no image named 'apii' "
        "(did you mean 'api'?)",
        f"shop.yaml:{bad.at('desired_count: two')}: services.api.desired_count: Input should "
        "be a valid integer, unable to parse string as an integer; found 'two'",
    ]


def test_type_errors_and_every_kind_of_cross_check_in_one_run(shop) -> None:
    bad = (
        shop.edit("10.20.11.0/24]", "10.21.11.0/24]")  # subnet outside the VPC
        .edit("ttl: 10", "ttl: ten")  # a type error
        .edit("memory: 512", "memory: 4096")  # no such Fargate size
        .edit(SECOND_RULE.splitlines()[0] + "\n", SECOND_RULE.replace("20", "10"))  # priority
        .edit("retention_days: 14", "retention_days: [14]")  # another type error
    )

    assert [(p.field_path, f"{p.line}:{p.column}") for p in bad.problems()] == [
        ("network.subnets.private[1]", bad.at("10.21.11.0/24")),
        ("discovery.services[0].ttl", bad.at("ttl: ten")),
        (f"{RULES}[1].priority", bad.at("priority: 10\n            conditions: [")),
        (f"{RULES}[1].action.forward", bad.at("forward: wbe")),
        ("services.api.memory", bad.at("memory: 4096")),
        ("logging.retention_days", bad.at("retention_days: [14]")),
    ]


def test_a_broken_list_item_keeps_the_others_at_their_own_index(shop) -> None:
    # Rule 0 loses its required priority, so it is left out; rule 1 is still rules[1].
    bad = shop.edit(SECOND_RULE.splitlines()[0] + "\n", SECOND_RULE).edit(
        "priority: 10", "priority: first"
    )

    assert [(p.field_path, p.message) for p in bad.problems()] == [
        (
            f"{RULES}[0].priority",
            "Input should be a valid integer, unable to parse string as an integer; found 'first'",
        ),
        (f"{RULES}[1].action.forward", "no target group named 'wbe'"),
    ]


def test_a_subnet_with_host_bits_does_not_hide_one_outside_the_vpc(shop) -> None:
    bad = shop.edit("10.20.10.0/24,", "10.20.10.9/24,").edit("10.20.11.0/24]", "10.99.11.0/24]")

    assert [(p.field_path, p.message) for p in bad.problems()] == [
        (
            "network.subnets.private[0]",
            "10.20.10.9/24 has host bits set; did you mean 10.20.10.0/24?",
        ),
        ("network.subnets.private[1]", "subnet 10.99.11.0/24 is outside the VPC CIDR 10.20.0.0/16"),
    ]


def test_references_to_a_broken_entry_are_not_called_unknown(shop) -> None:
    # Service api lacks its required image: it is left out, and web still calls it, and
    # target group api's own health check is broken: neither is "no ... named".
    bad = (
        shop.edit("    image: api\n", "")
        .edit("    target_groups: [web]\n", "    target_groups: [web]\n    calls: [api]\n")
        .edit("health_check: {path: /health}", "health_check: {path: health}")
    )

    assert [(p.field_path, p.message) for p in bad.problems()] == [
        ("target_groups.api.health_check.path", "String should match pattern '^/'; found 'health'"),
        ("services.api.image", "missing required field 'image'"),
    ]


def test_what_stands_in_for_a_removed_field_is_not_reported(shop) -> None:
    # cpu is unreadable: its default (256) must not make memory 4096 "no such size".
    bad = shop.edit("cpu: 256", "cpu: lots").edit("memory: 512", "memory: 4096")

    assert [p.field_path for p in bad.problems()] == ["services.api.cpu"]


def test_a_broken_top_level_section_reports_its_own_errors(shop) -> None:
    bad = shop.edit("  cidr: 10.20.0.0/16\n", "  cidr: big\n").edit("image: api", "image: apii")

    # Without a network nothing sensible is left to cross-check: the field error alone.
    assert [p.field_path for p in bad.problems()] == ["network.cidr"]


def test_the_clouds_problems_join_the_field_errors(shop) -> None:
    bad = shop.edit("desired_count: 2", "desired_count: two")

    with pytest.raises(SpecInvalid) as caught:
        check_spec_text(bad.text, bad.name, world="cloud")

    assert [p.field_path for p in caught.value.problems] == [
        "load_balancers.edge.certificate",  # ACM cannot validate without a hosted zone
        "services.api.desired_count",
    ]


def test_a_missing_required_number_gets_a_stand_in_so_its_service_is_checked(shop) -> None:
    bad = shop.edit("    port: 9000\n", "").edit("image: api", "image: apii")

    assert [(p.field_path, p.message) for p in bad.problems()] == [
        ("services.api.port", "missing required field 'port'"),  # at services.api:
        ("services.api.image", "no image named 'apii'"),
    ]
