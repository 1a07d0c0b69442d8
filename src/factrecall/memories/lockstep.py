"""The lockstep schedule of a capacity search (linear memories, constructions): rounds of trials, each
round one compiled program, padded to a shape a fixed cost model picks.

Each round, every unfinished seed proposes one N (:func:`factrecall.core.search.search_largest`, with the
``run_round`` of :func:`lockstep_rounds`) and all (seed, N, learning rate) runs of the round are padded to
one shape (rows, n_pad) and trained together (:func:`factrecall.memories.trials.run_trials`); a round lasts
as long as its slowest trial. A trial's numbers depend on (seed, N, learning rate) and on the size its
problem was padded to, which :class:`ShapePlanner` fixes from the spec, the seeds and the device count
alone.

Paper: SPEC §1.4.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax

from factrecall.core.search import FIRST_STEP, Trial
from factrecall.memories import trials
from factrecall.memories.spec import MemorySpec
from factrecall.memories.trials import padded_size


class ShapePlanner:
    """Pads each round to a shape (rows, n_pad) that is cheap overall, by a fixed cost model.

    The model: a round costs ``unit``·rows·n_pad² seconds (``unit`` is the a-priori estimate for the spec,
    measured once on two CPU cores) and compiling a new shape ``COMPILE_S`` seconds. A round reuses an
    already compiled, larger shape when the extra compute is expected to cost less than a compile; and when
    rounds are cheap it pads to the search's first bracketing step (1.15·N), so that the next round fits
    the same program.

    Nothing here is measured while running: the shapes, and so the numbers (padding changes the compiled
    program), depend only on the spec, the seeds and the device count, never on the machine's load. This
    is what lets the local, process and Ray backends of :mod:`factrecall.experiments.sweeps` agree exactly.

    >>> planner = ShapePlanner(n_devices=2, unit=1e-7)
    >>> planner.choose(3, 100), planner.choose(2, 100)
    ((4, 120), (4, 120))
    """

    GENEROUS = FIRST_STEP  # the next N tested above a stored guess
    COMPILE_S = 1.5

    def __init__(self, n_devices: int, unit: float):
        self.n_devices = n_devices
        self.unit = unit  # seconds per row·n_pad² of a round (fixed)
        self.compiled: set[tuple[int, int]] = set()

    def _cost(self, shape: tuple[int, int]) -> float:
        return self.unit * shape[0] * shape[1] ** 2

    def choose(self, rows: int, n: int) -> tuple[int, int]:
        """The shape of a round of ``rows`` trials whose largest N is ``n``; it counts as compiled after."""
        rows = self.n_devices * math.ceil(rows / self.n_devices)
        tight = (rows, padded_size(n))
        reusable = sorted(s for s in self.compiled if s[0] >= rows and s[1] >= tight[1])
        best = min(reusable, key=self._cost, default=None)
        if best is not None and self._cost(best) < self._cost(tight) + self.COMPILE_S:
            shape = best
        else:
            generous = (rows, padded_size(math.ceil(self.GENEROUS * n)))
            shape = generous if self._cost(generous) - self._cost(tight) < 0.5 * self.COMPILE_S else tight
        self.compiled.add(shape)
        return shape


def planner_for(spec: MemorySpec) -> ShapePlanner:
    """The planner of ``spec``: rows padded to the device count (trained runs), a-priori costs.

    The unit is seconds per row·n_pad² of a round, measured on two CPU cores: trained rounds scale with
    the step budget and the size of the learning-rate grid; a construction costs one evaluation.
    """
    if spec.method == "trained":
        return ShapePlanner(jax.device_count(), 1e-5 * spec.n_steps / 4096 * len(spec.lrs) / 3)
    return ShapePlanner(1, 1e-7)


def lockstep_rounds(spec: MemorySpec) -> Callable[[list[int], list[int]], list[Trial]]:
    """The ``run_round(Ns, seeds)`` of :func:`~factrecall.core.search.search_largest` for ``spec``: each
    round is one :func:`~factrecall.memories.trials.run_trials` batch, padded by the spec's planner."""
    planner = planner_for(spec)

    def run_round(Ns: list[int], seeds: list[int]) -> list[Trial]:
        return trials.run_trials(spec, Ns, seeds, planner.choose(len(Ns), max(Ns)))

    return run_round
