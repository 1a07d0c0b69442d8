"""The generic work queue of a capacity search (core.queue): speculation, the stall rule and the race change
only when a size is decided, never which sizes are tested or what they give."""

import jax
import jax.numpy as jnp

from factrecall.core import queue
from factrecall.core.engine import Problem, Settings
from factrecall.core.search import FIRST_STEP, Bracket

CAPACITY = 37  # the fake model stores N facts iff N ≤ 37


def _loss(p, data, key):
    return jnp.sum((data["speed"] * p["w"] - 1.0) ** 2)


def _evaluate(p, data):
    """Accuracy climbs with w towards 1 (stored) for N ≤ CAPACITY, towards 0.5 (never) above it."""
    ceiling = jnp.where(data["N"] <= CAPACITY, 1.0, 0.5)
    return {"accuracy": ceiling * jnp.clip(data["speed"] * p["w"], 0.0, 1.0)}


class Fake:
    """A :class:`queue.Family` whose trial (seed, N) stores iff N ≤ CAPACITY, one tiny program."""

    lrs, criterion, first_step = (0.01, 0.1), 0.99, FIRST_STEP
    settings = Settings(256, 8, 0.99)
    span = 16

    def __init__(self, speculate=0, stall=False, quick_below=0, slow_below=0):
        self.speculate, self.stall, self.advances = speculate, stall, 0
        self.quick_below = quick_below  # failing sizes below it are given up after 64 steps
        self.slow_below = slow_below  # sizes below it need 10x the steps to store

    def problem(self, pad):  # called once per span
        self.advances += 1
        return Problem(loss=_loss, evaluate=_evaluate, monitor="accuracy")

    def repad(self, N, pad):
        return 1

    def data(self, seed, N, pad):
        return {"N": jnp.asarray(N), "speed": jnp.asarray(0.1 if N < self.slow_below else 1.0)}

    def params(self, seed, N):
        return {"w": jnp.asarray(0.0)}

    def key(self, seed, N):
        return jax.random.key(seed)

    def stall_below(self, N):
        return -1.0  # no patience: the stall rule is hopeless()

    def hopeless(self, N, trace):
        quick = self.stall or N < self.quick_below
        return quick and trace[-1][1] < 0.6 and trace[-1][0] >= 64


def _search(family):
    options = {"n_max": 1000, "rel_precision": 1e-9, "on_round": None}
    return queue.search_queued(family, [0, 1], 10, **options)


def test_next_sizes_follow_both_outcomes_until_one_is_known():
    bracket = Bracket(10, 1000, 1e-9)
    assert queue.next_sizes(bracket, 10, lambda n: None, 2) == [8, 12]  # failed, stored
    assert queue.next_sizes(bracket, 10, {12: True, 8: True}.get, 4) == [8, 12, 9, 16]
    bracket.update(10, True)
    bracket.update(12, False)  # now bisecting [10, 12]: 11 either way, then nothing
    assert bracket.next == 11 and queue.next_sizes(bracket, 11, lambda n: None, 4) == []


def test_speculation_decides_the_same_sizes_sooner():
    plain, ahead = Fake(), Fake(2)
    n_plain, capped, trials = _search(plain)
    n_ahead, capped_ahead, trials_ahead = _search(ahead)
    assert n_plain == n_ahead == (CAPACITY, CAPACITY) and not capped and not capped_ahead
    by_size = sorted((t.seed, t.N, t.stored, t.steps) for t in trials)
    assert by_size == sorted((t.seed, t.N, t.stored, t.steps) for t in trials_ahead)
    assert ahead.advances < plain.advances  # the failing trials ran side by side


def _placements(monkeypatch) -> list[tuple[int, int]]:
    """After every placement of the work queue's slots: (slots holding a run, slot count)."""
    held: list[tuple[int, int]] = []
    place = queue.RunQueue._place

    def counting(self):
        place(self)
        held.append((sum(slot is not None for slot in self.slots), self.K))

    monkeypatch.setattr(queue.RunQueue, "_place", counting)
    return held


def test_a_one_seed_search_gives_the_slots_its_budget_leaves_idle_to_sizes_further_ahead(monkeypatch):
    """A one-seed search holds rates × (1 + speculate) runs, but the family's slot floor (``min_per_device``,
    4 per device for the transformer) can give it more slots, computed whether busy or not: those run sizes
    further ahead, so the same trials (sizes, outcomes, steps) are decided in fewer spans."""

    class Floored(Fake):
        min_per_device = 6  # slots ≥ 6 > 2 rates × (1 + 1)

    held = _placements(monkeypatch)
    options = {"n_max": 1000, "rel_precision": 1e-9, "on_round": None}
    families, results, most = (Fake(), Fake(1), Floored(1)), [], []  # plain; one ahead in 4 slots; in ≥ 6
    for family in families:
        held.clear()
        n, _, trials = queue.search_queued(family, [0], 10, **options)
        results.append((n, sorted((t.N, t.stored, t.steps) for t in trials)))
        most.append(max(busy for busy, _ in held))
    assert results[0] == results[1] == results[2] and results[0][0] == (CAPACITY,)
    assert most[1] == 2 * len(Fake.lrs) < most[2]  # the floor's extra slots were given work
    assert families[2].advances < families[1].advances < families[0].advances


def test_several_seeds_give_the_slots_their_trials_leave_idle_to_sizes_ahead(monkeypatch):
    """A family with ``fill`` and no ``speculate`` (the transformer's several-seed search) holds its seeds'
    current trials in a slot floor larger than they need; its spare slots, shared among the seeds still
    searching, run the sizes ahead: the same trials (seed, size, outcome, steps) in fewer spans, and the
    slot count never changes."""

    class Floored(Fake):
        min_per_device = 4  # ≥ 8 slots on 2 devices for 2 seeds × 2 rates

    class Filled(Floored):
        fill = True

    held = _placements(monkeypatch)
    families, results, most, slots = (Floored(), Filled()), [], [], []
    for family in families:
        held.clear()
        n, _, trials = _search(family)
        results.append((n, sorted((t.seed, t.N, t.stored, t.steps) for t in trials)))
        most.append(max(busy for busy, _ in held))
        slots.append({K for _, K in held})
    assert results[0] == results[1] and results[0][0] == (CAPACITY, CAPACITY)
    assert most[0] == 2 * len(Fake.lrs) < most[1] <= min(slots[1])  # the spare slots were given work
    assert len(slots[1]) == 1  # the slot count (the program) never changed
    assert families[1].advances < families[0].advances


def test_a_size_decided_ahead_decides_the_current_trial():
    """Failing sizes just above the capacity (38-59) are given up after 64 steps, larger ones run the whole
    budget: a larger failing trial is decided as soon as a smaller size run ahead fails (storing is monotone
    in the size), so it is not a trial; the bracket's path is the plain search's, and every trial measured
    is one of the plain search's, with the same steps."""
    plain, ahead = Fake(quick_below=60), Fake(2, quick_below=60)
    n_plain, _, trials = _search(plain)
    n_ahead, _, ahead_trials = _search(ahead)
    assert n_plain == n_ahead == (CAPACITY, CAPACITY)
    measured = {(t.seed, t.N, t.stored, t.steps) for t in ahead_trials}
    assert measured < {(t.seed, t.N, t.stored, t.steps) for t in trials}  # a strict subset
    skipped = {t.N for t in trials} - {t.N for t in ahead_trials}
    assert skipped and all(N >= 60 for N in skipped)  # only slow failures were implied
    assert ahead.advances < plain.advances
    for s in (0, 1):  # both ends of the final bracket are measured trials
        ends = {(t.N, t.stored) for t in ahead_trials if t.seed == s}
        assert (CAPACITY, True) in ends and (CAPACITY + 1, False) in ends


def test_a_larger_size_stored_ahead_takes_the_current_trials_place():
    """Sizes below 11 store slowly: the first trial (10) is still running when 12, run ahead, has stored, so
    12's trial is recorded and becomes the bracket's lower end; 10 is not a trial, and N* is unchanged."""
    n_plain, _, trials = _search(Fake(slow_below=11))
    n_ahead, _, ahead_trials = _search(Fake(2, slow_below=11))
    assert n_plain == n_ahead == (CAPACITY, CAPACITY)
    assert 10 in {t.N for t in trials} and 10 not in {t.N for t in ahead_trials}
    assert {(t.seed, t.N) for t in ahead_trials if t.N == 12 and t.stored} == {(0, 12), (1, 12)}
    assert all(t.stored == (t.N <= CAPACITY) for t in ahead_trials)


def test_the_stall_rule_stops_failing_runs_only():
    n_plain, _, trials = _search(Fake(2))
    n_stall, _, stalled = _search(Fake(2, stall=True))
    assert n_stall == n_plain == (CAPACITY, CAPACITY)
    assert [(t.N, t.stored) for t in trials] == [(t.N, t.stored) for t in stalled]
    failed = [t.steps for t in stalled if not t.stored]
    assert failed and max(failed) < Fake.settings.n_steps  # given up before the budget
    assert [t.steps for t in trials if t.stored] == [t.steps for t in stalled if t.stored]


class Racing(Fake):
    race = (0.1, 32)  # from step 32 on, a run 0.1 below its trial's other rate stops


def test_the_race_compares_a_trials_rates_at_equal_steps():
    runner = queue.RunQueue(Racing(), 4, 16)
    runner.traces = {
        (0, 5, 0): [(16, 0.2), (32, 0.3)],
        (0, 5, 1): [(16, 0.5), (32, 0.9), (48, 0.95)],  # started earlier: compared at step 32, not 48
        (1, 5, 0): [(32, 0.1)],  # another seed's trial: not a rival
    }
    assert runner.trails((0, 5, 0), 0.1, 32)  # 0.3 < 0.9 − 0.1
    assert not runner.trails((0, 5, 0), 0.7, 32)  # within the margin
    assert not runner.trails((0, 5, 0), 0.1, 48)  # too early
    assert not runner.trails((0, 5, 1), 0.1, 32)  # the leader
    assert not runner.trails((1, 5, 0), 0.1, 32)  # no other rate of its trial ran
    runner.traces[0, 5, 0] = [(16, 0.45)]  # started late: at step 16 the rival had 0.5
    assert not runner.trails((0, 5, 0), 0.1, 16)


def test_the_race_stops_trailing_runs_and_keeps_every_outcome(monkeypatch):
    """Failing trials (N > CAPACITY) climb towards 0.5, the slow rate long behind the fast one: raced, the
    slow run stops early; every trial has the same outcome. (Which rate decides a stored trial may change:
    runs freed sooner let the next trial's runs start at different spans, and the first to reach the
    criterion decides.)"""
    stopped = []  # (seed, N, rate index, steps) of every run that stopped
    advance = queue.RunQueue.advance

    def recording(self):
        out = advance(self)
        stopped.extend((*run, steps) for run, (_, _, steps) in out)
        return out

    monkeypatch.setattr(queue.RunQueue, "advance", recording)
    n_plain, _, trials = _search(Fake())
    slow_plain = [steps for _, N, j, steps in stopped if N > CAPACITY and j == 0]
    stopped.clear()
    n_race, _, raced = _search(Racing())
    slow_raced = [steps for _, N, j, steps in stopped if N > CAPACITY and j == 0]
    assert n_race == n_plain == (CAPACITY, CAPACITY)
    assert sorted((t.seed, t.N, t.stored) for t in trials) == sorted((t.seed, t.N, t.stored) for t in raced)
    assert slow_plain and min(slow_plain) == Fake.settings.n_steps  # without the race: the whole budget
    # raced, most slow runs stop at step 32 (a slow run that started when its rival had not yet: no rival
    # of its age to compare with, so it goes on)
    assert slow_raced and min(slow_raced) >= Racing.race[1] and sum(slow_raced) < sum(slow_plain) / 2
