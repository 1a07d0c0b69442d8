"""Training dynamics (paper §5, Figure 5): the simplified model of Eq. (15), its trajectory with the loss
split by relation and subject, and the stages (plateaus, transitions) found from the curve itself.
"""
