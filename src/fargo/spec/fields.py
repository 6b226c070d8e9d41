"""Walking the spec's models by a location in the file: which model holds a field there.

names_at(("services", "web"))          # the fields of Service, for did-you-mean hints
field_at(("services", "web", "port"))  # Service.port's FieldInfo (None: no such field)
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from fargo.spec.errors import Loc
from fargo.spec.model import Spec


def field_at(loc: Loc) -> FieldInfo | None:
    """The model field ``loc`` ends in, or None when ``loc`` does not end in a model field."""
    if not loc:
        return None
    target: Any = Spec
    for part in loc[:-1]:
        target = unwrap(target, part)
        if target is None:
            return None
    model = model_in(target)
    return model.model_fields.get(str(loc[-1])) if model else None


def names_at(loc: Loc) -> list[str]:
    """The field names the model at ``loc`` accepts (for did-you-mean hints)."""
    target: Any = Spec
    for part in loc:
        target = unwrap(target, part)
        if target is None:
            return []
    model = model_in(target)
    return list(model.model_fields) if model else []


def unwrap(annotation: Any, part: str | int) -> Any:
    model = model_in(annotation)
    if model is not None:
        field = model.model_fields.get(str(part))
        return field.annotation if field else None
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (list, tuple, Sequence) and args:
        return args[0]
    if origin in (dict, Mapping) and len(args) == 2:
        return args[1]
    return None


def model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = model_in(arg)
            if found is not None:
                return found
    if origin is typing.Annotated:
        return model_in(typing.get_args(annotation)[0])
    return None
