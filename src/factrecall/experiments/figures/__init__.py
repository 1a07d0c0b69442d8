"""The paper's figures, one module per family: ``memories`` (Figures 1 and 6), ``transformer`` (Figure 4 left
and right), ``constructions`` (§4), ``dynamics`` (Figure 5 and the plateau) and ``planner`` (our planner's
data and where the facts live). Each module holds its figures' grids, points, run, draw and compare, and
exports its :class:`~factrecall.experiments.figures.base.Figure` objects; ``base`` holds the Figure type and
the comparison-row helper. :data:`factrecall.experiments.reproduce.FIGURES` lists them.

This ``__init__`` imports none of them: figure modules import library code (and so JAX) only inside ``run``.
"""
