"""ALB listener-rule semantics as a pure evaluator, and the pattern translation it shares.

`decide` answers "which action does this listener take for this request?" straight
from the spec, the way the ELBv2 documentation describes it:

    decision = decide(listener, Request(method="GET", path="/api/public", host="fargo.example.com"))
    decision.priority        # 1 (the matched rule), or None for the default action
    decision.target_groups   # [("backend-public", 1)]

- rules are evaluated by ascending priority, the default action last;
- the conditions of a rule are AND'ed, the values of one condition OR'ed;
- ``path-pattern``: the whole path, case-sensitive, ``*`` any run of characters,
  ``?`` exactly one; the query string is not part of it;
- ``host-header``: the host name without port and without a trailing dot (``example.com.``
  is ``example.com``), case-insensitive, same wildcards;
- ``http-header``: header name and values case-insensitive, same wildcards; any
  value of a repeated header may match;
- ``http-request-method``: exact and case-sensitive, no wildcards;
- ``query-string``: any ``key=value`` pair of the query (percent-decoded), key
  optional, case-insensitive, same wildcards, ``\\*`` and ``\\?`` are literal;
- ``source-ip``: the address of the connecting client (never ``X-Forwarded-For``).

`fargo.local.caddy.config` renders the same conditions to Caddy matchers through
the translation below (`glob_regex` and friends), so the twin's data plane and this
evaluator cannot drift on wildcard handling; ``tests/local/test_routing_parity.py``
checks real Caddy against `decide`, and the cloud side checks the synthesized
template against it.

The regular expressions use the subset of syntax where Go's RE2 (Caddy) and
Python's ``re`` agree: ``(?is)`` flags, ``(?:…)``, ``|``, ``.``, ``*``, classes and
backslash-escaped ASCII punctuation.
"""

from __future__ import annotations

import ipaddress
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote

from fargo.spec.elb import Action, Listener, QueryStringPair, Request, RuleCondition

# Characters that mean something in a regular expression; all are ASCII punctuation,
# which both RE2 and Python accept backslash-escaped.
_PUNCTUATION = frozenset(string.punctuation)

# What the wildcards stand for in each place a pattern is matched.
ANY = ".*"
ONE = "."
# In a raw query string: a wildcard never crosses a pair ('&') nor, in a key, the '='.
QUERY_KEY_ANY = "[^&=]*"
QUERY_VALUE_ANY = "[^&]*"
QUERY_KEY_ONE = "(?:%[0-9a-f]{2}|[^&=%])"
QUERY_VALUE_ONE = "(?:%[0-9a-f]{2}|[^&%])"


@dataclass(frozen=True)
class Decision:
    """The rule that matched (``priority`` None: the listener's default action) and its action."""

    priority: int | None
    action: Action
    conditions: tuple[RuleCondition, ...] = ()

    @property
    def target_groups(self) -> list[tuple[str, int]]:
        """(target group, weight) of a forward action; empty for redirect and fixed-response."""
        return [(w.target_group, w.weight) for w in self.action.weighted_target_groups()]

    def describe(self) -> str:
        """One line for people, e.g. ``rule 1 (path-pattern /api/*) → forward backend-public``."""
        if self.priority is None:
            rule = "default action"
        else:
            rule = f"rule {self.priority} ({'; '.join(map(describe_condition, self.conditions))})"
        return f"{rule} → {describe_action(self.action)}"


def describe_condition(condition: RuleCondition) -> str:
    kind = condition.field.replace("_", "-")
    if condition.http_header is not None:
        values = [f"{condition.http_header.name}: {v}" for v in condition.http_header.values]
    elif condition.query_string is not None:
        values = [f"{p.key}={p.value}" if p.key else p.value for p in condition.query_string]
    else:
        values = list(getattr(condition, condition.field))
    return f"{kind} {' | '.join(values)}"


def describe_action(action: Action) -> str:
    if action.redirect is not None:
        r = action.redirect
        status = r.status_code.removeprefix("HTTP_")
        return f"redirect {status} to {r.protocol}://{r.host}:{r.port}{r.path}?{r.query}"
    if action.fixed_response is not None:
        return f"fixed-response {action.fixed_response.status_code}"
    groups = action.weighted_target_groups()
    if len(groups) == 1:
        return f"forward {groups[0].target_group}"
    return "forward " + ", ".join(f"{w.target_group} (weight {w.weight})" for w in groups)


def decide(listener: Listener, request: Request) -> Decision:
    """The action ``listener`` takes for ``request``: the first rule that matches, else default."""
    for rule in listener.rules_by_priority():
        if all(condition_matches(c, request) for c in rule.conditions):
            return Decision(rule.priority, rule.action, tuple(rule.conditions))
    return Decision(None, listener.default_action)


def condition_matches(condition: RuleCondition, request: Request) -> bool:
    """Whether one rule condition holds for ``request`` (its values OR'ed)."""
    if condition.path_pattern is not None:
        return _fullmatch(path_pattern_regex(condition.path_pattern), request.path)
    if condition.host_header is not None:
        return _fullmatch(host_header_regex(condition.host_header), host_name(request.host))
    if condition.http_header is not None:
        name = condition.http_header.name.lower()
        regex = http_header_regex(condition.http_header.values)
        return any(_fullmatch(regex, v) for n, v in request.headers if n.lower() == name)
    if condition.http_request_method is not None:
        return request.method in condition.http_request_method
    if condition.query_string is not None:
        pairs = query_pairs(request.query)
        return any(_pair_matches(p, pairs) for p in condition.query_string)
    if condition.source_ip is not None:
        address = ipaddress.ip_address(request.source_ip)
        return any(address in ipaddress.ip_network(c, strict=False) for c in condition.source_ip)
    raise ValueError(f"condition without a field: {condition!r}")


# -- pattern translation, shared with fargo.local.caddy.config ------------------------------


def escape(text: str) -> str:
    """``text`` as a literal in both RE2 and Python ``re``."""
    return "".join("\\" + ch if ch in _PUNCTUATION else ch for ch in text)


def glob_regex(
    pattern: str,
    *,
    any_run: str = ANY,
    one: str = ONE,
    literal: Callable[[str], str] = escape,
    backslash_escapes: bool = False,
) -> str:
    """The regular expression (unanchored, no flags) of an ALB wildcard pattern.

    ``*`` becomes ``any_run``, ``?`` becomes ``one``; every other character is literal
    (rendered by ``literal``, e.g. `raw_query_literal`). With
    ``backslash_escapes``, ``\\x`` stands for a literal ``x`` (query-string values).
    """
    out = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "*":
            out.append(any_run)
        elif ch == "?":
            out.append(one)
        elif ch == "\\" and backslash_escapes:
            out.append(literal(next(chars, "\\")))
        else:
            out.append(literal(ch))
    return "".join(out)


def raw_query_literal(ch: str) -> str:
    """One literal character of a query pattern, as it may appear in the raw query string.

    A client may send a character as itself or percent-encoded, so ``a`` matches
    ``a`` or ``%61`` (the caller adds ``(?i)`` for the hex digits and for the
    case-insensitive comparison ALB does).
    """
    encoded = "".join(f"%{byte:02x}" for byte in ch.encode())
    return f"(?:{escape(ch)}|{encoded})"


def alternatives(regexes: Sequence[str]) -> str:
    return "(?:" + "|".join(regexes) + ")"


def path_pattern_regex(patterns: Sequence[str]) -> str:
    """Case-sensitive, whole path (anchor it, or use ``re.fullmatch``)."""
    return "(?s)" + _any_glob(patterns)


def host_header_regex(patterns: Sequence[str]) -> str:
    return "(?is)" + _any_glob(patterns)


def http_header_regex(patterns: Sequence[str]) -> str:
    return "(?is)" + _any_glob(patterns)


def raw_query_regex(pairs: Sequence[QueryStringPair]) -> str:
    """A search (not whole-string) regex over the raw query string for a query-string condition.

    It finds one ``&``-separated pair whose percent-decoded key and value match,
    which is what `condition_matches` checks on the decoded pairs. A pair without
    ``=`` has an empty value.
    """
    options = []
    for pair in pairs:
        key = (
            QUERY_KEY_ANY
            if pair.key is None
            else _raw_query_glob(pair.key, any_run=QUERY_KEY_ANY, one=QUERY_KEY_ONE)
        )
        value = _raw_query_glob(pair.value, any_run=QUERY_VALUE_ANY, one=QUERY_VALUE_ONE)
        forms = [f"{key}={value}"]
        if _matches_empty(pair.value):
            # "?flag" is the pair (flag, ""); the bare key must not be empty itself.
            nonempty_any = pair.key is None or _matches_empty(pair.key)
            forms.append("[^&=]+" if nonempty_any else key)
        options.append(alternatives(forms))
    return "(?i)(?:^|&)" + alternatives(options) + "(?:&|$)"


def query_pairs(query: str) -> list[tuple[str, str]]:
    """The percent-decoded (key, value) pairs of a raw query string; empty pieces are skipped."""
    pairs = []
    for piece in query.split("&"):
        if piece:
            key, _, value = piece.partition("=")
            pairs.append((unquote(key, errors="replace"), unquote(value, errors="replace")))
    return pairs


def host_name(host: str) -> str:
    """The Host header without its port (``[::1]:8443`` → ``::1``) and without the trailing
    dot of a fully qualified name (``example.com.:80`` → ``example.com``), as ALB matches it."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    name = host.rpartition(":")[0] if host.count(":") == 1 else host
    return name.removesuffix(".")


def _any_glob(patterns: Sequence[str]) -> str:
    return alternatives([glob_regex(p) for p in patterns])


def _raw_query_glob(pattern: str, *, any_run: str, one: str) -> str:
    """A query-string key or value pattern, over the raw (maybe percent-encoded) query."""
    return glob_regex(
        pattern, any_run=any_run, one=one, literal=raw_query_literal, backslash_escapes=True
    )


def _pair_matches(condition: QueryStringPair, pairs: Sequence[tuple[str, str]]) -> bool:
    value = _decoded_glob(condition.value)
    key = None if condition.key is None else _decoded_glob(condition.key)
    return any((key is None or _fullmatch(key, k)) and _fullmatch(value, v) for k, v in pairs)


def _decoded_glob(pattern: str) -> str:
    return "(?is)" + glob_regex(pattern, backslash_escapes=True)


def _matches_empty(pattern: str) -> bool:
    return set(pattern) <= {"*"}


@lru_cache(maxsize=1024)
def _compiled(regex: str) -> re.Pattern[str]:
    return re.compile(regex)


def _fullmatch(regex: str, text: str) -> bool:
    return _compiled(regex).fullmatch(text) is not None
