"""Every acknowledged rule is listed once, in code, with a reason a reviewer can judge."""

from __future__ import annotations

from fargo.cloud.acknowledgements import ACKNOWLEDGEMENTS, Acknowledgement


def test_every_acknowledgement_has_a_reason_in_sentences() -> None:
    assert ACKNOWLEDGEMENTS
    for ack in ACKNOWLEDGEMENTS:
        assert len(ack.reason) >= 60, ack.rule
        assert ack.reason.endswith("."), ack.rule


def test_rules_are_listed_once() -> None:
    keys = [(ack.rule, ack.finding) for ack in ACKNOWLEDGEMENTS]
    assert len(keys) == len(set(keys))


def test_tool_is_told_by_the_rule_id() -> None:
    assert Acknowledgement("AwsSolutions-S1", "x").tool == "cdk-nag"
    assert Acknowledgement("CKV_AWS_2", "x").tool == "checkov"
    assert Acknowledgement("AwsSolutions-IAM5", "x", "Resource::*").nag_id == (
        "AwsSolutions::AwsSolutions-IAM5[Resource::*]"
    )


def test_docs_list_every_acknowledgement() -> None:
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "cloud.md").read_text()
    for ack in ACKNOWLEDGEMENTS:
        assert f"`{ack.rule}" in docs, ack.rule
