"""The compilation cache's folder stays writable when it holds programs written unbounded."""

import os
import subprocess
import sys

from factrecall.core.cache import mend_access_times


def test_a_program_without_an_access_time_gets_its_write_time(tmp_path):
    (tmp_path / "old-cache").write_bytes(b"program")  # written unbounded: no access time
    (tmp_path / "new-cache").write_bytes(b"program")
    (tmp_path / "new-atime").write_bytes((7).to_bytes(8, "little"))
    assert mend_access_times(str(tmp_path)) == 1
    written = (tmp_path / "old-cache").stat().st_mtime_ns
    assert int.from_bytes((tmp_path / "old-atime").read_bytes(), "little") == written
    assert int.from_bytes((tmp_path / "new-atime").read_bytes(), "little") == 7  # left as it was
    assert mend_access_times(str(tmp_path)) == 0 and mend_access_times(str(tmp_path / "none")) == 0


def test_a_bounded_cache_keeps_new_programs_beside_ones_written_unbounded(tmp_path):
    """JAX's bounded cache reads every entry's access time on each write and fails the write (a warning, and
    nothing kept) when one is missing; ``use_compilation_cache`` mends the folder first."""
    code = """if True:
        import factrecall, jax
        factrecall.use_cpu_cores()
        factrecall.use_compilation_cache()
        jax.jit(lambda x: x * 3 - 1)(jax.numpy.ones(5))
    """
    folder = tmp_path / "factrecall" / "jax"
    folder.mkdir(parents=True)
    (folder / "unbounded-cache").write_bytes(b"a program written with JAX_COMPILATION_CACHE_MAX_SIZE=-1")
    drop = ("JAX_COMPILATION_CACHE_DIR", "JAX_ENABLE_COMPILATION_CACHE", "FACTRECALL_NO_CACHE")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env |= {
        "XDG_CACHE_HOME": str(tmp_path),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_COMPILATION_CACHE_MAX_SIZE": str(2**30),  # bounded, as the command line's
    }
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert "Error writing persistent compilation cache entry" not in run.stderr, run.stderr
    kept = [p for p in folder.glob("*-cache") if p.name != "unbounded-cache"]
    assert kept and all((folder / (p.name.removesuffix("-cache") + "-atime")).exists() for p in kept)
    assert (folder / "unbounded-atime").exists()
