"""factrecall: how neural networks store facts.

A reference implementation of *Understanding Factual Recall in Transformers via Associative Memories*
(E. Nichani, J. D. Lee, A. Bietti; ICLR 2025, arXiv 2412.06538v2), and more.

The layers (see STYLE.md): ``base``/``errors`` → ``embeddings``/``task``/``bounds`` → ``memories`` →
``constructions``/``engine`` → ``capacity`` → ``plots`` → ``reproduce`` → ``cli``.
"""

__version__ = "0.1.0"

from factrecall.core.devices import use_cpu_cores

__all__ = ["__version__", "use_cpu_cores"]
