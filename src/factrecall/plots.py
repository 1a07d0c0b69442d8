"""Figures, one function per paper figure, drawn from result rows (dicts) and the guide lines of ``bounds``.

Each function writes ``<stem>.png`` and ``<stem>.pdf`` atomically and returns their paths. No JAX here.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from factrecall import bounds, fits

Row = dict[str, Any]
COLORS = plt.rcParams["axes.prop_cycle"].by_key()["color"]


def save(fig: plt.Figure, stem: Path) -> list[Path]:
    """Write ``fig`` as PNG and PDF next to each other, each through a temporary file and a rename."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in ("png", "pdf"):
        path = stem.with_suffix(f".{ext}")
        fd, tmp = tempfile.mkstemp(dir=stem.parent, suffix=f".{ext}")
        os.close(fd)
        fig.savefig(tmp, dpi=150, bbox_inches="tight")
        os.replace(tmp, path)
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


def _loglog(ax: plt.Axes, xlabel: str, ylabel: str, title: str) -> None:
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
    _loglog(ax, "parameters d²", "capacity N*", "Linear memory (M = N)")


def _mlp_panel(ax: plt.Axes, rows: Sequence[Row], guide: str) -> None:
    for i, alpha in enumerate(sorted({r["alpha"] for r in rows})):
        sub = [r for r in rows if r["alpha"] == alpha]
        _band(ax, [r["m"] * r["d"] for r in sub], sub, COLORS[i % len(COLORS)], f"α = m/d = {alpha:g}")
    md = np.asarray([r["m"] * r["d"] for r in rows], float)
    grid = np.geomspace(md.min(), md.max(), 50)
    if guide == "NlogN":
        ax.plot(
            grid,
            [bounds.solve_n_log_n(x / 0.35) for x in grid],
            "k--",
            lw=1,
            label="paper's guide m·d = 0.35·N log N",
        )
    else:
        ax.plot(grid, grid / 1.2, "k--", lw=1, label="paper's guide m·d = 1.2·N")
    fit = fits.power_law(md, [r["capacity"] for r in rows])
    ax.text(0.03, 0.97, f"fit: N* ∝ (m·d)^{fit.slope:.2f}", transform=ax.transAxes, va="top", fontsize=8)


def fig1(linear_rows: Sequence[Row], mlp_rows: Sequence[Row], stem: Path) -> list[Path]:
    """Figure 1: linear capacity vs d² (left), MLP capacity vs m·d per α (right)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    if linear_rows:
        _linear_panel(axes[0], linear_rows)
    if mlp_rows:
        _mlp_panel(axes[1], mlp_rows, "NlogN")
        _loglog(axes[1], "m·d (the MLP has 2·m·d weights)", "capacity N*", "MLP memory (M = N)")
    return save(fig, stem)


def fig6(rows: Sequence[Row], stem: Path) -> list[Path]:
    """Figure 6: MLP capacity with M = 32 fixed outputs vs m·d, per α, with the guide m·d = 1.2·N."""
    fig, ax = plt.subplots(figsize=(5.5, 4), layout="constrained")
    _mlp_panel(ax, rows, "N")
    _loglog(ax, "m·d (the MLP has 2·m·d weights)", "capacity N*", "MLP memory, M = 32 outputs")
    return save(fig, stem)


# ------------------------------------------------------------------------------ dynamics (Figure 5, issue 5)

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
        _loglog(axes[0], "subjects S (R, D fixed)", "transition step", "transitions vs S")
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
