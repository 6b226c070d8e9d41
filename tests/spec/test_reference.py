"""The reference fargo.yaml is valid and holds every fact of DESIGN.md §1's table."""

from __future__ import annotations

from pathlib import Path

import pytest

from fargo.spec import Spec, load_spec, refs


@pytest.fixture(scope="module")
def spec(root: Path) -> Spec:
    return load_spec(root / "fargo.yaml")


def test_network_spans_two_zones_with_public_and_private_subnets(spec: Spec) -> None:
    network = spec.network

    assert str(network.cidr) == "10.0.0.0/16"
    assert network.availability_zones == 2
    assert len(network.subnets.public) == len(network.subnets.private) == 2
    assert network.nat_gateways >= 1


def test_four_services_with_their_ports_and_desired_counts(spec: Spec) -> None:
    assert {name: (svc.port, svc.desired_count) for name, svc in spec.services.items()} == {
        "frontend": (80, 1),
        "backend-public": (8080, 1),
        "backend-private": (8090, 2),
        "backend-private-with-alb": (8090, 2),
    }


def test_task_size_and_rolling_deployment(spec: Spec) -> None:
    for svc in spec.services.values():  # fargo's default size; the original ran 512/1024
        assert (svc.cpu, svc.memory) == (256, 512)
        assert (svc.min_healthy_percent, svc.max_percent) == (100, 200)


def test_container_insights_off_and_images_scanned_on_push(spec: Spec) -> None:
    assert spec.cluster.container_insights is False  # a cost trade-off (README, fargo cost)
    assert spec.images, "no images"
    assert all(image.scan_on_push for image in spec.images.values())


def test_each_image_has_its_own_repository_and_backend_private_runs_twice_from_one(
    spec: Spec,
) -> None:
    assert set(spec.images) == {"frontend", "backend-public", "backend-private"}
    assert len({image.dockerfile for image in spec.images.values()}) == len(spec.images)
    assert spec.services["backend-private"].image == "backend-private"
    assert spec.services["backend-private-with-alb"].image == "backend-private"


def test_public_https_listener_defaults_to_frontend_and_routes_api_to_backend_public(
    spec: Spec,
) -> None:
    public = spec.load_balancers["public"]
    [https] = [listener for listener in public.listeners if listener.protocol == "HTTPS"]

    assert public.scheme == "internet-facing"
    assert public.certificate is not None
    assert https.ssl_policy != "ELBSecurityPolicy-2016-08"
    assert https.default_action.forward == "frontend"
    assert spec.services_in("frontend") == ["frontend"]
    [rule] = https.rules
    assert rule.priority == 1
    assert [c.path_pattern for c in rule.conditions] == [["/api/*"]]
    assert rule.action.forward == "backend-public"
    assert spec.services_in("backend-public") == ["backend-public"]


def test_public_http_listener_redirects_to_https(spec: Spec) -> None:
    [http] = [lst for lst in spec.load_balancers["public"].listeners if lst.protocol == "HTTP"]

    assert http.port == 80
    redirect = http.default_action.redirect
    assert redirect is not None
    assert (redirect.protocol, redirect.port, redirect.status_code) == ("HTTPS", "443", "HTTP_301")


def test_internal_load_balancer_listens_on_8090_for_backend_private_with_alb(spec: Spec) -> None:
    internal = spec.load_balancers["internal"]
    [listener] = internal.listeners

    assert internal.scheme == "internal"
    assert (listener.port, listener.protocol) == (8090, "HTTP")
    assert listener.default_action.forward == "backend-private-with-alb"
    assert spec.services_in("backend-private-with-alb") == ["backend-private-with-alb"]


def test_backend_private_with_alb_scales_between_two_and_four(spec: Spec) -> None:
    # The original scaled from 1; at rest the internal ALB must balance over two (point 4).
    scaling = spec.services["backend-private-with-alb"].autoscaling

    assert scaling is not None
    assert (scaling.min_capacity, scaling.max_capacity) == (2, 4)


def test_backend_private_registers_in_cloud_map(spec: Spec) -> None:
    assert spec.discovery is not None
    assert spec.discovery.namespace == "microservice.local"
    [service] = spec.discovery.services

    assert service.name == "private.backend"
    assert (service.ttl, service.routing_policy, service.record_types) == (60, "MULTIVALUE", ["A"])
    assert spec.services["backend-private"].discovery == "private.backend"
    assert spec.discovery.fqdn(service.name) == "private.backend.microservice.local"


def test_every_backend_health_check_is_get_slash_200(spec: Spec) -> None:
    for group in spec.target_groups.values():
        assert (group.health_check.path, group.health_check.matcher) == ("/", "200")
    for svc in spec.services.values():
        assert svc.health_check.path == "/"


def test_backend_public_reaches_its_callees_by_reference_not_by_hostname(spec: Spec) -> None:
    env = spec.services["backend-public"].environment
    assert spec.discovery is not None
    names = {"discovery": spec.discovery.fqdn, "lb": lambda name: f"{name}.elb.test"}

    def lookup(ref: refs.Reference) -> str:
        return names[ref.kind](ref.name)

    assert {key: refs.resolve(value, lookup) for key, value in env.items()} == {
        "PRIVATE_DISCOVERY_URL": "http://private.backend.microservice.local:8090",
        "PRIVATE_ALB_URL": "http://internal.elb.test:8090",
    }
    # Without its references, no value names a host: nothing is hard-coded.
    for value in env.values():
        assert refs.REFERENCE.sub("", value) == "http://:8090"
