"""Sweep definitions: TOML files validated by pydantic (frozen models, unknown keys rejected).

A sweep file names either an *experiment* of :data:`POINT_MODELS` with a grid and/or a list of points, or a
paper *figure* (``figure = "fig1"``) with the figure's points (``configs/`` holds one per figure and scale,
generated from :data:`factrecall.experiments.reproduce.FIGURES`). Every problem is a :class:`ConfigError`
naming the key,
the value received and what is allowed; nothing is run or written before the whole file is valid.

Example (``factrecall sweep my.toml``)::

    experiment = "memory_capacity"
    name = "mlp-widths"
    [base]
    model = "mlp"
    seeds = [0, 1]
    [grid]
    d = [8, 16]
    m = [8, 16, 32]

Paper: SPEC §7 (figures at quick and paper scale), §8 (one sweep definition, any backend).
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from factrecall.core.errors import ConfigError, check

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SCALES = ("quick", "paper")
# Paper symbols that count something: in any point (figure or experiment) they must be ≥ 1.
SIZES = ("d", "m", "M", "H", "d_h", "S", "R", "D", "T", "N", "n_steps", "rank", "top_k")

Pos = Annotated[int, Field(ge=1)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)


class MemoryCapacityPoint(_Frozen):
    """One capacity measurement of an associative memory (:func:`factrecall.memories.capacity.capacity`).

    Unset training fields take the project's recipe (:func:`factrecall.memories.capacity.recipe`).
    """

    model: Literal["linear", "mlp"]
    d: Pos
    m: Pos | None = None
    M: Annotated[int, Field(ge=2)] | None = None
    rank: Pos | None = None
    method: Literal["trained", "hebbian", "construction"] = "trained"
    target: Literal["bijection", "balanced", "random"] | None = None
    zipf: Annotated[float, Field(ge=0)] = 0.0
    geometry: Literal["sphere", "orthogonal", "onehot", "spiked"] = "sphere"
    criterion: Annotated[float, Field(gt=0, le=1)] = 0.99
    top_k: Pos = 1
    lrs: list[Annotated[float, Field(gt=0)]] | None = None
    n_steps: Pos | None = None
    seeds: Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)] = [0, 1, 2]
    precision: Annotated[float, Field(gt=0)] = 0.01

    @model_validator(mode="after")
    def _width_for_mlp(self) -> MemoryCapacityPoint:
        if self.model == "mlp" and self.m is None:
            raise ValueError("model 'mlp' needs a width m ≥ 1")
        methods = {"linear": ("trained", "hebbian"), "mlp": ("trained", "construction")}[self.model]
        if self.method not in methods:
            raise ValueError(f"method for model {self.model!r} must be one of {', '.join(methods)}")
        return self


NonNeg = Annotated[int, Field(ge=0)]
Seeds = Annotated[list[NonNeg], Field(min_length=1)]
Rates = Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=1)]
Criterion = Annotated[float, Field(gt=0, le=1)]


class TransformerTrainPoint(_Frozen):
    """One trained one-layer transformer on the recall task, as ``factrecall train transformer`` (same
    defaults, same seeding: a point and the command with the same values give the same numbers)."""

    d: Pos = 32
    H: Pos = 4
    d_h: Pos = 8
    m: NonNeg = 64
    S: Pos = 16
    R: Pos = 16
    D: Pos = 8
    T: Annotated[int, Field(ge=3)] = 32
    attention: Literal["softmax", "linear"] = "softmax"
    train_embeddings: bool = False
    lrs: Rates = [1e-2]
    n_steps: Pos = 16384
    batch: Pos = 1024
    criterion: Criterion = 0.99
    seed: NonNeg = 0


class TransformerCapacityPoint(_Frozen):
    """The largest fact set S·R a transformer shape stores, as ``factrecall capacity transformer``."""

    d: Pos = 32
    H: Pos = 8
    d_h: Pos = 8
    m: NonNeg = 32
    D: Pos = 8
    scaling: Literal["linear", "square", "distinct"] = "linear"
    lrs: Rates = [1e-3, 3e-3, 1e-2]
    n_steps: Pos = 16384
    batch: Pos = 1024
    criterion: Criterion = 0.99
    patience: NonNeg = 2048  # steps without gain before a trial stops (0: never)
    seeds: Seeds = [0]


class ConstructionPoint(_Frozen):
    """The smallest constructed transformer storing every fact, as ``factrecall construct transformer
    --find-min`` (ratios default to the mechanism's, see
    :data:`factrecall.recall.construction_search.DEFAULT_RATIOS`)."""

    mechanism: Literal["attention", "mlp", "hybrid"]
    S: Pos
    R: Pos
    D: Pos = 8
    d_h: Pos = 8
    attention_ratio: Annotated[float, Field(gt=0)] | None = None
    mlp_ratio: Annotated[float, Field(ge=0)] | None = None
    attention_share: Annotated[float, Field(ge=0, le=1)] | None = None
    memory: Literal["pinv", "hebbian"] = "pinv"
    n_contexts: Pos = 8
    seeds: Seeds = [0]
    precision: Annotated[float, Field(gt=0)] = 0.02


class DynamicsPoint(_Frozen):
    """One training trajectory (Figure 5), as ``factrecall dynamics`` (fields of
    :class:`factrecall.dynamics.trajectory.DynamicsSpec`; defaults are the paper's run)."""

    S: Pos = 16
    R: Pos = 4
    D: Pos = 8
    T: Pos = 32
    alpha_S: Annotated[float, Field(ge=0)] = 0.0
    alpha_R: Annotated[float, Field(ge=0)] = 0.0
    model: Literal["simplified", "transformer"] = "simplified"
    attention: Literal["linear", "softmax"] = "linear"
    embeddings: Literal["onehot", "random"] = "onehot"
    facts: Literal["structured", "random"] = "structured"
    lr: Annotated[float, Field(gt=0)] = 0.1
    B: Pos = 1024
    n_steps: Pos = 8192
    eval_every: Pos = 64
    n_test: Pos = 2**14
    substeps: Pos = 1
    d: Pos | None = None
    H: Pos = 4
    d_h: Pos = 16
    m: NonNeg = 64
    seed: NonNeg = 0


POINT_MODELS: dict[str, type[BaseModel]] = {
    "memory_capacity": MemoryCapacityPoint,
    "transformer_train": TransformerTrainPoint,
    "transformer_capacity": TransformerCapacityPoint,
    "construction": ConstructionPoint,
    "dynamics": DynamicsPoint,
}
"""Experiment name → the model of one point. Add an entry here and one in
:data:`factrecall.experiments.sweeps.EXPERIMENTS` to make a new experiment sweepable (README: "Sweeps, the
results store and the report")."""


class SweepConfig(_Frozen):
    """A sweep: an experiment over ``base`` × ``grid`` (+ ``points``), or a paper figure's points.

    Attributes:
        name: the sweep's name in the store (default: the file's stem; a figure's name for figures).
        experiment: a key of :data:`POINT_MODELS`.
        figure: a key of :data:`factrecall.experiments.reproduce.FIGURES` (instead of ``experiment``).
        scale: ``quick`` or ``paper`` (figures).
        base: values shared by every point.
        grid: key → list of values; the points are the Cartesian product (in the order written).
        points: explicit points (each merged over ``base``).
    """

    name: Annotated[str, Field(min_length=1)] | None = None
    experiment: str | None = None
    figure: str | None = None
    scale: Literal["quick", "paper"] = "quick"
    base: dict[str, Any] = {}
    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = {}
    points: list[dict[str, Any]] = []

    @model_validator(mode="after")
    def _one_target(self) -> SweepConfig:
        if (self.experiment is None) == (self.figure is None):
            raise ValueError("give exactly one of 'experiment' (a sweep) or 'figure' (a paper figure)")
        if self.experiment is not None and self.experiment not in POINT_MODELS:
            raise ValueError(
                f"experiment: unknown experiment {self.experiment!r}; allowed: {', '.join(POINT_MODELS)}"
            )
        if self.figure is not None and (self.grid or self.base):
            raise ValueError("a figure config lists its points; 'grid' and 'base' are for experiments")
        if self.experiment is not None and not (self.grid or self.points or self.base):
            raise ValueError("a sweep needs 'grid', 'points' or 'base'")
        return self


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(p) for p in error["loc"]) or "(top level)"
    msg = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key (got {json.dumps(error['input'], default=str)})"
    if error["type"] == "missing":
        return f"{where}: missing required key"
    return f"{where}: {msg} (got {json.dumps(error['input'], default=str)[:80]})"


def validation_message(exc: ValidationError, allowed: type[BaseModel] | None = None) -> str:
    """A one-paragraph message from a pydantic error: each key, what is wrong, the value received."""
    parts = [_describe(e) for e in exc.errors()]
    if allowed is not None and any(e["type"] == "extra_forbidden" for e in exc.errors()):
        parts.append(f"allowed keys: {', '.join(allowed.model_fields)}")
    return "; ".join(parts)


def load_sweep(path: Path) -> SweepConfig:
    """Read and validate a sweep file.

    Raises:
        ConfigError: the file is missing, is not TOML, or has an unknown key, a wrong type or a bad value.
    """
    path = Path(path)
    check(path.is_file(), f"config file {str(path)!r} does not exist (or is not a file)")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        cfg = SweepConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {validation_message(exc, SweepConfig)}") from exc
    return cfg if cfg.name else cfg.model_copy(update={"name": cfg.figure or path.stem})


def validate_point(experiment: str, point: dict[str, Any], where: str) -> dict[str, Any]:
    """The resolved point (defaults filled in) of ``experiment``, or a :class:`ConfigError` naming the key."""
    model = POINT_MODELS[experiment]
    try:
        return model.model_validate(point).model_dump()
    except ValidationError as exc:
        raise ConfigError(f"{where}: {validation_message(exc, model)}") from exc


def expand(cfg: SweepConfig) -> list[dict[str, Any]]:
    """An experiment sweep's points: ``base`` × ``grid`` (in the order written), then each of ``points``.

    >>> cfg = SweepConfig(experiment="memory_capacity", base={"model": "linear"}, grid={"d": [4, 8]})
    >>> [p["d"] for p in expand(cfg)]
    [4, 8]
    """
    assert cfg.experiment is not None, "expand() is for experiment sweeps"
    raw = []
    if cfg.grid:
        keys = list(cfg.grid)
        for values in itertools.product(*(cfg.grid[k] for k in keys)):
            raw.append({**cfg.base, **dict(zip(keys, values, strict=True))})
    raw += [{**cfg.base, **p} for p in cfg.points]
    if not raw:
        raw = [dict(cfg.base)]
    return [validate_point(cfg.experiment, p, f"point {i} {_short(p)}") for i, p in enumerate(raw)]


def _short(point: dict[str, Any]) -> str:
    return json.dumps(point, sort_keys=True, default=str)[:120]


def check_like(point: dict[str, Any], examples: list[dict[str, Any]], where: str) -> None:
    """Check a figure's point against the figure's own points: known keys, same types, positive sizes.

    Figures define their points in Python (no pydantic model); a config edited by hand is checked against
    them so that a typo or a wrong type fails before anything runs.
    """
    kinds: dict[str, set[str]] = {}
    for ex in examples:
        for k, v in ex.items():
            kinds.setdefault(k, set()).add(_kind(v))
    for k, v in point.items():
        check(k in kinds, f"{where}: unknown key {k!r}; allowed keys: {', '.join(kinds)}")
        allowed = kinds[k] - {"null"}
        got = _kind(v)
        ok = got == "null" or not allowed or got in allowed or (got == "int" and "float" in allowed)
        check(ok, f"{where}: {k} must be {' or '.join(sorted(allowed))}, got {json.dumps(v)} ({got})")
        if k in SIZES and isinstance(v, int) and not isinstance(v, bool):
            check(v >= 1, f"{where}: {k} must be ≥ 1, got {v}")
    missing = [k for k in kinds if k not in point and all(k in ex for ex in examples)]
    check(not missing, f"{where}: missing key(s) {', '.join(missing)}")


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "str"
    if isinstance(v, list | tuple):
        return "list"
    return "table"


# ------------------------------------------------------------------------------------------- TOML writer


def toml_value(v: Any) -> str:
    """``v`` as a TOML value (``None`` has no TOML form: callers drop such keys).

    >>> toml_value([1, 2.5, "a", True])
    '[1, 2.5, "a", true]'
    """
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        text = repr(float(v)) if isinstance(v, float) else str(v)
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(text, text)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items() if x is not None) + "}"
    raise ConfigError(f"cannot write {v!r} ({type(v).__name__}) to TOML")
