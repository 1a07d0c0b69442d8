"""The vocabulary of validated settings (pydantic, no JAX): the field types every spec model uses and the one
model configuration (frozen, unknown keys rejected).

Used by the experiments' point models (:mod:`factrecall.experiments.specs`), the sweep files
(:mod:`factrecall.experiments.config`) and the library's own spec models (e.g.
:class:`factrecall.dynamics.spec.DynamicsSpec`), so that "a size is an integer ≥ 1" is written once.

>>> from pydantic import BaseModel
>>> class Shape(BaseModel):
...     model_config = FROZEN
...     d: Pos = 8
>>> Shape(d=4).d
4
"""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field

Pos = Annotated[int, Field(ge=1)]
NonNeg = Annotated[int, Field(ge=0)]
Seeds = Annotated[list[NonNeg], Field(min_length=1)]
Rates = Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=1)]
Criterion = Annotated[float, Field(gt=0, le=1)]
PosFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]

FROZEN = ConfigDict(frozen=True, extra="forbid", strict=False)
"""The settings of every spec model: it cannot change once built and rejects unknown keys."""
