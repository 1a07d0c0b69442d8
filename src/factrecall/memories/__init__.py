"""Associative memories (paper §3): target maps, embeddings, linear and MLP memories, the constructions of
Theorems 1–2, and the capacity search N* (``spec`` → ``trials`` → ``lockstep``/``queue`` → ``capacity``).
"""
