"""Editing facts in place (beyond the paper): closed-form edits of a trained transformer's associative
memories (the MLP output matrix, the attention output matrix), the fine-tuning baseline, their scores
(efficacy, specificity, paraphrase), and how many edits a model absorbs as it fills up.
"""
