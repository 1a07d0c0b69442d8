"""JAX's persistent compilation cache, turned on (or off) as every command does; ``factrecall`` re-exports
:func:`use_compilation_cache` for notebooks and scripts."""

from __future__ import annotations

import os
from pathlib import Path

import filelock
import jax

from factrecall.core.devices import CACHE_MAX_BYTES, compilation_cache_dir

# JAX reads these when it is imported; use_compilation_cache sets them for this process from the environment
_CACHE_VARIABLES = {
    "JAX_ENABLE_COMPILATION_CACHE": lambda v: v.lower() not in ("0", "false"),
    "JAX_COMPILATION_CACHE_DIR": str,
    "JAX_COMPILATION_CACHE_MAX_SIZE": int,
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": float,
}
_turned_off = False  # this process's JAX_ENABLE_COMPILATION_CACHE=false is ours (enabling undoes it)


def use_compilation_cache(enabled: bool = True) -> str | None:
    """Keep JAX's compiled programs on disk, as every command does: a program compiled once (in this process,
    an earlier one, or a command) is loaded instead of compiled again. A loaded program is the compiled one,
    so no number changes.

    The cache is :func:`compilation_cache_dir` (shared with the command line), bounded at
    :data:`CACHE_MAX_BYTES`, and keeps programs that took at least 0.5 s to compile. The settings are
    exported to this process's environment too, so the worker processes a sweep starts share the cache; a
    variable already set wins (``JAX_COMPILATION_CACHE_MAX_SIZE``,
    ``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS``), except that ``enabled=False`` always turns the cache off
    (``JAX_ENABLE_COMPILATION_CACHE=false``), and ``enabled=True`` undoes that. Call it before the first
    computation: JAX may not take up a cache folder once it has compiled something.

    Args:
        enabled: False turns the cache off (the command line's ``--no-cache``).

    Returns:
        The cache's folder, or None when it is off (``enabled=False`` or ``FACTRECALL_NO_CACHE=1``).
    """
    global _turned_off
    path = compilation_cache_dir() if enabled else None
    if path is None:
        os.environ["JAX_ENABLE_COMPILATION_CACHE"] = "false"
    else:
        os.environ["JAX_COMPILATION_CACHE_DIR"] = path
        if _turned_off:  # our own "off", not the user's
            os.environ["JAX_ENABLE_COMPILATION_CACHE"] = "true"
        os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(CACHE_MAX_BYTES))
        os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
    _turned_off = path is None
    if path is not None and int(os.environ["JAX_COMPILATION_CACHE_MAX_SIZE"]) > 0:
        mend_access_times(path)
    for name, parse in _CACHE_VARIABLES.items():
        if name in os.environ:
            jax.config.update(name.lower(), parse(os.environ[name]))
    return path


def mend_access_times(path: str) -> int:
    """Give each program in the cache folder ``path`` that has no access-time file one (its write time);
    return how many were mended.

    A bounded JAX cache reads every entry's ``<key>-atime`` file whenever it writes one, and a missing file
    fails the write: JAX warns ("Error writing persistent compilation cache entry … -atime") and keeps
    nothing, for every new program, for good. Entries written unbounded (``JAX_COMPILATION_CACHE_MAX_SIZE``
    −1, or by factrecall before its cache was bounded) have no such file. Done under JAX's own lock; skipped
    if another process holds it for 10 s.
    """
    folder = Path(path)
    if not folder.is_dir():
        return 0
    try:
        with filelock.FileLock(folder / ".lockfile", timeout=10):
            mended = 0
            for entry in folder.glob("*-cache"):
                atime = folder / (entry.name.removesuffix("-cache") + "-atime")
                if not atime.exists():
                    atime.write_bytes(entry.stat().st_mtime_ns.to_bytes(8, "little"))
                    mended += 1
            return mended
    except filelock.Timeout:
        return 0
