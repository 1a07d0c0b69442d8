"""Experiments and their results: sweep files (``config``), one pydantic model per experiment (``specs``),
the results store, the sweep backends, the figures (``figures/``, listed in ``reproduce.FIGURES``), plots and
the report.
"""
