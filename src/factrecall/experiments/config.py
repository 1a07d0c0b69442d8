"""Sweep files, and the pydantic vocabulary the experiments' specs are written in.

This module owns what a sweep file is: :class:`SweepConfig` (TOML validated by pydantic: frozen, unknown
keys rejected), :func:`load_sweep`, :func:`expand` (``base`` × ``grid``, then ``points``), the check of a
hand-edited figure point against the figure's own (:func:`check_like`), the TOML writer (:func:`toml_value`),
:data:`SCALES`, and :func:`validation_message`, which turns a pydantic error into one sentence naming each
key, what is allowed and the value received (the field types and model settings of sweep files and of the
experiments' point models, :mod:`factrecall.experiments.specs`, are :mod:`factrecall.core.fields`).

A sweep file names either an *experiment* of :data:`factrecall.experiments.specs.EXPERIMENTS` with a grid
and/or a list of points, or a paper *figure* (``figure = "fig1"``) with the figure's points (``configs/``
holds one per figure and scale, generated from :data:`factrecall.experiments.reproduce.FIGURES`). Every
problem is a :class:`ConfigError` naming the key, the value received and what is allowed; nothing is run or
written before the whole file is valid.

Example (``factrecall sweep my.toml``)::

    experiment = "memory_capacity"
    name = "mlp-widths"
    [base]
    model = "mlp"
    seeds = [0, 1]
    [grid]
    d = [8, 16]
    m = [8, 16, 32]

Paper: SPEC §7 (figures at quick, medium and paper scale), §8 (one sweep definition, any backend).
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from factrecall.core.errors import ConfigError, check
from factrecall.core.fields import FROZEN

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SCALES = ("quick", "medium", "paper")
"""The scales of the figures, smallest first: ``quick`` (minutes on 2 CPU cores), ``medium`` (the paper's task
and recipe on part of its grid: Figure 4 only, see ``Figure.scales``) and ``paper`` (the paper's grids)."""
# Paper symbols that count something: in any point (figure or experiment) they must be ≥ 1.
SIZES = ("d", "m", "M", "H", "d_h", "S", "R", "D", "T", "N", "n_steps", "rank", "top_k")


class SweepConfig(BaseModel):
    """A sweep: an experiment over ``base`` × ``grid`` (+ ``points``), or a paper figure's points.

    Attributes:
        name: the sweep's name in the store (default: the file's stem; a figure's name for figures).
        experiment: a key of :data:`factrecall.experiments.specs.EXPERIMENTS` (checked with the points, by
            :func:`factrecall.experiments.sweeps.checked_points`).
        figure: a key of :data:`factrecall.experiments.reproduce.FIGURES` (instead of ``experiment``).
        scale: one of :data:`SCALES` (figures).
        base: values shared by every point.
        grid: key → list of values; the points are the Cartesian product (in the order written).
        points: explicit points (each merged over ``base``).
    """

    model_config = FROZEN

    name: Annotated[str, Field(min_length=1)] | None = None
    experiment: str | None = None
    figure: str | None = None
    scale: Literal[SCALES] = "quick"  # type: ignore[valid-type]
    base: dict[str, Any] = {}
    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = {}
    points: list[dict[str, Any]] = []

    @model_validator(mode="after")
    def _one_target(self) -> SweepConfig:
        if (self.experiment is None) == (self.figure is None):
            raise ValueError("give exactly one of 'experiment' (a sweep) or 'figure' (a paper figure)")
        if self.figure is not None and (self.grid or self.base):
            raise ValueError("a figure config lists its points; 'grid' and 'base' are for experiments")
        if self.experiment is not None and not (self.grid or self.points or self.base):
            raise ValueError("a sweep needs 'grid', 'points' or 'base'")
        return self


def _describe(error: dict[str, Any], names: Mapping[str, str]) -> str:
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, ConfigError):  # a library's validation: its message names field, value and allowed
        return str(cause)
    loc = error["loc"]
    where = (names.get(str(loc[0])) if loc else None) or ".".join(str(p) for p in loc) or "(top level)"
    msg = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key (got {json.dumps(error['input'], default=str)})"
    if error["type"] == "missing":
        return f"{where}: missing required key"
    return f"{where}: {msg} (got {json.dumps(error['input'], default=str)[:80]})"


def validation_message(
    exc: ValidationError, allowed: type[BaseModel] | None = None, names: Mapping[str, str] | None = None
) -> str:
    """A one-paragraph message from a pydantic error: each key, what is wrong, the value received.

    Args:
        exc: the error.
        allowed: the model whose keys to list when a key is unknown.
        names: how to call a field in the message (e.g. the command-line flag that set it).
    """
    parts = [_describe(e, names or {}) for e in exc.errors()]
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


def expand(cfg: SweepConfig) -> list[dict[str, Any]]:
    """An experiment sweep's raw points: ``base`` × ``grid`` (in the order written), then each of ``points``
    (merged over ``base``). :func:`factrecall.experiments.sweeps.checked_points` validates them.

    >>> cfg = SweepConfig(experiment="memory_capacity", base={"model": "linear"}, grid={"d": [4, 8]})
    >>> expand(cfg)
    [{'model': 'linear', 'd': 4}, {'model': 'linear', 'd': 8}]
    """
    assert cfg.experiment is not None, "expand() is for experiment sweeps"
    raw = []
    if cfg.grid:
        keys = list(cfg.grid)
        for values in itertools.product(*(cfg.grid[k] for k in keys)):
            raw.append({**cfg.base, **dict(zip(keys, values, strict=True))})
    raw += [{**cfg.base, **p} for p in cfg.points]
    return raw or [dict(cfg.base)]


def point_label(point: dict[str, Any]) -> str:
    """A point in one short line, for messages (``{"d": 4, ...}``, sorted, at most 120 characters)."""
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
