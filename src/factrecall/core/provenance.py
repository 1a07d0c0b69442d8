"""What a result needs to be trusted and rerun: package versions, device, command line, time.

Every JSON result and every stored row carries :func:`run_info`.
"""

from __future__ import annotations

import datetime as _dt
import functools
import importlib.metadata
import platform
import sys
from typing import Any

PACKAGES = ("factrecall", "jax", "jaxlib", "optax", "numpy")


@functools.lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    """Installed versions of the packages that decide the numbers (``missing`` when absent)."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "missing"
    return out


def device() -> str:
    """The JAX backend and devices results were computed on, e.g. ``cpu ×2 (cpu)``."""
    import jax

    devs = jax.devices()
    kinds = sorted({getattr(d, "device_kind", d.platform) for d in devs})
    return f"{jax.default_backend()} ×{len(devs)} ({', '.join(kinds)})"


def run_info() -> dict[str, Any]:
    """Versions, device, command line and UTC time of this run."""
    return {
        "versions": versions(),
        "device": device(),
        "platform": platform.platform(),
        "command": " ".join(["factrecall", *sys.argv[1:]]) if sys.argv else "",
        "utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
