"""Drawing, one function per paper figure, from result rows (dicts) and the guide lines of ``bounds`` (which
read the paper's constants from :data:`factrecall.core.paper.PAPER`); Figure 4's are in
:mod:`factrecall.experiments.plots_transformer`.

Each function writes ``<stem>.png`` and ``<stem>.pdf`` atomically and returns their paths. No JAX here.

Paper: Figures 1, 5 and 6, the constructions of §4; SPEC §7.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from factrecall.core import bounds, fits
from factrecall.core.io import atomic_file
from factrecall.core.paper import PAPER

Row = dict[str, Any]
COLORS = plt.rcParams["axes.prop_cycle"].by_key()["color"]


def save(fig: plt.Figure, stem: Path) -> list[Path]:
    """Write ``fig`` as PNG and PDF next to each other, each atomically (:func:`atomic_file`)."""
    paths = []
    for ext in ("png", "pdf"):
        path = stem.with_suffix(f".{ext}")
        with atomic_file(path) as tmp:
            fig.savefig(tmp, dpi=150, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


def _band(ax: plt.Axes, x: Sequence[float], rows: Sequence[Row], color: str, label: str) -> None:
    """Median N* with a min–max band over seeds."""
    order = np.argsort(x)
    xs = np.asarray(x, float)[order]
    med = np.asarray([rows[i]["capacity"] for i in order], float)
    lo = np.asarray([rows[i]["capacity_min"] for i in order], float)
    hi = np.asarray([rows[i]["capacity_max"] for i in order], float)
    ax.fill_between(xs, lo, hi, color=color, alpha=0.25, linewidth=0)
    ax.plot(xs, med, "o-", color=color, label=label, markersize=4)


def loglog(ax: plt.Axes, xlabel: str, ylabel: str, title: str) -> None:
    """Log-log axes with their labels, title, grid and legend."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)


def _linear_panel(ax: plt.Axes, rows: Sequence[Row]) -> None:
    ds = np.asarray([r["d"] for r in rows], float)
    _band(ax, ds**2, rows, COLORS[0], "trained (median, min–max over seeds)")
    grid = np.geomspace(ds.min(), ds.max(), 50)
    ax.plot(
        grid**2,
        [bounds.guide_linear(d) for d in grid],
        "k--",
        lw=1,
        label="paper's guide d² = 1.3·N log N",
    )
    ax.plot(
        grid**2,
        [bounds.ceiling_linear(d) for d in grid],
        ":",
        color="gray",
        label="all-correct ceiling N log N = d²/2",
    )
    loglog(ax, "parameters d²", "capacity N*", "Linear memory (M = N)")


def _mlp_panel(ax: plt.Axes, rows: Sequence[Row], guide: str) -> None:
    for i, alpha in enumerate(sorted({r["alpha"] for r in rows})):
        sub = [r for r in rows if r["alpha"] == alpha]
        _band(ax, [r["m"] * r["d"] for r in sub], sub, COLORS[i % len(COLORS)], f"α = m/d = {alpha:g}")
    md = np.asarray([r["m"] * r["d"] for r in rows], float)
    grid = np.geomspace(md.min(), md.max(), 50)
    if guide == "NlogN":
        c = PAPER["mlp_md_over_NlogN"].value
        guide = [bounds.guide_mlp(x, 1) for x in grid]
        ax.plot(grid, guide, "k--", lw=1, label=f"paper's guide m·d = {c:g}·N log N")
    else:
        c = PAPER["mlp_fixed_M_md_over_N"].value
        guide = bounds.guide_mlp_fixed_outputs(grid, 1)
        ax.plot(grid, guide, "k--", lw=1, label=f"paper's guide m·d = {c:g}·N")
    fit = fits.power_law(md, [r["capacity"] for r in rows])
    ax.text(0.03, 0.97, f"fit: N* ∝ (m·d)^{fit.slope:.2f}", transform=ax.transAxes, va="top", fontsize=8)


def fig1(linear_rows: Sequence[Row], mlp_rows: Sequence[Row], stem: Path) -> list[Path]:
    """Figure 1: linear capacity vs d² (left), MLP capacity vs m·d per α (right)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    if linear_rows:
        _linear_panel(axes[0], linear_rows)
    if mlp_rows:
        _mlp_panel(axes[1], mlp_rows, "NlogN")
        loglog(axes[1], "m·d (the MLP has 2·m·d weights)", "capacity N*", "MLP memory (M = N)")
    return save(fig, stem)


def fig6(rows: Sequence[Row], stem: Path) -> list[Path]:
    """Figure 6: MLP capacity with M = 32 fixed outputs vs m·d, per α, with the guide m·d = 1.2·N."""
    fig, ax = plt.subplots(figsize=(5.5, 4), layout="constrained")
    _mlp_panel(ax, rows, "N")
    loglog(ax, "m·d (the MLP has 2·m·d weights)", "capacity N*", "MLP memory, M = 32 outputs")
    return save(fig, stem)


# ---------------------------------------------------------------------------------- constructions (§4–§5)


def constructions(rows: Sequence[Row], stem: Path) -> list[Path]:
    """Left: minimal constructed params vs S·R per mechanism (fitted slopes), trained capacity if present, and
    the S·R·log2 D bits line. Right: the hybrid's frontier on Figure 4-right's axes (d·d_h·H, d·m)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    ax = axes[0]
    for i, mechanism in enumerate(("attention", "mlp")):
        sub = sorted((r for r in rows if r["panel"] == "scaling" and r["mechanism"] == mechanism), key=_facts)
        if not sub:
            continue
        x = np.asarray([_facts(r) for r in sub], float)
        y = np.asarray([r["params_per_fact_median"] * _facts(r) for r in sub], float)
        fit = fits.power_law(x, y)
        label = f"constructed, facts in the {'attention values' if mechanism == 'attention' else 'MLP'}"
        ax.plot(x, y, "o-", color=COLORS[i], label=f"{label} (slope {fit.slope:.2f})", markersize=4)
    trained = sorted((r for r in rows if r["panel"] == "trained"), key=median_facts)
    if trained:
        x = np.asarray([median_facts(r) for r in trained], float)
        ax.plot(
            x,
            [r["params"] for r in trained],
            "s--",
            color=COLORS[2],
            label="trained: largest S·R stored at 99% (Fig. 4 shapes; median over seeds)",
        )
    facts = np.asarray(sorted({_facts(r) for r in rows if r["panel"] == "scaling"}), float)
    if len(facts):
        bits = [bounds.bits_facts(int(np.sqrt(f)), int(np.sqrt(f)), 8) for f in facts]
        ax.plot(facts, bits, "k:", lw=1, label="S·R·log2 D bits (params at 1 bit/param)")
    loglog(
        ax,
        "facts S·R (S = R, D = 8)",
        "parameters 4·H·d_h·d + 2·m·d",
        "Smallest transformer storing every fact",
    )
    _frontier_panel(axes[1], [r for r in rows if r["panel"] == "hybrid"])
    return save(fig, stem)


def _facts(row: Row) -> float:
    return float(row["S"] * row["R"])


def seed_facts(row: Row) -> list[int]:
    """A capacity row's facts per seed: ``capacity_per_seed`` (``[facts]`` when absent)."""
    return row.get("capacity_per_seed") or [row["facts"]]


def median_facts(row: Row) -> float:
    """A capacity row's facts: the median over its seeds (:func:`seed_facts`)."""
    return float(np.median(seed_facts(row)))


def _frontier_panel(ax: plt.Axes, rows: Sequence[Row]) -> None:
    if not rows:
        ax.set_axis_off()
        return
    rows = sorted(rows, key=lambda r: r["attention_share"])
    x = np.asarray([r["heatmap_attention"] for r in rows], float)
    y = np.asarray([max(r["heatmap_mlp"], 1) for r in rows], float)
    ax.plot(x, y, "o-", color=COLORS[3], label="constructed hybrid (smallest storing 100%)")
    for r, xi, yi in zip(rows, x, y, strict=True):
        ax.annotate(
            f"{r['attention_share']:.2g}", (xi, yi), fontsize=7, textcoords="offset points", xytext=(4, 4)
        )
    grid = np.linspace(0, 4600, 50)
    frontier = np.maximum(bounds.guide_frontier_mlp(grid), 1)
    ax.plot(grid, frontier, "k--", lw=1, label="paper's trained frontier d·m ≈ 2300 − d·d_h·H/2")
    ax.set_xscale("symlog", linthresh=100)
    ax.set_yscale("symlog", linthresh=100)
    ax.set_xlabel("attention parameters d·d_h·H")
    ax.set_ylabel("MLP parameters d·m")
    ax.set_title("Hybrid trade-off, S = R = 32, D = 8 (labels: attention's share of relations)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)


# -------------------------------------------------------------------------------------- dynamics (Figure 5)

STAGE_COLORS = {"uniform": "#d0d0d0", "hallucination": "#f4b183", "learned": "#a9d18e"}


def _shade_stages(ax: plt.Axes, stages: Sequence[Row]) -> None:
    for s in stages:
        ax.axvspan(s["start"], s["end"], color=STAGE_COLORS.get(s["name"], "#bdd7ee"), alpha=0.35, lw=0)


def dynamics(record: Row, stem: Path) -> list[Path]:
    """Figure 5: total, relation-only and subject-only losses (left) and accuracies (right) against steps,
    with the detected stages shaded, the levels log(R·D) and log D, and the predicted transitions.

    ``record`` holds ``steps``, ``curves`` (metric → list), ``stages``, ``levels``, ``predicted`` and
    ``title``, as written by ``factrecall dynamics`` and ``reproduce fig5``.
    """
    steps, curves = np.asarray(record["steps"], float), record["curves"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    for ax, kind in zip(axes, ("loss", "accuracy"), strict=True):
        _shade_stages(ax, record["stages"])
        ax.plot(steps, curves[kind], color="k", lw=3, alpha=0.5, label="total")
        for i, (prefix, label) in enumerate((("relation_", "relation only"), ("subject_", "subject only"))):
            ax.plot(steps, curves[prefix + kind], color=COLORS[i + 1], lw=1.5, label=label)
        for name, step in (record.get("predicted") or {}).items():
            if step is not None and step <= steps[-1]:
                ax.axvline(step, color="k", ls=":", lw=1, label=f"predicted {name} transition")
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
    levels = record["levels"]
    axes[0].axhline(
        levels["uniform"], color="gray", ls="--", lw=1, label=f"log(R·D) = {levels['uniform']:.2f}"
    )
    axes[0].axhline(
        levels["hallucination"], color="C3", ls="--", lw=1, label=f"log D = {levels['hallucination']:.2f}"
    )
    axes[0].set_ylabel("loss (nats)")
    axes[1].set_ylabel("accuracy")
    for s in record["stages"]:
        axes[0].text(
            (s["start"] + s["end"]) / 2, levels["uniform"] * 1.04, s["name"], ha="center", fontsize=7
        )
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=7, loc="lower right")
    fig.suptitle(record.get("title", "training dynamics"), fontsize=10)
    return save(fig, stem)


def plateau(rows: Sequence[Row], stem: Path) -> list[Path]:
    """Hallucination plateau vs S/R (left: transition steps vs S, log–log, with the fitted slope) and vs the
    Zipf exponent of subjects (right: plateau length = subject − relation transition), measured and predicted.
    """
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    by_s = sorted((r for r in rows if r["alpha_S"] == 0), key=lambda r: r["S"])
    if by_s:
        S = np.asarray([r["S"] for r in by_s], float)
        for i, name in enumerate(("subject", "relation")):
            got = [r["measured_" + name] for r in by_s]
            axes[0].plot(S, got, "o-", color=COLORS[i], label=f"{name} transition, measured")
            axes[0].plot(S, [r["predicted_" + name] for r in by_s], "x--", color=COLORS[i], label="predicted")
        ok = [r for r in by_s if r["measured_subject"]]
        if len(ok) >= 2:
            fit = fits.power_law([r["S"] for r in ok], [r["measured_subject"] for r in ok])
            axes[0].text(
                0.03, 0.97, f"subject step ∝ S^{fit.slope:.2f}", transform=axes[0].transAxes, va="top"
            )
        loglog(axes[0], "subjects S (R, D fixed)", "transition step", "transitions vs S")
    zipf_S = {r["S"] for r in rows if r["alpha_S"] > 0}
    by_a = sorted((r for r in rows if r["S"] in zipf_S), key=lambda r: r["alpha_S"])
    if by_a:
        a = [r["alpha_S"] for r in by_a]
        axes[1].plot(a, [r["plateau_length"] for r in by_a], "o-", label="measured")
        axes[1].plot(
            a, [r["predicted_subject"] - r["predicted_relation"] for r in by_a], "x--", label="predicted"
        )
        axes[1].set_xlabel("Zipf exponent α_S of subjects")
        axes[1].set_ylabel("plateau length (steps)")
        axes[1].set_title(f"hallucination plateau vs imbalance (S = {by_a[0]['S']})", fontsize=10)
        axes[1].grid(True, alpha=0.3)
        axes[1].legend(fontsize=7)
    return save(fig, stem)


# ------------------------------------------------------------------------- planner and attribution (ours)


def planner_scaling(rows: Sequence[Row], stem: Path) -> list[Path]:
    """Capacity in bits vs parameters per shape family (the planner's data), with the fitted power laws."""
    from factrecall.facts.scaling import fit

    fig, ax = plt.subplots(figsize=(5.5, 4), layout="constrained")
    fitted = fit([dict(r) for r in rows])
    for i, name in enumerate(dict.fromkeys(r["family"] for r in rows)):
        sub = [r for r in rows if r["family"] == name and r["bits"] > 0]
        P = np.asarray([r["params"] for r in sub], float)
        color = COLORS[i % len(COLORS)]
        ax.plot(P, [r["bits"] for r in sub], "o", color=color, label=f"{name} (measured)")
        if name in fitted:
            f = fitted[name]
            grid = np.geomspace(P.min(), P.max(), 50)
            ax.plot(grid, f.c * grid**f.beta, "-", color=color, lw=1, label=f"fit: {f.c:.2g}·P^{f.beta:.2f}")
    allP = np.asarray([r["params"] for r in rows], float)
    grid = np.geomspace(allP.min(), allP.max(), 50)
    guide = PAPER["transformer_bits_per_param"].value
    ax.plot(grid, guide * grid, "k--", lw=1, label=f"paper's guide {guide:.2f} bits/param (Fig. 4, D = 8)")
    loglog(ax, "parameters 4·H·d_h·d + 2·m·d", "bits stored (n²·log2 8)", "Planner data: capacity by family")
    return save(fig, stem)


def attribution_grid(rows: Sequence[Row], stem: Path) -> list[Path]:
    """Where the facts live across the (H, m) grid: fraction stored, share of stored facts in attention, in
    the MLP (heatmaps; axes also give attention params d·d_h·H and MLP params d·m)."""
    Hs = sorted({r["H"] for r in rows})
    ms = sorted({r["m"] for r in rows})
    panels = (
        ("fraction_stored", "facts stored (full model)"),
        ("share_attention", "share stored in attention values"),
        ("share_mlp", "share stored in the MLP"),
    )
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), layout="constrained")
    for ax, (keyname, title) in zip(axes, panels, strict=True):
        grid = np.full((len(Hs), len(ms)), np.nan)
        for r in rows:
            grid[Hs.index(r["H"]), ms.index(r["m"])] = r[keyname]
        im = ax.imshow(grid, origin="lower", vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for i in range(len(Hs)):
            for j in range(len(ms)):
                if not np.isnan(grid[i, j]):
                    color = "white" if grid[i, j] < 0.5 else "black"
                    ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=7, color=color)
        d, d_h = rows[0]["d"], rows[0]["d_h"]
        ax.set_xticks(range(len(ms)), [f"{m}\n{d * m}" for m in ms], fontsize=7)
        ax.set_yticks(range(len(Hs)), [f"{H} ({d * d_h * H})" for H in Hs], fontsize=7)
        ax.set_xlabel("MLP width m  (MLP params d·m)")
        ax.set_ylabel("heads H  (attention params d·d_h·H)")
        ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=axes, shrink=0.8)
    return save(fig, stem)
