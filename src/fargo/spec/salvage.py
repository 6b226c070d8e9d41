"""What still validates in a spec with field errors, so its cross-checks run too.

One field of the wrong type makes pydantic refuse the whole spec, and the checks
that need a whole model (unknown references, subnets, priorities, Fargate sizes)
would not run: a spec with two mistakes would show one. `salvage` removes each
broken part from a copy of the document — the field itself; if that field is
required, a stand-in (a required number or choice: its lowest allowed value) or else
the part holding it (say, one list item or one service), and so on up — until the
rest validates. The loader runs the cross-checks on that rest and keeps what they find
outside the removed parts (`Salvaged.keeps`), in the original file's coordinates
(`Salvaged.original`).

    salvaged = salvage(document)           # None: nothing sensible is left to check
    problems = [salvaged.original(p) for p in check(salvaged.spec) if salvaged.keeps(p)]

A problem beside a removed field of a model is dropped too, unless it is about a
reference: the field's default or stand-in takes its place (a removed ``cpu`` is 256
for the rest), so what the checks say next to it may be about a value the file does
not hold; it waits for the next run. A reference to a removed entry is not called
unknown: the entry's own error says what is wrong.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import annotated_types
from pydantic import ValidationError

from fargo.spec import fields
from fargo.spec.errors import Loc, Problem
from fargo.spec.model import Spec

# Enough to climb from the deepest field of a spec to its top level.
MAX_ROUNDS = 12
# Top-level mappings whose keys are names other parts of the spec refer to.
NAMED = frozenset({"images", "target_groups", "load_balancers", "services"})
_ABSENT = object()
# In `Salvaged.names`: a removed entry whose name is unreadable, so any name may be it.
ANY_NAME = "*"


@dataclass(frozen=True)
class Salvaged:
    """The spec without its broken parts, and what was removed (original coordinates)."""

    spec: Spec
    removed: tuple[Loc, ...]
    # For each list something was removed from (by its original path): the original
    # index of each item left, in order.
    kept_indices: Mapping[Loc, tuple[int, ...]] = field(default_factory=dict)
    # Names of removed entries (a service, a target group...): a reference to one is
    # not unknown, only broken, and its entry's own error says so. Kinds are not told
    # apart: a namesake of another kind may go unreported while the spec has errors.
    names: frozenset[str] = frozenset()

    def original(self, problem: Problem) -> Problem:
        """``problem`` with its location in the original document's coordinates."""
        return replace(problem, loc=_to_original(problem.loc, self.kept_indices))

    def keeps(self, problem: Problem) -> bool:
        """Whether ``problem`` (in the salvaged spec's coordinates) is about a part the file
        holds as written: not a removed part, not beside one, not a reference to one."""
        if problem.refers_to is not None and {problem.refers_to, ANY_NAME} & self.names:
            return False
        loc = _to_original(problem.loc, self.kept_indices)
        for removed in self.removed:
            if loc[: len(removed)] == removed or removed[: len(loc)] == loc:
                return False  # in a removed part, or about a part that holds one
            beside = len(loc) >= len(removed) and loc[: len(removed) - 1] == removed[:-1]
            if beside and problem.refers_to is None and _defaulted(removed):
                return False  # the removed field's default stands in for it: not the file's
        return True


def salvage(document: Mapping[str, Any]) -> Salvaged | None:
    """The largest part of ``document`` that validates, or None when only its top level
    would be left (a required section itself is broken)."""
    removed: list[Loc] = []
    # A required number or choice that is broken or missing gets a stand-in (its lowest
    # allowed value), so one bad port does not take its whole service out of the checks.
    stand_ins: dict[Loc, object] = {}
    for _ in range(MAX_ROUNDS):
        kept_indices: dict[Loc, tuple[int, ...]] = {}
        pruned = _without(document, removed, stand_ins, (), kept_indices)
        try:
            spec = Spec.model_validate(pruned)
        except ValidationError as err:
            more = _to_remove(err, pruned, document, removed, stand_ins, kept_indices)
            if more is None:
                return None
            removed += more
            continue
        gone = (*removed, *(loc for loc in stand_ins if loc not in removed))
        return Salvaged(spec, gone, kept_indices, _names(document, removed))
    return None


def data_loc(loc: Sequence[str | int], document: Any) -> Loc:
    """A pydantic error location without its union tags and key markers: the keys and
    indices of the file (a missing field's name ends it)."""
    out: list[str | int] = []
    node: Any = document
    for part in loc:
        if isinstance(node, Mapping) and part in node:
            node = node[part]
            out.append(part)
        elif isinstance(node, list) and isinstance(part, int):
            node = node[part] if part < len(node) else None
            out.append(part)
        elif isinstance(node, Mapping) and isinstance(part, str) and not is_tag(part):
            node = None
            out.append(part)
    return tuple(out)


def is_tag(part: str) -> bool:
    """Whether a pydantic location part names a union branch or a key, not a field."""
    return part[:1].isupper() or part in {"str", "int", "bool", "[key]"} or part.endswith("[key]")


def _defaulted(removed: Loc) -> bool:
    """Whether a removed part is a model's field (whose default then stands in for it),
    rather than a list item, a named entry or a top-level section (whose siblings do not
    depend on one another)."""
    return (
        len(removed) >= 2
        and isinstance(removed[-1], str)
        and not (len(removed) == 2 and removed[0] in NAMED)
    )


def _to_remove(
    err: ValidationError,
    pruned: Any,
    document: Mapping[str, Any],
    removed: Sequence[Loc],
    stand_ins: dict[Loc, object],
    kept_indices: Mapping[Loc, tuple[int, ...]],
) -> list[Loc] | None:
    """For each error, the deepest part of the document it lies in that is still there:
    a wrong value itself, or the part missing a required field (or one just removed) that
    takes no stand-in. Adds stand-ins to ``stand_ins``; None: nothing sensible is left."""
    more: list[Loc] = []
    for error in err.errors():
        loc = _to_original(data_loc(error["loc"], pruned), kept_indices)
        if error["type"] == "missing" and loc not in stand_ins:
            value = _stand_in(loc)
            if value is not None:
                stand_ins[loc] = value
                more.append(loc)  # gone from the file's point of view
                continue
        while loc and not _present(document, loc, [*removed, *stand_ins]):
            loc = loc[:-1]
        if not loc:
            return None  # the top level itself is broken: nothing sensible is left
        if loc not in more and loc not in removed:
            more.append(loc)
    return more or None


def _stand_in(loc: Loc) -> object:
    """The lowest value a required number or choice at ``loc`` takes; None for other fields."""
    info = fields.field_at(loc)
    if info is None or not info.is_required():
        return None
    annotation = info.annotation
    if typing.get_origin(annotation) is Literal:
        return typing.get_args(annotation)[0]
    if annotation is int:
        low = next((m.ge for m in info.metadata if isinstance(m, annotated_types.Ge)), None)
        return low if isinstance(low, int) else 1
    return None


def _present(document: Any, loc: Loc, removed: Sequence[Loc]) -> bool:
    if any(loc[: len(r)] == r for r in removed):
        return False
    return _at(document, loc) is not _ABSENT


def _without(
    node: Any,
    removed: Sequence[Loc],
    stand_ins: Mapping[Loc, object],
    at: Loc,
    kept_indices: dict[Loc, tuple[int, ...]],
) -> Any:
    """A plain copy of ``node`` (at ``at``) without the parts in ``removed``, with the
    stand-ins in place."""
    if isinstance(node, Mapping):
        copy = {
            key: _without(value, removed, stand_ins, (*at, key), kept_indices)
            for key, value in node.items()
            if (*at, key) not in removed
        }
        copy.update({loc[-1]: value for loc, value in stand_ins.items() if loc[:-1] == at})
        return copy
    if isinstance(node, list):
        kept = [index for index in range(len(node)) if (*at, index) not in removed]
        if len(kept) != len(node):
            kept_indices[at] = tuple(kept)
        return [
            _without(node[index], removed, stand_ins, (*at, index), kept_indices) for index in kept
        ]
    return node


def _to_original(loc: Loc, kept_indices: Mapping[Loc, tuple[int, ...]]) -> Loc:
    """A location in the pruned document, in the original document's list indices."""
    out: list[str | int] = []
    for part in loc:
        kept = kept_indices.get(tuple(out))
        if kept is not None and isinstance(part, int) and 0 <= part < len(kept):
            part = kept[part]
        out.append(part)
    return tuple(out)


def _names(document: Mapping[str, Any], removed: Iterable[Loc]) -> frozenset[str]:
    """The names of removed entries: a top-level named mapping's keys, and the ``name`` of
    a removed discovery service."""
    names: set[str] = set()
    for loc in removed:
        if len(loc) == 2 and loc[0] in NAMED:
            names.add(str(loc[1]))
        elif len(loc) == 3 and loc[:2] == ("discovery", "services"):
            entry = _at(document, loc[:3])
            name = entry.get("name") if isinstance(entry, Mapping) else None
            names.add(name if isinstance(name, str) else ANY_NAME)
        elif loc == ("discovery",):
            names.update(_discovery_names(document))
    return frozenset(names)


def _discovery_names(document: Mapping[str, Any]) -> list[str]:
    services = _at(document, ("discovery", "services"))
    if not isinstance(services, list):
        return []
    return [
        s["name"] for s in services if isinstance(s, Mapping) and isinstance(s.get("name"), str)
    ]


def _at(document: Any, loc: Loc) -> Any:
    """The node at ``loc``, or `_ABSENT`."""
    node = document
    for part in loc:
        in_mapping = isinstance(node, Mapping) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if not (in_mapping or in_list):
            return _ABSENT
        node = node[part]
    return node
