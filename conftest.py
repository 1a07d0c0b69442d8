"""Root conftest: runs before anything imports JAX, for the tests and the doctests in src/ alike.

It gives JAX one device per CPU core (as the command line does) and a persistent compilation cache for this
test session only: a fresh temporary directory, exported through ``JAX_COMPILATION_CACHE_DIR`` so that the
subprocesses the tests start (the CLI, sweep workers) share it, and removed when the session ends. Programs
compiled again from a new closure or in another process are then loaded, not recompiled; a loaded program
is the compiled one, so no number changes.

Strict dtype promotion cannot be global (optax's Adam mixes int counts and floats); our own array code is
checked under it in tests/memories/test_memories.py.
"""

import os
import shutil
import tempfile

import factrecall

factrecall.use_cpu_cores()

# pytest-xdist's workers inherit the controller's environment: they find the session's directory there and
# share it (a program one worker compiled, the other loads); only the process that made it removes it
_OWNER = "FACTRECALL_TEST_JAX_CACHE" not in os.environ
if _OWNER:
    os.environ["FACTRECALL_TEST_JAX_CACHE"] = tempfile.mkdtemp(prefix="factrecall-jax-cache-")
_CACHE = os.environ["FACTRECALL_TEST_JAX_CACHE"]
os.environ["JAX_COMPILATION_CACHE_DIR"] = _CACHE
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"  # small programs are worth caching too
os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
# unbounded, unlike the command line's (core.devices.CACHE_MAX_BYTES), and so for the commands the tests run:
# bounded, JAX scans every entry of the directory on each write, and the suite writes thousands. Unbounded,
# JAX takes no lock: a worker may read an entry another is still writing; JAX then warns ("Error … while
# decompressing data") and compiles the program itself: no number changes
os.environ["JAX_COMPILATION_CACHE_MAX_SIZE"] = "-1"


def pytest_unconfigure(config):
    """Remove this session's compilation cache (in the process that made it)."""
    if _OWNER:
        shutil.rmtree(_CACHE, ignore_errors=True)
