"""The paper's numbers, in one table: every constant the guide lines, the figures' comparisons and the report
quote from Nichani, Lee & Bietti (ICLR 2025), each with its value, where in the paper it comes from, what it
means and which ``factrecall reproduce`` figure measures it (no JAX, no imports of the package).

These are the paper's values, quoted for comparison; no result of ours is ever computed from them (the guide
lines of :mod:`factrecall.core.bounds` draw them, the figures put their measurement next to them). One
setting of the paper's is here too, :data:`PAPER_LRS`: the experiments' models (no JAX) and the training
library read that one tuple.
"""

from __future__ import annotations

import math
from typing import NamedTuple


class Constant(NamedTuple):
    """A number the paper reports (not a measurement of ours).

    Attributes:
        value: the paper's value.
        source: where in the paper it comes from (quoted as each comparison row's ``paper_source``).
        meaning: what it says, in a few words (the report's table shows it).
        figure: the ``factrecall reproduce`` figure whose comparison measures it; ``None`` for a guide line
            that is drawn but not measured.
    """

    value: float
    source: str
    meaning: str
    figure: str | None


PAPER: dict[str, Constant] = {
    # §3, Figure 1 and Figure 6: associative memories (M = N unless said)
    "linear_d2_over_NlogN": Constant(
        1.3,
        "Fig. 1 left: d² = 1.3·N log N (trained linear memory, 99% accuracy)",
        "linear memory: d² / (N log N) at capacity",
        "fig1",
    ),
    "mlp_md_over_NlogN": Constant(
        0.35,
        "Fig. 1 right: m·d = 0.35·N log N (trained MLP memory, M = N)",
        "MLP memory: m·d / (N log N) at capacity",
        "fig1",
    ),
    "mlp_exponent": Constant(
        0.9,
        "Fig. 1 right caption: N ∝ (m·d)^0.9",
        "MLP memory: exponent of capacity N in m·d",
        "fig1",
    ),
    "mlp_fixed_M_md_over_N": Constant(
        1.2,
        "Fig. 6: m·d = 1.2·N (trained MLP memory, M = 32 outputs)",
        "MLP memory with M = 32 outputs: m·d / N at capacity",
        "fig6",
    ),
    "linear_ceiling_NlogN_over_d2": Constant(
        0.5,
        "sharp asymptotics of the best linear memory: N log N → d²/2",
        "linear memory, every association correct: N log N / d² (drawn in Figure 1)",
        None,
    ),
    "hebbian_NlogN_over_d2": Constant(
        0.125,
        "Thm 1 construction, all correct: N log N ≈ d²/8 (SPEC §1.3)",
        "Hebbian linear memory, every association correct: N log N / d²",
        None,
    ),
    # §4–§5, Figure 4: one-layer transformers on the factual-recall task (H = 8, D = 8, S = R)
    "transformer_facts_per_param": Constant(
        0.15,
        "Fig. 4 left: facts = 0.15·params (≈ 0.45 bits/param)",
        "trained transformer: facts stored per parameter",
        "fig4",
    ),
    "transformer_facts_slope": Constant(
        1.0,
        "Fig. 4 left: linear scaling",
        "trained transformer: log-log slope of facts stored vs parameters",
        "fig4",
    ),
    "transformer_bits_per_param": Constant(
        0.45,
        "Fig. 4: ≈ 0.45 bits/param",
        "trained transformer: bits stored per parameter (S·R·log2 D / params), per width ratio",
        "fig4",
    ),
    # Figure 4 right: accuracy over heads H × MLP width m (d = 32, S = R = 32, D = 8, d_h = 8)
    "tradeoff_single_head_accuracy": Constant(
        0.35,
        "Fig. 4 right: H = 1 stays at 0.2–0.35",
        "one head (H = 1): best accuracy over every MLP width (top of the band 0.2–0.35)",
        "fig4-tradeoff",
    ),
    "tradeoff_many_heads_accuracy": Constant(
        1.0,
        "Fig. 4 right: reaches 1.0",
        "H ≥ 6 heads with m ≥ 48: accuracy (≈ 1)",
        "fig4-tradeoff",
    ),
    "tradeoff_heads_without_mlp": Constant(
        19.0,
        "Fig. 4 right: ≈ 18–20 heads without MLP (S = R = 32)",
        "no MLP: fewest heads storing every fact (middle of 18–20)",
        "fig4-tradeoff",
    ),
    "tradeoff_frontier_mlp_at_zero_attention": Constant(
        2300.0,
        "Fig. 4 right (trained, d=32, S=R=32, D=8): frontier d·m ≈ 2300 − d·d_h·H / 2",
        "trained frontier: MLP parameters d·m needed without attention (drawn)",
        None,
    ),
    "tradeoff_frontier_slope": Constant(
        0.5,
        "Fig. 4 right (trained, d=32, S=R=32, D=8): frontier d·m ≈ 2300 − d·d_h·H / 2",
        "trained frontier: MLP parameters d·m saved per attention parameter d·d_h·H (drawn)",
        None,
    ),
    # §4 (Theorems 3–4): constructions
    "construction_params_slope": Constant(
        1.0,
        "§4 (Thms 3–4): constructions store S·R facts with params ∝ S·R up to log factors",
        "constructions: log-log slope of the fewest parameters storing every fact vs S·R",
        "constructions",
    ),
    # §5 and Figure 5: training dynamics of the simplified model (S=16, R=4, D=8, lr 0.1, batch 1024)
    "fig5_plateau_loss": Constant(
        math.log(8),
        "Fig. 5: the middle (hallucination) plateau sits at log D = log 8",
        "loss (nats) on the hallucination plateau",
        "fig5",
    ),
    "fig5_relation_step": Constant(
        1700,
        "Fig. 5: the loss leaves log(R·D) at ≈ 1,600–1,900 steps",
        "step of the relation transition (the loss leaves log(R·D))",
        "fig5",
    ),
    "fig5_subject_step": Constant(
        4300,
        "Fig. 5: the hallucination plateau ends at ≈ 4,000–4,500 steps",
        "step of the subject transition (the hallucination plateau ends)",
        "fig5",
    ),
    "fig5_final_loss": Constant(
        0.01,
        "Fig. 5: loss ≈ 0.01 at 8,192 steps",
        "loss (nats) after 8,192 steps",
        "fig5",
    ),
    "dynamics_subject_slope_S": Constant(
        1.0,
        "§5: t_sub / t_rel = (S/R)·sqrt((R−1)/(D−1)), linear in S",
        "subject transition: log-log slope of its step in S",
        "plateau",
    ),
    "dynamics_relation_spread_S": Constant(
        1.0,
        "§5: λ_rel does not depend on S; the relation transition stays put",
        "relation transition: largest / smallest step over S",
        "plateau",
    ),
    "dynamics_measured_over_predicted": Constant(
        1.0,
        "§5: saddle escape after ≈ log(2/ε)/(lr·λ) steps",
        "transition steps: measured / predicted (worst over the grid)",
        "plateau",
    ),
}

PAPER_LRS: tuple[float, ...] = (1e-3, 3e-3, 1e-2)
"""The learning-rate grid of the paper's trained transformers (Adam, the best rate kept; Figure 4): the
default grid of a transformer-capacity experiment and of the Figure 4 trade-off grid."""
