"""The base of every spec model: strict keys, snake_case fields."""

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """Unknown keys are errors (so typos are caught); models are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=False, str_strip_whitespace=True)
