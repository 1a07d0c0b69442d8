"""factrecall: how neural networks store facts.

A reference implementation of *Understanding Factual Recall in Transformers via Associative Memories*
(E. Nichani, J. D. Lee, A. Bietti; ICLR 2025, arXiv 2412.06538v2), and more.

The package is layered (``tests/test_layers.py``): ``core`` (engine, search, bounds, the paper's constants)
→ ``memories`` (associative memories and their capacity) → ``recall`` (the factual-recall task and the
one-layer transformer) → ``dynamics`` (training dynamics) → ``facts`` (users' fact tables, the planner) →
``editing`` (edits of the memories) → ``experiments`` (the experiments' specs, sweeps, the results store,
figures, the report) → ``cli``.

The calls a researcher makes from a notebook are re-exported here from :mod:`factrecall.api`
(``factrecall.memory_capacity(...)``, ``factrecall.train_transformer(...)``, ...); they are imported on
first use, so ``import factrecall`` does not start JAX (call :func:`use_cpu_cores` first to give JAX one
device per CPU core, as the command line does, and :func:`use_compilation_cache` to keep compiled programs on
disk as the command line does).
"""

from typing import Any

from factrecall.core.devices import use_cpu_cores
from factrecall.core.errors import ConfigError, FactrecallError, TrainingError

__version__ = "0.1.0"

API = (
    "Result",
    "attribute",
    "construct",
    "edit",
    "editing_study",
    "training_dynamics",
    "evaluate",
    "load",
    "memory_capacity",
    "plan",
    "query",
    "results",
    "sweep",
    "train_transformer",
    "transformer_capacity",
)
__all__ = [
    "ConfigError",
    "FactrecallError",
    "TrainingError",
    "__version__",
    "use_compilation_cache",
    "use_cpu_cores",
    *API,
]


def __getattr__(name: str) -> Any:
    if name in API:
        from factrecall import api

        return getattr(api, name)
    if name == "use_compilation_cache":  # imports JAX
        from factrecall.core.cache import use_compilation_cache

        return use_compilation_cache
    raise AttributeError(f"module 'factrecall' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
