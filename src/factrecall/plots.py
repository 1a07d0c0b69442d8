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


# ------------------------------------------------------------------------- issue 7: planner and attribution


def planner_scaling(rows: Sequence[Row], stem: Path) -> list[Path]:
    """Capacity in bits vs parameters per shape family (the planner's data), with the fitted power laws."""
    from factrecall.scaling import fit

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
    guide = bounds.PAPER["transformer_facts_per_param"].value * 3.0  # facts/param × log2 8 bits per fact
    ax.plot(grid, guide * grid, "k--", lw=1, label=f"paper's guide {guide:.2f} bits/param (Fig. 4, D = 8)")
    _loglog(ax, "parameters 4·H·d_h·d + 2·m·d", "bits stored (n²·log2 8)", "Planner data: capacity by family")
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
