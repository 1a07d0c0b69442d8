"""The foundation every part of factrecall stands on: array types and the ``Model(init, apply)`` pair
(``base``), user errors (``errors``), CPU devices (``devices``), atomic files (``io``), progress bars,
provenance, the paper's constants (``paper``), parameter counts and bits (``bounds``), fits, the generic
size searches (``search``), the one training engine (``engine``) and its resumable runs (``runs``).

Nothing here knows a task or a model family; nothing here is imported eagerly (no JAX on import).
"""
