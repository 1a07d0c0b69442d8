"""Compile time of the random draws that set up a transformer: JAX's shaped draws vs our flat ones.

Setting up a batch of B small transformers (:func:`factrecall.recall.transformer.init_padded`, vmapped over
B keys and shapes, and the task's embeddings) compiles one program per random draw when it runs op by op,
as :func:`factrecall.recall.training.train_batch` runs it. A vmapped or 3-d Threefry draw compiles in about
a second on a CPU; drawn flat and reshaped (:func:`factrecall.core.base.flat`) the same numbers compile in a
fraction of that. Each row runs both in fresh processes (nothing cached in memory or on disk), checks
that they return the same arrays, and prints the ratio.

Usage::

    python benchmarks/bench_draws.py            # three shapes, 3 repeats each
    python benchmarks/bench_draws.py --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

# (d, H, d_h, m, vocab, n_out, B): the suite's tiny model, the default recipe's d = 16, the paper's d = 32
SHAPES = [(16, 2, 4, 16, 23, 20, 8), (16, 8, 2, 16, 120, 64, 8), (32, 4, 8, 64, 73, 128, 8)]

CHILD = r"""
import json, math, sys, time
import jax, jax.numpy as jnp, numpy as np
import factrecall
factrecall.use_cpu_cores()
from factrecall.recall import transformer
d, H, d_h, m, vocab, n_out, B, kind, out = sys.argv[1:]
d, H, d_h, m, vocab, n_out, B = map(int, (d, H, d_h, m, vocab, n_out, B))
cfg = transformer.TransformerConfig(d=d, H=H, d_h=d_h, m=m, vocab=vocab, n_out=n_out)
if kind == "shaped":  # what the code did before: jax.random's draw of each weight's shape
    def normal(key, shape):
        return jax.random.normal(key, shape)
    transformer.normal = normal
    transformer.gaussian = lambda n, d_, *, key: normal(key, (n, d_)) / jnp.sqrt(d_)
keys = jax.random.split(jax.random.key(0), B)
H_live = jnp.arange(B) % H + 1
start = time.perf_counter()
params = jax.vmap(lambda h, k: transformer.init_padded(cfg, h, m, key=k))(H_live, keys)
jax.block_until_ready(params)
seconds = time.perf_counter() - start
np.savez(out, **{k: np.asarray(v) for k, v in params.items()})
print(json.dumps({"seconds": seconds}))
"""


def _one(shape: tuple[int, ...], kind: str, out: Path) -> float:
    env = {**os.environ, "JAX_ENABLE_COMPILATION_CACHE": "false"}
    args = [sys.executable, "-c", CHILD, *map(str, shape), kind, str(out)]
    done = subprocess.run(args, capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import numpy as np

    print(f"{'d, H, d_h, m, vocab, n_out, B':32s} {'shaped s':>9s} {'flat s':>7s} {'ratio':>6s}  same arrays")
    with tempfile.TemporaryDirectory() as tmp:
        for shape in SHAPES:
            times: dict[str, list[float]] = {"shaped": [], "flat": []}
            for _ in range(args.repeats):
                for kind in times:  # side by side, alternating
                    times[kind].append(_one(shape, kind, Path(tmp) / f"{kind}.npz"))
            a, b = np.load(Path(tmp) / "shaped.npz"), np.load(Path(tmp) / "flat.npz")
            same = all(np.array_equal(a[k], b[k]) for k in a.files)
            shaped, flat = statistics.median(times["shaped"]), statistics.median(times["flat"])
            label = ", ".join(map(str, shape))
            print(f"{label:32s} {shaped:9.2f} {flat:7.2f} {flat / shaped:6.2f}  {same}")


if __name__ == "__main__":
    main()
