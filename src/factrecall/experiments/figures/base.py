"""What a reproducible figure is (:class:`Figure`, with the :class:`Reuse` of another figure's stored rows)
and the one helper that builds a comparison row from the paper's table (:func:`compared`).

No JAX here: a figure's ``run`` imports the library code it needs when it runs.

Paper: SPEC §7 (each figure at a quick and at the paper's scale; the report compares with the paper).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from factrecall.core import fits
from factrecall.core.paper import PAPER
from factrecall.core.progress import Update

Point = dict[str, Any]
Row = dict[str, Any]


class Reuse(NamedTuple):
    """Another figure whose stored rows measure some of this figure's points.

    Attributes:
        figure: the other figure's name.
        point: the other figure's point that measures the same thing as one of ours (``None``: none does).
    """

    figure: str
    point: Callable[[Point], Point | None]


class Figure(NamedTuple):
    """A reproducible figure: its points at each scale, how to run one, how to draw and compare.

    Attributes:
        name: the figure's name (``factrecall reproduce NAME``, the store's sweep column).
        title: one line, the report's section title and the config's first line.
        points: its points at a scale (one of ``scales``), JSON-able dicts.
        run: ``run(point, update) -> row``, the measurement of one point.
        draw: ``draw(rows, stem) -> paths`` (PNG and PDF at ``stem``).
        compare: ``compare(rows) -> comparison rows`` (see :func:`compared`).
        expected: run time and result to expect (the report and the config headers quote it).
        reuse: another figure whose stored rows stand for some points (copied, marked ``reused_from``).
        scales: the scales it offers, in the order of :data:`factrecall.experiments.config.SCALES` (every
            figure offers ``quick`` and ``paper``; Figure 4's ``medium`` too).
    """

    name: str
    title: str
    points: Callable[[str], list[Point]]
    run: Callable[[Point, Update], Row]
    draw: Callable[[list[Row], Path], list[Path]]
    compare: Callable[[list[Row]], list[Row]]
    expected: str
    reuse: Reuse | None = None
    scales: tuple[str, ...] = ("quick", "paper")


def compared(key: str, quantity: str, ours: float) -> Row:
    """A comparison row: our ``quantity`` next to the paper's constant ``key`` of
    :data:`factrecall.core.paper.PAPER`, with the deviation (ours − paper) / paper and the paper's source.

    >>> row = compared("mlp_exponent", "MLP: exponent of N* in m·d", 0.99)
    >>> row["paper"], round(row["deviation"], 6), row["paper_source"]
    (0.9, 0.1, 'Fig. 1 right caption: N ∝ (m·d)^0.9')
    """
    constant = PAPER[key]
    return {
        "quantity": quantity,
        "ours": ours,
        "paper": constant.value,
        "deviation": fits.deviation(ours, constant.value),
        "paper_source": constant.source,
    }
