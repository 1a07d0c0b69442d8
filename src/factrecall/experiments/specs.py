"""The experiments, one pydantic model each: the spec of a run, its fields and defaults written once.

This module owns the point models (:class:`MemoryCapacityPoint`, :class:`TransformerTrainPoint`,
:class:`TransformerCapacityPoint`, :class:`ConstructionPoint`, :class:`ConstructedPoint`,
:class:`DynamicsPoint`, :class:`EditingPoint`), the registry :data:`EXPERIMENTS` of the sweepable ones and
:func:`build`. Commands, sweep files, figures and the Python API build these models and call the same
:meth:`Point.run`, which returns the run's JSON record (a command adds its ``run``/``spec``/``saved``/
``files`` keys). Building a model validates it once: pydantic checks types and ranges, then the library
checks the spec it makes (a :class:`ConfigError` names field, value and what is allowed); then trusted.

Paper: §3 (memories), §4 (transformers and constructions), §5 (dynamics), editing (beyond); SPEC §7–8.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, Field, PrivateAttr, ValidationError, model_validator

from factrecall.core.errors import ConfigError
from factrecall.core.fields import FROZEN, Criterion, NonNeg, NonNegFloat, Pos, PosFloat, Rates, Seeds
from factrecall.core.paper import PAPER_LRS
from factrecall.core.progress import Update
from factrecall.dynamics.spec import DynamicsSpec
from factrecall.editing.study import EditingSpec
from factrecall.experiments.config import validation_message

if TYPE_CHECKING:
    from factrecall.recall.training import Trained

P = TypeVar("P", bound="Point")


class Point(BaseModel):
    """One run of an experiment: its fields are the spec; building it validates it (once). A subclass
    defines :meth:`make_spec` (the library's spec, validated by the library) and :meth:`run` (abstract here:
    pydantic's model class is an ABC, so a point model without them cannot be built)."""

    model_config = FROZEN

    DESCRIPTION: ClassVar[str] = ""
    _spec: Any = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _library_checks(self) -> Point:
        self._spec = self.make_spec()
        return self

    @abstractmethod
    def make_spec(self) -> Any:
        """The library's spec of this point; raises :class:`ConfigError` naming what is invalid."""

    @property
    def spec(self) -> Any:
        """The library's spec, made when the point was built (or on first use, for trusted values)."""
        if self._spec is None:  # made by model_construct: values already validated elsewhere
            self._spec = self.make_spec()
        return self._spec

    @abstractmethod
    def run(self, update: Update | None = None) -> dict[str, Any]:
        """Compute the point; ``update(done, total, status)`` reports progress. Returns its JSON record."""


def build(
    model: type[P], values: Mapping[str, Any], where: str = "", names: Mapping[str, str] | None = None
) -> P:
    """``model`` built from ``values``, or a :class:`ConfigError` naming each bad key.

    Args:
        model, values: a :class:`Point` class and its fields (unset ones take their defaults).
        where: what the message starts with (e.g. which point of a sweep file).
        names: how the message calls a field (e.g. the command-line flag that set it).

    >>> build(MemoryCapacityPoint, {"model": "linear", "d": 0})
    Traceback (most recent call last):
    ...
    factrecall.core.errors.ConfigError: d: Input should be greater than or equal to 1 (got 0)
    """
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        message = validation_message(exc, model, names)
        raise ConfigError(f"{where}: {message}" if where else message) from exc


class MemoryCapacityPoint(Point):
    """The largest N an associative memory stores (paper §3, Figures 1 and 6), as ``factrecall capacity
    linear|mlp``. Unset training fields take the model's recipe (:func:`factrecall.memories.capacity.recipe`).

    Attributes:
        model: ``linear`` (W ∈ R^{d×d}) or ``mlp`` (Vᵀ relu(W e + b)).
        d: embedding dimension d.
        m: MLP width m (``mlp`` only; :attr:`MLP_WIDTH` when unset).
        M: number of outputs M (None: M = N, a bijection).
        rank: rank r of W = A B (``linear``; None: full rank).
        method: ``trained`` (Adam), or a construction: ``hebbian`` (linear, Theorem 1) or ``construction``
            (MLP random features, Theorem 2).
        target: ``bijection``, ``balanced`` or ``random`` (None: bijection, or balanced when M is set).
        zipf: Zipf exponent α of the input weights p(x) ∝ (x+1)^-α.
        geometry: embeddings: ``sphere``, ``orthogonal``, ``onehot`` or ``spiked``.
        criterion, top_k: fraction of inputs whose output must be among the top_k best.
        lrs, n_steps: learning-rate grid (the best is kept) and step budget per run (None: the recipe's).
        seeds, precision: one N* per seed; the bisection stops at hi/lo ≤ 1 + precision.
    """

    DESCRIPTION: ClassVar[str] = "capacity N* of a linear or MLP memory (paper §3)"
    MLP_WIDTH: ClassVar[int] = 16

    model: Literal["linear", "mlp"]
    d: Pos = 16
    m: Pos | None = None
    M: Annotated[int, Field(ge=2)] | None = None
    rank: Pos | None = None
    method: Literal["trained", "hebbian", "construction"] = "trained"
    target: Literal["bijection", "balanced", "random"] | None = None
    zipf: NonNegFloat = 0.0
    geometry: Literal["sphere", "orthogonal", "onehot", "spiked"] = "sphere"
    criterion: Criterion = 0.99
    top_k: Pos = 1
    lrs: Rates | None = None
    n_steps: Pos | None = None
    seeds: Seeds = [0, 1, 2]
    precision: PosFloat = 0.01

    @model_validator(mode="before")
    @classmethod
    def _mlp_width(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("model") == "mlp" and data.get("m") is None:
            return {**data, "m": cls.MLP_WIDTH}
        return data

    def make_spec(self) -> Any:
        from factrecall.memories.capacity import recipe, validate_spec

        keys = ("M", "rank", "method", "target", "geometry", "criterion", "top_k", "n_steps")
        lrs = tuple(self.lrs) if self.lrs else None
        spec = recipe(
            self.model, self.d, self.m, alpha=self.zipf, lrs=lrs, **{k: getattr(self, k) for k in keys}
        )
        validate_spec(spec)
        return spec

    def run(self, update: Update | None = None) -> dict[str, Any]:
        """N* per seed and its summary (:meth:`factrecall.memories.capacity.CapacityResult.summary`)."""
        from factrecall.memories.capacity import capacity

        result = capacity(self.spec, tuple(self.seeds), rel_precision=self.precision, on_round=update)
        return result.summary()


class TransformerTrainPoint(Point):
    """One one-layer transformer trained on the recall task (paper §4), as ``factrecall train transformer``.

    The facts come from fold_in(key(seed), 1), the report's contexts from fold_in(key(seed), 2).

    Attributes:
        d, H, d_h, m: embedding dimension, heads, head dimension, MLP width (0: no MLP).
        S, R, D, T: subjects, relations, answers per relation, sequence length.
        attention, train_embeddings: ``softmax`` or ``linear``; train the embeddings and unembedding too.
        lrs, n_steps, batch: learning-rate grid (the best is kept), step budget, sequences per step.
        criterion: training stops once this fraction of the facts is answered.
        seed: seed of the facts, the initialisation and the batches.
    """

    DESCRIPTION: ClassVar[str] = "one trained transformer: accuracy over every fact, bits/param (paper §4)"
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

    def make_spec(self) -> Any:
        """(task, transformer config, recipe), validated."""
        from factrecall.recall.training import EVAL_EVERY, Recipe, task_and_config, validate_recipe

        shape = (self.S, self.R, self.D, self.T, self.d, self.H, self.d_h, self.m)
        task, cfg = task_and_config(*shape, self.attention, self.train_embeddings)
        recipe = Recipe(self.n_steps, self.batch, EVAL_EVERY, self.criterion)
        validate_recipe(recipe)
        return task, cfg, recipe

    def train(self, update: Update | None = None) -> Trained:
        """The trained model (best learning rate of the grid)."""
        import jax

        from factrecall.recall import training
        from factrecall.recall.task import facts_random

        task, cfg, recipe = self.spec
        if update is not None:
            update(0, 1, f"training {self.n_steps} steps at most")
        facts = facts_random(task, key=jax.random.fold_in(jax.random.key(self.seed), 1))
        return training.train(cfg, task, facts, recipe, tuple(self.lrs), seed=self.seed)

    def report(self, model: Trained) -> dict[str, Any]:
        """``model``'s report: accuracy over every fact, sampled accuracy, parameters, bits."""
        import jax

        from factrecall.recall import models

        return models.report(model, key=jax.random.fold_in(jax.random.key(self.seed), 2))

    def run(self, update: Update | None = None) -> dict[str, Any]:
        """Train, then :meth:`report`."""
        record = self.report(self.train(update))
        if update is not None:
            update(1, 1, f"fact_accuracy {record['fact_accuracy']:.3f}")
        return record


class TransformerCapacityPoint(Point):
    """Largest fact set S·R a transformer stores (paper §4, Figure 4): ``factrecall capacity transformer``.

    Attributes:
        d, H, d_h, m, D: the shape (m = 0: no MLP); answers per relation (``distinct``: D = S).
        scaling: how the facts grow: ``linear`` (S = R), ``square`` (S = R²) or ``distinct`` (D = S).
        lrs, n_steps, batch: learning-rate grid (the paper's), step budget per trial, sequences per step.
        criterion, seeds: fraction that must be answered; one capacity per seed.
        criterion_on: ``every-fact`` (every fact in 2 fixed fresh contexts) or ``sampled`` (1,024 sequences).
        patience: a run stops after this many steps without gain while more than two facts short (0: never).
        early_stops: the stall rule and the race stop runs that cannot store (false: none; README "Budget").
        procedure: ``ours`` or ``paper`` (the authors' search: :mod:`factrecall.recall.paper_procedure`).
    """

    DESCRIPTION: ClassVar[str] = "largest fact set S·R a transformer shape stores (paper §4, Figure 4)"
    d: Pos = 32
    H: Pos = 8
    d_h: Pos = 8
    m: NonNeg = 32
    D: Pos = 8
    scaling: Literal["linear", "square", "distinct"] = "linear"
    lrs: Rates = list(PAPER_LRS)
    n_steps: Pos = 16384
    batch: Pos = 1024
    criterion: Criterion = 0.99
    criterion_on: Literal["every-fact", "sampled"] = "every-fact"
    patience: NonNeg = 2048
    early_stops: bool = True
    seeds: Seeds = [0]
    procedure: Literal["ours", "paper"] = "ours"

    @model_validator(mode="before")
    @classmethod
    def _procedure(cls, data: Any) -> Any:
        from factrecall.recall.paper_procedure import point_fields

        return point_fields(data)

    def make_spec(self) -> Any:
        from factrecall.recall.capacity import spec_of

        return spec_of(dict(self))

    def run(self, update: Update | None = None) -> dict[str, Any]:
        """The capacity per seed and its summary, with the ``procedure`` that searched it."""
        from factrecall.recall.paper_procedure import capacity_of

        return capacity_of(self.procedure, self.spec, tuple(self.seeds), update)


class _Construction(Point):
    """What to construct (paper §4): the facts, the mechanism and the shape ratios.

    Attributes:
        mechanism: ``attention`` (facts in the values), ``mlp``, or ``hybrid`` (split between them).
        S, R, D, d_h: subjects, relations, answers per relation, head dimension.
        attention_ratio, mlp_ratio: H·d_h/d and m/d (None: the mechanism's, see
            :data:`factrecall.recall.construction_search.DEFAULT_RATIOS`).
        attention_share: ``hybrid``: the fraction of relations stored by attention.
        memory, n_contexts: ``pinv`` (least squares) or ``hebbian``; evaluation contexts per fact.
    """

    mechanism: Literal["attention", "mlp", "hybrid"] = "attention"
    S: Pos = 32
    R: Pos = 32
    D: Pos = 8
    d_h: Pos = 8
    attention_ratio: PosFloat | None = None
    mlp_ratio: NonNegFloat | None = None
    attention_share: Annotated[float, Field(ge=0, le=1)] | None = None
    memory: Literal["pinv", "hebbian"] = "pinv"
    n_contexts: Pos = 8

    def make_spec(self) -> Any:
        """The :class:`~factrecall.recall.construction_search.ConstructionSpec`, validated."""
        from factrecall.recall.construction_search import construction_spec

        keys = ("d_h", "attention_ratio", "mlp_ratio", "attention_share", "memory", "n_contexts")
        return construction_spec(
            self.mechanism, self.S, self.R, self.D, **{k: getattr(self, k) for k in keys}
        )


class ConstructionPoint(_Construction):
    """The smallest constructed transformer storing every fact (d searched at fixed ratios), as ``factrecall
    construct transformer --find-min``.

    Attributes:
        seeds: one smallest d per seed (the record is the median seed's).
        precision: the search stops at hi/lo ≤ 1 + precision.
    """

    DESCRIPTION: ClassVar[str] = "smallest constructed transformer storing every fact (paper §4, Thms 3–4)"
    seeds: Seeds = [0]
    precision: PosFloat = 0.02

    def run(self, update: Update | None = None) -> dict[str, Any]:
        """The median seed's construction at its smallest d, with per-seed sizes."""
        from factrecall.recall.construction_search import find_min

        result = find_min(self.spec, tuple(self.seeds), rel_precision=self.precision, on_round=update)
        return result.summary()


class ConstructedPoint(_Construction):
    """One constructed transformer of a given shape, scored over every fact, as ``factrecall construct
    transformer``.

    Attributes:
        d, H, m: the shape (None: d near the minimum, H and m from the ratios).
        seed: seed of the facts, the embeddings and the contexts.
    """

    d: Pos | None = None
    H: Pos | None = None
    m: NonNeg | None = None
    seed: NonNeg = 0

    def run(self, update: Update | None = None) -> dict[str, Any]:
        """Accuracy over every fact, parameters and bits of the construction."""
        from factrecall.recall import construction_search as cs

        cfg = cs.shape(self.spec, self.d or cs.default_guess(self.spec))
        cfg = cfg._replace(H=cfg.H if self.H is None else self.H, m=cfg.m if self.m is None else self.m)
        return cs.build_and_score(self.spec, cfg, self.seed)


class DynamicsPoint(Point, DynamicsSpec):
    """One training trajectory (paper §5, Figure 5), as ``factrecall dynamics`` (without its files). The point
    is the library's spec, :class:`factrecall.dynamics.spec.DynamicsSpec` (its fields, defaults, checks and
    their documentation: S, R, D, T, the Zipf exponents α_S, α_R, the learning rate, the batch B and the
    model's d, H, d_h, m), plus how the experiment runs.
    """

    DESCRIPTION: ClassVar[str] = "training trajectory and its stages (paper §5, Figure 5)"

    def make_spec(self) -> DynamicsSpec:
        """The point's fields as the library's class (checked once, when the point was built)."""
        return DynamicsSpec.model_construct(**dict(self))

    def run(self, update: Update | None = None) -> dict[str, Any]:
        """Stages, transitions, curves, spec and title (:func:`factrecall.dynamics.trajectory.record`)."""
        from factrecall.dynamics import trajectory as dynamics

        return dynamics.record(self.spec, dynamics.trajectory(self.spec, on_chunk=update))


class EditingPoint(Point, EditingSpec):
    """One point of the editing study (beyond the paper): a shape filled to f·N* facts, edited k = 1, 2, 4, …
    times by one method and mode until it breaks. The point is the library's spec,
    :class:`factrecall.editing.study.EditingSpec` (its fields, defaults, checks and their documentation).
    """

    DESCRIPTION: ClassVar[str] = "edits a transformer filled to f·N* absorbs, per seed (beyond the paper)"

    def make_spec(self) -> EditingSpec:
        """The point's fields as the library's class (checked once, when the point was built)."""
        return EditingSpec.model_construct(**dict(self))

    def run(self, update: Update | None = None) -> dict[str, Any]:
        """N*, the models' sizes, each seed's edit curve and edit capacity (:func:`~factrecall.editing.
        study.run_point`)."""
        from factrecall.editing.study import run_point

        return run_point(self.spec, update)


EXPERIMENTS: dict[str, type[Point]] = {
    "memory_capacity": MemoryCapacityPoint,
    "transformer_train": TransformerTrainPoint,
    "transformer_capacity": TransformerCapacityPoint,
    "construction": ConstructionPoint,
    "dynamics": DynamicsPoint,
    "editing": EditingPoint,
}
"""Experiment name (``experiment = "..."`` in a sweep file) → its point model (``model.DESCRIPTION`` says what
it measures). A new sweepable experiment is a :class:`Point` subclass here and its entry."""
