"""Symbolic references (fargo.spec.refs): parsed, split and resolved."""

from __future__ import annotations

from fargo.spec.refs import Reference, references, resolve, split

URL = "http://${lb:internal.dns_name}:8090/${discovery:private.backend}"


def test_references_name_kind_resource_and_attribute() -> None:
    lb, discovery = references(URL)

    assert (lb.kind, lb.name, lb.attribute, lb.text) == (
        "lb",
        "internal",
        "dns_name",
        "${lb:internal.dns_name}",
    )
    # A discovery name may itself contain dots; only load balancer targets carry an attribute.
    assert (discovery.kind, discovery.name, discovery.attribute) == (
        "discovery",
        "private.backend",
        "",
    )


def test_split_keeps_literal_text_and_references_in_order() -> None:
    assert split(URL) == [
        "http://",
        Reference("lb", "internal.dns_name", "${lb:internal.dns_name}"),
        ":8090/",
        Reference("discovery", "private.backend", "${discovery:private.backend}"),
    ]
    assert split("no references") == ["no references"]


def test_resolve_replaces_each_reference() -> None:
    resolved = resolve(URL, lambda ref: f"<{ref.kind}:{ref.name}>")

    assert resolved == "http://<lb:internal>:8090/<discovery:private.backend>"
    assert resolve("$HOME and ${not a ref}", lambda ref: "X") == "$HOME and ${not a ref}"
