"""A trained transformer as its users see it: its JSON record (:func:`report`) and its file (:func:`save`,
:func:`load`).

File format (``.npz``, read with :func:`load`; ``numpy.load(path)`` needs no pickle):

* ``param/<name>``: each parameter of :mod:`factrecall.recall.transformer` (``wte``, ``unembed``, ``Q``,
  ``K``, ``V``, ``O``, ``W1``, ``b1``, ``W2``), float32, unpadded (:func:`unpad`);
* ``facts``: the (S, R) int32 dictionary a*(s, r) (answer ids in [0, R·D));
* ``meta``: a 0-d string holding JSON ``{"format": "factrecall-transformer", "version": 1, "config":
  {TransformerConfig fields}, "task": {RecallTask fields}, "train": {lr, steps, seed, ...}}``.

Paper: §4 (the model), §5 (bits per parameter); SPEC §3, §5.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from factrecall.core.base import Array, Int, Key, Params
from factrecall.core.errors import ConfigError, check
from factrecall.core.io import atomic_file
from factrecall.recall.task import RecallTask, sample
from factrecall.recall.training import Trained, logits_of, score_facts_jit
from factrecall.recall.transformer import TransformerConfig, param_counts

__all__ = ["FORMAT", "VERSION", "Trained", "load", "report", "sampled_accuracy", "save", "unpad"]

FORMAT, VERSION = "factrecall-transformer", 1


def sampled_accuracy(
    params: Params, cfg: TransformerConfig, task: RecallTask, facts: Int[Array, "S R"], B: int, *, key: Key
) -> float:
    """Accuracy on B freshly sampled sequences (s, r) ~ p·q: the paper's test batch."""
    return int(_sampled_hits(params, cfg, task, facts, B, key)) / B


@functools.partial(jax.jit, static_argnums=(1, 2, 4))
def _sampled_hits(params: Params, cfg: TransformerConfig, task: RecallTask, facts: Array, B: int, key: Key):
    seqs = sample(task, facts, B, key=key)
    return jnp.sum(jnp.argmax(logits_of(params, seqs.tokens, cfg), axis=-1) == seqs.labels)


def report(model: Trained, n_contexts: int = 8, n_sampled: int = 4096, *, key: Key) -> dict[str, Any]:
    """The JSON record of a model: parameter counts, accuracy over every fact and sampled, bits/param."""
    cfg, task = model.cfg, model.task
    k_all, k_sample = jax.random.split(key)
    scores = score_facts_jit(model.params, cfg, task, model.facts, n_contexts, key=k_all)
    counts = param_counts(cfg)
    total = n_contexts * task.n_facts
    stored_mask = np.rint(np.asarray(scores.correct) * n_contexts) == n_contexts  # right in every context
    stored = float(np.mean(stored_mask))
    fact_bits = _fact_bits(model)
    bits_stored = float(fact_bits[stored_mask].sum())
    return {
        "params": counts.paper,
        "attention_params": counts.attention,
        "mlp_params": counts.mlp,
        "bias_params": counts.bias,
        "embedding_params": counts.embeddings,
        "params_note": "4·H·d_h·d + 2·m·d (Q, K, V, O, W1, W2); bias and trained embeddings apart",
        "facts": task.n_facts,
        "fact_accuracy": int(scores.n_correct) / total,
        "facts_stored": stored,
        "fact_loss": float(scores.fact_loss),
        "eval_contexts": n_contexts,
        "sampled_accuracy": sampled_accuracy(model.params, cfg, task, model.facts, n_sampled, key=k_sample),
        "bits": float(fact_bits.sum()),
        "bits_stored": bits_stored,
        "bits_per_param": bits_stored / counts.paper,
        "bits_note": "Σ over facts stored of log2 D_r (D_r: answers of the fact's relation; D on the "
        "synthetic task), per paper parameter (SPEC §5)",
        **model.info,
        "config": cfg._asdict(),
        "task": task._asdict(),
    }


def _fact_bits(model: Trained) -> np.ndarray:
    """log2 D_r of each fact (S, R): its relation's answer count — D on the synthetic task, the table's own
    counts for a model trained on a fact table (saved in ``info["table"]``), which may be uneven."""
    names = model.info.get("table")
    counts = [len(a) for a in names["answers"]] if names else [model.task.D] * model.task.R
    return np.broadcast_to(np.log2(np.asarray(counts, np.float64))[None, :], (model.task.S, model.task.R))


def unpad(params: Params, cfg: TransformerConfig) -> Params:
    """The first ``cfg.H`` heads and ``cfg.m`` units of (possibly padded) ``params``."""
    H, m, d_h = cfg.H, cfg.m, cfg.d_h
    cut = {"Q": (slice(0, H),), "K": (slice(0, H),), "V": (slice(0, H),), "O": (slice(0, H * d_h),)}
    cut |= {"W1": (slice(None), slice(0, m)), "b1": (slice(0, m),), "W2": (slice(0, m),)}
    return {k: v[cut[k]] if k in cut else v for k, v in params.items()}


def save(path: str | Path, model: Trained) -> None:
    """Write ``model`` to ``path`` (.npz: params, facts and a JSON ``meta``; see the module docstring),
    atomically: a reader sees the old file or the whole new one, and a failed write leaves nothing."""
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "config": model.cfg._asdict(),
        "task": model.task._asdict(),
        "train": model.info,
    }
    arrays = {f"param/{k}": np.asarray(v, np.float32) for k, v in unpad(model.params, model.cfg).items()}
    with atomic_file(Path(path)) as tmp, open(tmp, "wb") as f:
        np.savez(f, facts=np.asarray(model.facts, np.int32), meta=np.array(json.dumps(meta)), **arrays)


def load(path: str | Path) -> Trained:
    """Read a model written by :func:`save`.

    Raises:
        ConfigError: the file is missing, not an .npz, or not in this format.
    """
    path = Path(path)
    check(path.is_file(), f"model file {str(path)!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            params = {k.removeprefix("param/"): jnp.asarray(z[k]) for k in z.files if k.startswith("param/")}
            facts = jnp.asarray(z["facts"])
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{str(path)!r} is not a saved factrecall model ({exc})") from exc
    check(
        meta.get("format") == FORMAT and meta.get("version") == VERSION,
        f"{str(path)!r} has format {meta.get('format')!r} v{meta.get('version')}; "
        f"expected {FORMAT!r} v{VERSION}",
    )
    cfg, task = TransformerConfig(**meta["config"]), RecallTask(**meta["task"])
    check(
        facts.shape == (task.S, task.R), f"facts of shape {facts.shape} do not match S={task.S}, R={task.R}"
    )
    return Trained(params, cfg, task, facts, meta.get("train", {}))
