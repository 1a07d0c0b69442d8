"""What one memory-capacity measurement is: :class:`MemorySpec`, the project's training recipes, the
validation of a spec, and what a spec implies (the model, the engine settings, the parameters counted, a
first guess of N*).

Paper: §3 (Figures 1 and 6), Appendix B (recipes); SPEC §1.2–1.4.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from factrecall.core import bounds
from factrecall.core.base import Model
from factrecall.core.engine import OPTIMIZERS, Settings
from factrecall.core.errors import check
from factrecall.memories.embeddings import GEOMETRIES
from factrecall.memories.models import linear_memory, mlp_memory
from factrecall.memories.targets import TARGET_KINDS

MODELS = ("linear", "mlp")
METHODS = {"linear": ("trained", "hebbian"), "mlp": ("trained", "construction")}

# Default recipes. Linear: the paper's (Adam, 4096 steps) with the grid {0.1, 1, 10} of the authors' code.
LINEAR_LRS: tuple[float, ...] = (0.1, 1.0, 10.0)
LINEAR_STEPS = 4096
LINEAR_EVAL_EVERY = 64
# MLP: the paper trains at lr 3e-2 for up to 32768 steps; a cosine decay over the same budget with the grid
# {0.03, 0.1, 0.3} stores more (see benchmarks/RESULTS.md), so it is our default.
MLP_LRS: tuple[float, ...] = (0.03, 0.1, 0.3)
MLP_STEPS = 32768
MLP_EVAL_EVERY = 128
MLP_SCHEDULE = "cosine"
MLP_WARMUP = 256
# A run stuck for 5120 steps more than 0.01 (and more than two facts) below the criterion stops, freeing
# its slot for the next run. On 108 runs near capacity (d = 16 and 22, benchmarks/RESULTS.md) no run that
# later stored its facts had stalled below that line for more than 2560 steps; runs a fact or two short
# often stall for longer (up to 15,872 steps) and then succeed, so they keep the whole budget.
MLP_PATIENCE = 5120
MLP_PATIENCE_MARGIN = 0.01
# The MLP guess is within a few % of N* (its constant is fitted to our measurements), so the search's first
# move from it is small: a failing trial costs the whole budget however far above N* it is.
MLP_FIRST_STEP = 1.03


class MemorySpec(NamedTuple):
    """Everything that defines one capacity measurement (hashable: it keys compiled programs).

    Attributes:
        model: ``linear`` or ``mlp``.
        d: embedding dimension.
        m: MLP width (``mlp`` only).
        rank: rank r of a low-rank linear memory (``None``: full).
        M: number of outputs; ``None`` means M = N (a bijection, the paper's default).
        target: ``bijection`` (M = N), ``balanced`` (f*(x) = floor(x·M/N)) or ``random``.
        alpha: Zipf exponent of the input weights p(x) ∝ (x+1)^-α (0: uniform).
        geometry: embedding geometry (``sphere``, ``orthogonal``, ``onehot``, ``spiked``).
        beta: spike strength of the ``spiked`` geometry.
        method: ``trained``, or a construction (``hebbian`` for linear, ``construction`` for MLP).
        criterion: fraction of (p-weighted) inputs that must be decoded correctly.
        top_k: an input counts as correct when f*(x) is among the k best outputs.
        lrs: learning-rate grid (trained only); the best is kept.
        n_steps: step budget per run.
        eval_every: steps between accuracy checks (the run stops at the criterion).
        optimizer: optax optimizer name.
        schedule: ``constant`` or ``cosine`` (warm-up then cosine decay to 0 at ``n_steps``).
        warmup: warm-up steps of the cosine schedule.
        patience: stop a run whose best accuracy has not improved for this many steps (``None``: never).
            MLP searches stop each learning rate's run on its own; the others stop a trial's runs together.
        patience_margin: (MLP) patience stops only runs whose best accuracy is below the criterion by more
            than this and by more than two facts (2/N); ``None``: any run.
    """

    model: str
    d: int
    m: int | None = None
    rank: int | None = None
    M: int | None = None
    target: str = "bijection"
    alpha: float = 0.0
    geometry: str = "sphere"
    beta: float = 4.0
    method: str = "trained"
    criterion: float = 0.99
    top_k: int = 1
    lrs: tuple[float, ...] = LINEAR_LRS
    n_steps: int = LINEAR_STEPS
    eval_every: int = LINEAR_EVAL_EVERY
    optimizer: str = "adam"
    schedule: str = "constant"
    warmup: int = 0
    patience: int | None = None
    patience_margin: float | None = None


def recipe(model: str, d: int, m: int | None = None, **overrides: Any) -> MemorySpec:
    """A :class:`MemorySpec` with the project's default training recipe for ``model``, then ``overrides``.

    Linear: Adam, 4096 steps, grid {0.1, 1, 10}, accuracy every 64 steps. MLP: Adam with warm-up and cosine
    decay over 32768 steps, grid {0.03, 0.1, 0.3}, accuracy every 128 steps, and a run stuck well below the
    criterion for 5120 steps stops (``patience``). ``None`` overrides are ignored.

    >>> recipe("mlp", 8, 8).schedule
    'cosine'
    """
    base: dict[str, Any] = {"model": model, "d": d, "m": m}  # linear: MemorySpec's defaults
    if model != "linear":
        base.update(
            lrs=MLP_LRS,
            n_steps=MLP_STEPS,
            eval_every=MLP_EVAL_EVERY,
            schedule=MLP_SCHEDULE,
            warmup=MLP_WARMUP,
            patience=MLP_PATIENCE,
            patience_margin=MLP_PATIENCE_MARGIN,
        )
    base.update({k: v for k, v in overrides.items() if v is not None})
    if base.get("M") is not None and base.get("target", "bijection") == "bijection":
        base["target"] = "balanced"
    return MemorySpec(**base)


def _one_of(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    check(value in allowed, f"{name} must be one of {', '.join(allowed)}, got {value!r}")


def validate_spec(spec: MemorySpec) -> None:
    """Raise :class:`~factrecall.core.errors.ConfigError` naming the first invalid field of ``spec``.

    The one check of a spec: :func:`factrecall.memories.capacity.capacity` and everything below it trust
    the spec they are given, so whoever builds one from user input calls this first.

    >>> validate_spec(MemorySpec("mlp", 8))
    Traceback (most recent call last):
    ...
    factrecall.core.errors.ConfigError: width must be ≥ 1 for an MLP memory, got m=None
    """
    _one_of("model", spec.model, MODELS)
    check(spec.d >= 1, f"d must be ≥ 1, got d={spec.d}")
    _one_of(f"method for {spec.model}", spec.method, METHODS[spec.model])
    if spec.model == "mlp":
        check(spec.m is not None and spec.m >= 1, f"width must be ≥ 1 for an MLP memory, got m={spec.m}")
    check(
        spec.rank is None or 1 <= spec.rank <= spec.d,
        f"rank must be in [1, d={spec.d}], got rank={spec.rank}",
    )
    check(spec.M is None or spec.M >= 2, f"outputs M must be ≥ 2 (or unset for M = N), got M={spec.M}")
    _one_of("target", spec.target, TARGET_KINDS)
    check(
        (spec.target == "bijection") == (spec.M is None),
        "target 'bijection' needs M unset (M = N), and M needs 'balanced' or 'random'",
    )
    check(spec.alpha >= 0, f"zipf alpha must be ≥ 0, got alpha={spec.alpha}")
    _one_of("geometry", spec.geometry, GEOMETRIES)
    check(0.0 < spec.criterion <= 1.0, f"criterion must be in (0, 1], got {spec.criterion}")
    check(spec.top_k >= 1, f"top_k must be ≥ 1, got top_k={spec.top_k}")
    check(
        len(spec.lrs) >= 1 and all(lr > 0 for lr in spec.lrs),
        f"learning rates must be > 0, got lrs={list(spec.lrs)}",
    )
    check(spec.n_steps >= 1, f"n_steps must be ≥ 1, got n_steps={spec.n_steps}")
    check(spec.eval_every >= 1, f"eval_every must be ≥ 1, got eval_every={spec.eval_every}")
    _one_of("optimizer", spec.optimizer, OPTIMIZERS)


def memory_model(spec: MemorySpec) -> Model:
    """The :class:`~factrecall.core.base.Model` that ``spec`` trains or constructs."""
    if spec.model == "linear":
        return linear_memory(spec.d, spec.rank)
    return mlp_memory(spec.d, spec.m)


def settings(spec: MemorySpec) -> Settings:
    """The engine settings of one run of ``spec`` (budget, evaluation period, criterion, optimizer)."""
    return Settings(
        spec.n_steps,
        spec.eval_every,
        spec.criterion,
        spec.optimizer,
        spec.schedule,
        spec.warmup,
        patience=spec.patience,
    )


def param_count(spec: MemorySpec) -> tuple[int, int]:
    """(weights the paper counts, extra parameters counted apart): d² or 2dr; 2md and the bias m."""
    if spec.model == "linear":
        return bounds.linear_params(spec.d, spec.rank), 0
    return bounds.mlp_params(spec.d, spec.m), bounds.mlp_bias_params(spec.m)


def params_note(spec: MemorySpec) -> str:
    """What :func:`param_count` counts, in words (the summary's ``params_note``)."""
    if spec.model == "linear":
        return "d² (W)" if spec.rank is None or spec.rank >= spec.d else "2·d·r (A and B)"
    return "2·m·d (W and V); the bias b (m) is in extra_params"


def default_guess(spec: MemorySpec) -> int:
    """A starting N near the expected capacity (only speeds the search up; any value ≥ 1 works).

    >>> default_guess(MemorySpec("linear", 32)) == int(bounds.solve_n_log_n(1024 / 1.1))
    True
    """
    params, _ = param_count(spec)
    if spec.model == "linear" and spec.method == "hebbian":
        guess = bounds.solve_n_log_n(params / 8)
    elif spec.model == "linear":
        guess = bounds.solve_n_log_n(params / 1.1)
    elif spec.M is not None:  # ours: m·d ≈ 1.05·N (Figure 6, quick); the paper's guide 1.2
        guess = params / 2 / 1.05
    elif spec.method == "construction":
        guess = bounds.solve_n_log_n(params / 8)
    else:  # ours: m·d ≈ 0.30·N ln N (0.28–0.38 over Figure 1's quick grid, α = 1…8); the paper's guide 0.35
        guess = bounds.solve_n_log_n(params / 2 / 0.30)
    return max(2, int(guess))
