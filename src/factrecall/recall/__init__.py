"""Factual recall in a one-layer transformer (paper §4): the synthetic task, the transformer, the one training
path (``training``), saved models (``models``), capacity and the attention/MLP trade-off (Figure 4), the
constructions that store every fact and their smallest size, and where the facts live (``attribution``).
"""
