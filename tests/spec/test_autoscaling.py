"""Autoscaling on requests in the spec (fargo.spec.autoscaling): which target group a request
count policy counts, and each way to get that wrong, located in the file."""

from __future__ import annotations

import pytest

from fargo.spec import parse_spec
from fargo.spec.autoscaling import request_target_group

SCALING = "autoscaling: {min_capacity: 1, max_capacity: 3}"


def scaling(**fields: object) -> str:
    extra = "".join(f", {key}: {value}" for key, value in fields.items())
    return f"autoscaling: {{min_capacity: 1, max_capacity: 3{extra}}}"


def test_a_service_in_one_target_group_counts_that_one(shop) -> None:
    spec = parse_spec(shop.edit(SCALING, scaling(target_requests_per_target=600)).text)

    scaled = spec.services["api"].autoscaling
    assert scaled is not None and scaled.target_requests_per_target == 600
    assert scaled.target_cpu_utilization == 70  # still on, unless null
    assert request_target_group(spec.services["api"]) == "api"


def test_a_service_in_several_target_groups_counts_the_one_it_names(shop) -> None:
    text = (
        shop.edit("target_groups: [api]", "target_groups: [api, web]")
        .edit(SCALING, scaling(target_requests_per_target=600, target_group="web"))
        .text
    )

    assert request_target_group(parse_spec(text).services["api"]) == "web"


def test_without_a_request_count_policy_no_group_is_counted(shop) -> None:
    assert request_target_group(parse_spec(shop.text).services["api"]) is None


AT = "services.api.autoscaling"
CASES = {
    "no target group to count": (
        [("    target_groups: [api]\n", "")],
        f"{AT}.target_requests_per_target",
        "target_requests_per_target tracks the requests of a target group "
        "(ALBRequestCountPerTarget), and service 'api' registers in none",
        "put the service in a target group (services.api.target_groups), or scale on "
        "target_cpu_utilization instead",
    ),
    "several target groups, none named": (
        [("target_groups: [api]", "target_groups: [api, web]")],
        f"{AT}.target_requests_per_target",
        "service 'api' registers in target groups api, web; target_requests_per_target "
        "counts the requests of one of them",
        "name it in autoscaling, e.g. target_group: api",
    ),
    "a target group the service is not in": (
        [("600}", "600, target_group: web}")],
        f"{AT}.target_group",
        "service 'api' does not register in target group 'web', so its tasks take none of "
        "that group's requests",
        "use one of the service's target_groups: api",
    ),
}


@pytest.mark.parametrize(("edits", "field", "message", "hint"), CASES.values(), ids=CASES.keys())
def test_a_request_count_policy_needs_one_target_group_of_its_service(
    shop, edits: list[tuple[str, str]], field: str, message: str, hint: str
) -> None:
    bad = shop.edit(SCALING, scaling(target_requests_per_target=600))
    for old, new in edits:
        bad = bad.edit(old, new)

    [problem] = bad.problems()

    assert (problem.field_path, problem.message, problem.hint) == (field, message, hint)
    key = "target_group: web" if field.endswith("target_group") else "target_requests_per_target"
    where = bad.at(key)
    assert problem.render(bad.name) == f"shop.yaml:{where}: {field}: {message} ({hint})"


def test_a_target_group_without_a_request_count_policy_is_refused(shop) -> None:
    bad = shop.edit(SCALING, scaling(target_group="api"))

    assert bad.rendered() == [
        f"shop.yaml:{bad.at('target_group: api')}: {AT}.target_group: target_group names the "
        "target group whose requests target_requests_per_target counts, and that is not set "
        "(set target_requests_per_target, or remove target_group)"
    ]


def test_requests_per_target_is_at_least_one(shop) -> None:
    bad = shop.edit(SCALING, scaling(target_requests_per_target=0))

    [problem] = bad.problems()

    assert problem.field_path == f"{AT}.target_requests_per_target"
    assert "greater than or equal to 1" in problem.message


def test_a_request_count_policy_counts_a_group_one_load_balancer_forwards_to(shop) -> None:
    """ALBRequestCountPerTarget is one load balancer's requests to the group (its
    ResourceLabel names both): a group two load balancers forward to has no such count."""
    inner = (
        "  inner:\n    scheme: internal\n    listeners:\n"
        "      - port: 8080\n        protocol: HTTP\n        default_action: {forward: api}\n"
        "services:\n  web:\n"
    )
    bad = shop.edit(SCALING, scaling(target_requests_per_target=600))
    bad = bad.edit("services:\n  web:\n", inner)

    mine = [p for p in bad.problems() if p.field_path == f"{AT}.target_requests_per_target"]

    assert [p.message for p in mine] == [
        "ALBRequestCountPerTarget counts the requests one load balancer forwards to target "
        "group 'api', and load balancers forwarding to it: edge, inner"
    ]
