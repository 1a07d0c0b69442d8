"""factrecall: how neural networks store facts.

A reference implementation of *Understanding Factual Recall in Transformers via Associative Memories*
(E. Nichani, J. D. Lee, A. Bietti; ICLR 2025, arXiv 2412.06538v2), and more.

The layers (see STYLE.md): ``base``/``errors`` → ``embeddings``/``task``/``bounds`` → ``memories`` →
``constructions``/``engine`` → ``capacity`` → ``plots`` → ``reproduce`` → ``cli``.
"""

__version__ = "0.1.0"

import os as _os
import sys as _sys


def use_cpu_cores(n: int | None = None) -> bool:
    """Expose ``n`` CPU cores (default: all) as separate JAX CPU devices, so batches split across them.

    XLA runs one CPU device's small matrix products on about one core; with one device per core,
    :func:`factrecall.engine.train_many` shards its batch of runs and uses the whole machine (≈1.6× on two
    cores). It only touches the CPU platform: on a GPU, JAX's default devices are unchanged. It must run
    before JAX is imported; the CLI, the tests and the benchmarks call it first thing.

    Returns:
        Whether the setting was applied (False when JAX was already imported or XLA_FLAGS already sets it).
    """
    if "jax" in _sys.modules:
        return False
    flags = _os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" in flags:
        return False
    count = n or len(_os.sched_getaffinity(0)) if hasattr(_os, "sched_getaffinity") else _os.cpu_count() or 1
    _os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()
    return True
