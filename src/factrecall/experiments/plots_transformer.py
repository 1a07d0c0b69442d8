"""Drawing Figure 4 (one-layer transformers) from result rows, and the measured frontier of Figure 4 right.

Owns :func:`fig4` (left: facts stored vs parameters, per width ratio), :func:`fig4_tradeoff` (right: the
accuracy heatmap on the paper's axes, attention parameters d·d_h·H × MLP parameters d·m, with the measured
and the paper's frontiers) and :func:`measured_frontier` (the 0.99 boundary of the measured cells and the
line d·m = a − b·d·d_h·H fitted through it; the figure's comparison with the paper fits the same).
Each drawing writes ``<stem>.png`` and ``<stem>.pdf`` atomically (:func:`factrecall.experiments.plots.save`).
No JAX here.

Paper: §4–§5, Figure 4; SPEC §7 (Fig. 4 left and right).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch

from factrecall.core import bounds, fits
from factrecall.experiments.plots import COLORS, loglog, median_facts, save, seed_facts

Row = dict[str, Any]
PAPER_TASK = {"d": 32, "d_h": 8, "S": 32, "R": 32, "D": 8}
"""The task and head size of the paper's Figure 4 right: its frontier d·m ≈ 2300 − d·d_h·H/2 is for this."""


def fig4(rows: Sequence[Row], stem: Path, guide: float) -> list[Path]:
    """Figure 4 left: facts stored (S·R at the criterion; the median over seeds) vs parameters
    4·H·d_h·d + 2·m·d, per width ratio, with a bar per shape (:func:`_spread`: the seeds' min–max, or one
    seed's bracket up to the smallest size that failed), the fitted line and the paper's guide
    facts = ``guide``·params. Rows with ``procedure = "paper"`` (the paper's search run here on some shapes)
    are a second series: open squares with their bars, left out of the fit."""
    theirs = [r for r in rows if r.get("procedure") == "paper"]
    rows = [r for r in rows if r.get("procedure") != "paper"]
    fig, ax = plt.subplots(figsize=(6, 4.5), layout="constrained")
    ratios = sorted({(r["attention_ratio"], r["mlp_ratio"]) for r in rows})
    for i, (ra, rm) in enumerate(ratios):
        group = sorted(
            (r for r in rows if (r["attention_ratio"], r["mlp_ratio"]) == (ra, rm)), key=lambda r: r["params"]
        )
        color = COLORS[i % len(COLORS)]
        x, y = [r["params"] for r in group], [median_facts(r) for r in group]
        ax.plot(x, y, "o-", color=color, ms=4, label=f"H·d_h/d={ra:g}, m/d={rm:g}")
        _bars(ax, group, 1.0, color=color, lw=2, alpha=0.4)
    if theirs:
        x, y = zip(*sorted((r["params"], median_facts(r)) for r in theirs), strict=True)
        ax.plot(x, y, "s", mfc="none", mec="k", ms=7, label="paper's procedure, run here")
        _bars(ax, theirs, 1.04, color="k", lw=1, alpha=0.5)  # just right of ours
    x = np.array(sorted(r["params"] for r in rows), dtype=float)
    ax.plot(x, guide * x, "k--", lw=1, label=f"paper: facts = {guide:g}·params")
    stored = [r for r in rows if median_facts(r) > 0]
    if len(stored) >= 2:
        fit = fits.power_law([r["params"] for r in stored], [median_facts(r) for r in stored])
        ax.plot(x, fit.prefactor * x**fit.slope, "k:", lw=1, label=f"fit: facts ∝ params^{fit.slope:.2f}")
    loglog(ax, "parameters 4·H·d_h·d + 2·m·d", "facts stored (S·R)", "One-layer transformer (H = 8)")
    several = any(len(seed_facts(r)) > 1 for r in rows)
    title = "median over seeds; bars: min … max over seeds" if several else "bars: stored … smallest failed"
    ax.legend(fontsize=6, title=title, title_fontsize=6)
    return save(fig, stem)


def _spread(row: Row) -> tuple[float, float] | None:
    """A shape's bar: the min and max of its seeds' N*, or (one seed) its bracket [stored, smallest failed]
    (None when the search hit its cap)."""
    per_seed = seed_facts(row)
    if len(per_seed) > 1:
        return min(per_seed), max(per_seed)
    return None if not row.get("facts_failed") else (row["facts"], row["facts_failed"])


def _bars(ax: Any, rows: Sequence[Row], shift: float, **style: Any) -> None:
    bars = [(r["params"] * shift, *_spread(r)) for r in rows if _spread(r)]
    if bars:
        ax.vlines(*zip(*bars, strict=True), **style)


class Frontier(NamedTuple):
    """The measured 0.99 boundary on the axes (x, y) = (d·d_h·H, d·m) and the line y = a − b·x through it.

    Attributes:
        points: boundary points: per row (fixed m), the midpoint in x between the last cell below the
            criterion and the first cell reaching it; per column (fixed H), the same in y.
        mlp_at_zero_attention: a, the fitted MLP parameters needed without attention.
        slope: b, the MLP parameters saved per attention parameter (NaN when the points do not fix a line).
    """

    points: list[tuple[float, float]]
    mlp_at_zero_attention: float
    slope: float


def _crossings(cells: Sequence[Row], fixed: str, along: str, criterion: float) -> list[tuple[float, float]]:
    """Per value of ``fixed`` (``H`` or ``m``), where accuracy first reaches ``criterion`` along the other
    axis: the midpoint of the two cells around it, as (attention, MLP) parameters, when they are neighbours
    on the measured axis (a column measured only at m = 1 and m = 64 does not locate the boundary)."""
    axis = {"H": "attention_axis", "m": "mlp_axis"}
    grid = sorted({c[along] for c in cells})
    out = []
    for value in sorted({c[fixed] for c in cells}):
        line = sorted((c for c in cells if c[fixed] == value), key=lambda c: c[along])
        first = next((i for i, c in enumerate(line) if c["accuracy"] >= criterion), None)
        if not first:  # none reaches it, or the first cell already does: the boundary is not bracketed
            continue
        below, above = line[first - 1], line[first]
        if grid.index(above[along]) - grid.index(below[along]) > 1:
            continue
        mid = (below[axis[along]] + above[axis[along]]) / 2
        other = float(above[axis[fixed]])
        out.append((mid, other) if along == "H" else (other, mid))
    return out


def measured_frontier(cells: Sequence[Row], criterion: float = 0.99) -> Frontier:
    """The 0.99 boundary of the measured (H, m) cells and the least-squares line d·m = a − b·d·d_h·H through
    it (the paper's: a ≈ 2300, b ≈ 1/2 for d = 32, S = R = 32, D = 8).

    Works on a full grid and on rows and columns of one (each row and column brackets the boundary at most
    once). ``cells`` are records of :meth:`factrecall.recall.tradeoff.Tradeoff.rows`.

    >>> cells = [{"H": H, "m": m, "attention_axis": 10 * H, "mlp_axis": 10 * m, "accuracy": float(H + m >= 4)}
    ...          for H in range(5) for m in range(5)]
    >>> f = measured_frontier(cells)
    >>> round(f.mlp_at_zero_attention, 3), round(f.slope, 3)
    (35.0, 1.0)
    """
    points = sorted(set(_crossings(cells, "m", "H", criterion) + _crossings(cells, "H", "m", criterion)))
    x, y = (np.array([p[i] for p in points], float) for i in (0, 1))
    if len(points) < 2 or np.ptp(x) == 0:
        return Frontier(points, float("nan"), float("nan"))
    slope, intercept = np.polyfit(x, y, 1)
    return Frontier(points, float(intercept), float(-slope))


def is_paper_task(row: Row) -> bool:
    """Whether a trade-off row ran the paper's task and head size (:data:`PAPER_TASK`)."""
    return all(row.get(k) == v for k, v in PAPER_TASK.items())


def _edges(centres: Sequence[float]) -> np.ndarray:
    """Cell edges around sorted ``centres``: midpoints inside, half a spacing beyond the ends (≥ 0)."""
    c = np.asarray(centres, float)
    if len(c) == 1:
        return np.array([c[0] / 2, c[0] * 1.5 if c[0] else 1.0])
    mid = (c[1:] + c[:-1]) / 2
    return np.concatenate([[max(0.0, 2 * c[0] - mid[0])], mid, [2 * c[-1] - mid[-1]]])


def _heatmap(ax: plt.Axes, cells: Sequence[Row]) -> Any:
    """One filled cell per measured (H, m) on the cell edges; unmeasured area left grey."""
    xs = sorted({c["attention_axis"] for c in cells})
    ys = sorted({c["mlp_axis"] for c in cells})
    acc = np.full((len(ys), len(xs)), np.nan)
    for c in cells:
        acc[ys.index(c["mlp_axis"]), xs.index(c["attention_axis"])] = c["accuracy"]
    xe, ye = _edges(xs), _edges(ys)
    ax.set_facecolor("0.88")
    mesh = ax.pcolormesh(xe, ye, np.ma.masked_invalid(acc), cmap="viridis", vmin=0, vmax=1)
    for c in cells if len(cells) <= 64 else []:  # the paper's 169 cells: the colour alone
        a = c["accuracy"]
        ax.annotate(
            f"{a:.2f}",
            (c["attention_axis"], c["mlp_axis"]),
            fontsize=4.5,
            ha="center",
            va="center",
            color="w" if a < 0.6 else "k",
        )
    if np.isnan(acc).any():
        ax.legend(handles=[Patch(facecolor="0.88", label="not measured")], fontsize=7, loc="upper right")
    ax.set(xlim=(xe[0], xe[-1]), ylim=(ye[0], ye[-1]))
    return mesh


def _frontier_lines(ax: plt.Axes, cells: Sequence[Row], paper_task: bool) -> None:
    """The measured frontier (its boundary points and fitted line) and, on the paper's task, the paper's."""
    handles = [h for h in ax.get_legend().legend_handles] if ax.get_legend() else []
    x = np.linspace(*ax.get_xlim(), 100)
    frontier = measured_frontier(cells)
    if frontier.points:
        px, py = zip(*frontier.points, strict=True)
        handles += ax.plot(px, py, "X", mfc="w", mec="k", ms=7, ls="none", label="measured 0.99 boundary")
    if not np.isnan(frontier.slope):
        a, b = frontier.mlp_at_zero_attention, frontier.slope
        label = f"measured frontier: d·m ≈ {a:.0f} {'−' if b >= 0 else '+'} {abs(b):.2f}·d·d_h·H"
        handles += ax.plot(x, a - b * x, "k-", lw=1.5, label=label)
    if paper_task:
        label = "paper's frontier: d·m ≈ 2300 − d·d_h·H/2"
        handles += ax.plot(x, bounds.guide_frontier_mlp(x), "r--", lw=1.5, label=label)
    ylim = ax.get_ylim()
    ax.set_ylim(ylim)  # the lines do not widen the map
    if handles:
        ax.legend(handles=handles, fontsize=6, loc="upper right", framealpha=0.8)


def fig4_tradeoff(rows: Sequence[Row], stem: Path) -> list[Path]:
    """Figure 4 right as the paper draws it: accuracy over every fact as a filled heatmap on the axes
    attention parameters d·d_h·H (x) and MLP parameters d·m (y), one cell per measured (H, m) (unmeasured
    area grey), with the measured frontier (:func:`measured_frontier`) and, when the rows ran the paper's
    task (:data:`PAPER_TASK`), the paper's frontier d·m ≈ 2300 − d·d_h·H/2
    (:func:`factrecall.core.bounds.guide_frontier_mlp`)."""
    cells = list({(c["H"], c["m"]): c for r in rows for c in r["cells"]}.values())
    fig, ax = plt.subplots(figsize=(6.5, 4.8), layout="constrained")
    mesh = _heatmap(ax, cells)
    fig.colorbar(mesh, ax=ax, label="accuracy over every fact")
    r0 = rows[0]
    paper_task = is_paper_task(r0)
    title = (
        f"S = {r0.get('S')}, R = {r0.get('R')}, D = {r0.get('D')}, d = {r0.get('d')}, d_h = {r0.get('d_h')}"
    )
    if paper_task:
        title += " (the paper's task)"
    else:
        title += (
            "\na scaled-down variant of the paper's task (S = R = 32, d_h = 8): its frontier is not drawn"
        )
    _frontier_lines(ax, cells, paper_task)
    ax.set(xlabel="attention parameters d·d_h·H", ylabel="MLP parameters d·m")
    ax.set_title(title, fontsize=9)
    return save(fig, stem)
