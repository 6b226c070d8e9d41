"""Listener rule conditions as Caddy request matchers (pure functions).

    matcher_set(rule.conditions)
    # {"path_regexp": {"pattern": "(?s)^(?:/api/.*)$"}, "method": ["GET"]}

The patterns come from `fargo.spec.routing`, which `decide` uses too, so the twin's
data plane and its evaluator cannot drift on wildcard handling.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from fargo.spec import routing
from fargo.spec.elb import RuleCondition

JSON = dict[str, Any]


def matcher_set(conditions: Sequence[RuleCondition]) -> JSON:
    """One Caddy matcher set that holds when every condition holds.

    A matcher set ANDs its matchers but takes one of each kind, and a ``vars_regexp``
    with several keys ORs them; so a second condition of a kind goes one level down,
    into ``not: [{not: [...]}]``, which is its plain truth value.
    """
    return _merge([condition_matcher(c) for c in conditions])


def condition_matcher(condition: RuleCondition) -> JSON:
    """One condition as a single-matcher fragment ``{matcher: config}``."""
    if condition.path_pattern is not None:
        return {
            "path_regexp": {
                "pattern": _anchored(routing.path_pattern_regex(condition.path_pattern))
            }
        }
    if condition.host_header is not None:
        # ALB matches "example.com." as "example.com" (routing.host_name).
        regex = _anchored(routing.host_header_regex(condition.host_header), suffix=r"\.?")
        return {"vars_regexp": {"{http.request.host}": {"pattern": regex}}}
    if condition.http_header is not None:
        regex = _anchored(routing.http_header_regex(condition.http_header.values))
        return {"header_regexp": {condition.http_header.name: {"pattern": regex}}}
    if condition.http_request_method is not None:
        return {"method": list(condition.http_request_method)}
    if condition.query_string is not None:
        regex = routing.raw_query_regex(condition.query_string)
        return {"vars_regexp": {"{http.request.uri.query}": {"pattern": regex}}}
    if condition.source_ip is not None:
        return {"remote_ip": {"ranges": list(condition.source_ip)}}
    raise ValueError(f"condition without a field: {condition!r}")


def _anchored(regex: str, suffix: str = "") -> str:
    """``(?flags)(?:…)`` → ``(?flags)^(?:…)$``: Caddy searches, `routing` full-matches.

    The `routing` functions return one group after the flags, so anchoring it is safe;
    ``suffix`` (a regex) may follow the group.
    """
    flags = re.match(r"^\(\?[a-z]+\)", regex)
    prefix = flags.group(0) if flags else ""
    return f"{prefix}^{regex[len(prefix) :]}{suffix}$"


def _merge(fragments: Sequence[JSON]) -> JSON:
    merged: JSON = {}
    deeper: list[JSON] = []
    for fragment in fragments:
        ((kind, config),) = fragment.items()
        if kind not in merged:
            merged[kind] = config
        elif kind == "header_regexp" and not merged[kind].keys() & config.keys():
            # header_regexp ANDs its fields, so distinct headers share one matcher.
            merged[kind] = {**merged[kind], **config}
        else:
            deeper.append(fragment)
    if deeper:
        merged["not"] = [{"not": [_merge(deeper)]}]
    return merged
