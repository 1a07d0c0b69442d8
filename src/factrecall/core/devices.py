"""How many CPU cores this process may use, and exposing them to JAX as separate devices; where the
compilation cache lives (no JAX here: :mod:`factrecall.core.cache` turns the cache on).

:func:`use_cpu_cores` must run before JAX is imported; ``factrecall`` re-exports it, and the CLI, the tests,
the benchmarks and every sweep worker call it first thing, so a point is computed with the same device count
(and so the same numbers) wherever it runs.
"""

from __future__ import annotations

import os
import sys


def cpu_count() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one, else all cores).

    >>> cpu_count() >= 1
    True
    """
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def use_cpu_cores(n: int | None = None) -> bool:
    """Expose ``n`` CPU cores (default: :func:`cpu_count`) as separate JAX CPU devices.

    XLA runs one CPU device's small matrix products on about one core; with one device per core,
    :func:`factrecall.core.engine.train_many` shards its batch of runs and uses the whole machine (≈1.6× on
    two cores). It only touches the CPU platform: on a GPU, JAX's default devices are unchanged.

    Args:
        n: number of CPU devices (≥ 1); ``None`` for every core this process may use.

    Returns:
        Whether the setting was applied (False when JAX was already imported or ``XLA_FLAGS`` already sets
        the device count).
    """
    if "jax" in sys.modules:
        return False
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" in flags:
        return False
    count = n if n is not None else cpu_count()
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={max(1, count)}".strip()
    return True


CACHE_MAX_BYTES = 2**30
"""The command line's bound on its compilation cache (1 GiB; ``JAX_COMPILATION_CACHE_MAX_SIZE``, in bytes,
overrides it, −1 for none). Bounded, JAX evicts the least recently used programs and reads and writes every
entry under a file lock (``filelock``), so processes sharing the cache never read an entry another is still
writing; unbounded, it takes no lock."""


def compilation_cache_dir() -> str | None:
    """Where the command line keeps JAX's persistent compilation cache, or None when it is off.

    Off when ``FACTRECALL_NO_CACHE`` is set to anything but ``0`` or empty; ``JAX_COMPILATION_CACHE_DIR``
    (JAX's own variable) wins when set; otherwise ``$XDG_CACHE_HOME/factrecall/jax`` (default
    ``~/.cache/factrecall/jax``).
    """
    if os.environ.get("FACTRECALL_NO_CACHE", "") not in ("", "0"):
        return None
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return os.environ["JAX_COMPILATION_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "factrecall", "jax")
