"""Where the facts live: which part of a trained one-layer transformer a stored fact survives in.

The output is linear in two paths: y = h + z, with h = concat_h(o_h)·O the attention output (its value/output
path written straight into the residual stream) and z = W2ᵀ relu(W1ᵀ h + b1) the MLP. The logits split
exactly, ``U·y = U·h + U·z``, so for every fact in every context we score three sets of logits:

* **full**: U·(h + z), the model itself;
* **MLP ablated**: U·h (``forward(..., use_mlp=False)``): what the attention value/output path alone answers.
  A fact that survives is stored in the attention values (the paper's first construction, §4.2);
* **attention direct path ablated**: U·z = full − U·h: what the MLP answers while still reading h. A fact
  that survives is stored in the MLP, attention only routing subject and relation to it (§4.3). (Removing
  h altogether would also starve the MLP of its input, so every fact would die and nothing be learned.)

and, per head h, the full model with that head's value/output path zeroed (``head_mask``). A fact is
answered in a context when its answer's logit is strictly the largest (ties, e.g. the all-zero logits of an
absent MLP, count as wrong); it survives when answered in every context. Facts stored by the full model are
then split into *attention* (survives only the MLP ablation), *MLP* (survives only the direct-path
ablation), *both*, and *joint* (needs both paths at once).

Paper: §4.2–4.3 (facts in attention values vs in the MLP), Figure 4 right (the trade-off); SPEC §8.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Bool

from factrecall.core.base import Array, Float, Int, Key, Params
from factrecall.recall.task import RecallTask, every_fact
from factrecall.recall.training import logits_of
from factrecall.recall.transformer import TransformerConfig


class Attribution(NamedTuple):
    """Per-fact survival (S×R booleans: answered in every context) of a model and its ablations.

    Attributes:
        full: stored by the model.
        mlp_ablated: survives with the MLP removed (stored in the attention value/output path).
        direct_ablated: survives with attention's direct path removed (stored in the MLP).
        heads: (H, S, R) survival with each head's value/output path zeroed.
    """

    full: Bool[Array, "S R"]
    mlp_ablated: Bool[Array, "S R"]
    direct_ablated: Bool[Array, "S R"]
    heads: Bool[Array, "H S R"]

    def summary(self) -> dict[str, Any]:
        """Fractions of all facts surviving each ablation, and the split of stored facts by path."""
        full, att, mlp = (np.asarray(x) for x in (self.full, self.mlp_ablated, self.direct_ablated))
        n_stored = int(full.sum())
        split = {
            "attention": int((full & att & ~mlp).sum()),
            "mlp": int((full & mlp & ~att).sum()),
            "both": int((full & att & mlp).sum()),
            "joint": int((full & ~att & ~mlp).sum()),
        }
        return {
            "facts": int(full.size),
            "stored": n_stored,
            "fraction_stored": float(full.mean()),
            "surviving_mlp_ablation": float(att.mean()),
            "surviving_attention_direct_ablation": float(mlp.mean()),
            "surviving_head_ablation": [float(x) for x in np.asarray(self.heads).mean(axis=(1, 2))],
            "stored_split": split,
            "share_attention": (split["attention"] + split["both"]) / n_stored if n_stored else 0.0,
            "share_mlp": (split["mlp"] + split["both"]) / n_stored if n_stored else 0.0,
        }

    def facts_by_path(self, name: Callable[[int, int], str]) -> dict[str, list[str]]:
        """Names (``name(s, r)``) of the facts in each class: attention, mlp, both, joint, not_stored."""
        full, att, mlp = (np.asarray(x) for x in (self.full, self.mlp_ablated, self.direct_ablated))
        classes = {
            "attention": full & att & ~mlp,
            "mlp": full & mlp & ~att,
            "both": full & att & mlp,
            "joint": full & ~att & ~mlp,
            "not_stored": ~full,
        }
        return {
            k: [name(int(s), int(r)) for s, r in zip(*np.nonzero(v), strict=True)] for k, v in classes.items()
        }


def _answered(logits: Float[Array, "B n_out"], labels: Int[Array, " B"]) -> Bool[Array, " B"]:
    """Whether the label's logit is strictly the largest (ties count as wrong)."""
    target = jnp.take_along_axis(logits, labels[:, None], axis=-1)[:, 0]
    others = jnp.where(jax.nn.one_hot(labels, logits.shape[-1], dtype=bool), -jnp.inf, logits)
    return target > jnp.max(others, axis=-1)


def _survives(hit: Bool[Array, " B"], task: RecallTask, n_contexts: int) -> Bool[Array, "S R"]:
    return jnp.all(hit.reshape(n_contexts, task.S, task.R), axis=0)


@functools.partial(jax.jit, static_argnames=("cfg", "task", "n_contexts", "paths"))
def _survival(
    params: Params,
    cfg: TransformerConfig,
    task: RecallTask,
    facts: Int[Array, "S R"],
    n_contexts: int,
    key: Key,
    head_mask: Float[Array, " H"] | None = None,
    paths: bool = False,
) -> tuple[Bool[Array, "S R"], ...]:
    """Survival of every fact (same contexts for every call): with ``paths``, of the full model, the MLP
    ablated and attention's direct path ablated; otherwise of the model with ``head_mask`` on its heads."""
    batch = every_fact(task, facts, n_contexts, key=key)
    if paths:
        full = logits_of(params, batch.tokens, cfg)
        att = logits_of(params, batch.tokens, cfg, use_mlp=False)
        logits = (full, att, full - att)
    else:
        logits = (logits_of(params, batch.tokens, cfg, head_mask=head_mask),)
    return tuple(_survives(_answered(x, batch.labels), task, n_contexts) for x in logits)


def attribute(
    params: Params,
    cfg: TransformerConfig,
    task: RecallTask,
    facts: Int[Array, "S R"],
    n_contexts: int = 4,
    *,
    key: Key,
) -> Attribution:
    """Score every fact with the full model, each path ablated, and each head ablated (same contexts).

    >>> from factrecall.recall.task import recall_task, facts_random
    >>> from factrecall.recall.transformer import transformer
    >>> task = recall_task(3, 2, 2, T=6)
    >>> cfg = TransformerConfig(d=8, H=2, d_h=4, m=0, vocab=task.vocab, n_out=task.n_answers)
    >>> a = attribute(transformer(cfg).init(jax.random.key(0)), cfg, task,
    ...               facts_random(task, key=jax.random.key(1)), key=jax.random.key(2))
    >>> a.heads.shape, bool(a.direct_ablated.any())  # no MLP: nothing is stored in it
    ((2, 3, 2), False)
    """
    facts = jnp.asarray(facts)
    full, att, mlp = _survival(params, cfg, task, facts, n_contexts, key, paths=True)
    masks = [1.0 - jax.nn.one_hot(h, cfg.H) for h in range(cfg.H)]
    heads = [_survival(params, cfg, task, facts, n_contexts, key, mask)[0] for mask in masks]
    return Attribution(full, att, mlp, jnp.stack(heads))
