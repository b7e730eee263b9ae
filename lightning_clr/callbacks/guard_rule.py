"""The divergence guard's decisions, pure Python (no torch): is a check window's mean training loss, read with the
scheduled rate at the check, a divergence; is the state at a keep step a good one; has the fit ended dead?

The rule, with ``m`` the window's mean loss (already averaged over the ranks, so every rank decides alike), ``r`` the
highest scheduled rate at the check, ``U`` the first window's mean (the untrained loss), ``low`` the lowest clean
window mean, ``L`` the smoothed level, ``R`` the reference (the lowest ``L`` of the last ``k`` clean windows) and
``f``, ``p``, ``s``, ``k`` the arguments:

* ``m`` not finite (NaN or inf): an event at once (``"non-finite"``); ``m >= 10 * U``: an event at once too
  (``"blow-up"``): a loss ten times the untrained one is no cycle, and its next window may look calm again;
* **relapse**: once the run has learned (``low <= learned_fraction * U``), ``m >= U - relapse_share * (U - low)``
  (back near the untrained loss), or before it learned ``m >= 1.5 * U``: ``p`` such windows in a row are an event
  (``"relapse"``), whatever the rate does. The cycle raises the loss on purpose, never back to the untrained one;
* **spike**: ``m > f * R`` (with ``R > 0``) is a *high* window, **except**, with ``rate_aware``, while the rate climbs
  (``r`` above the previous check's) or while the loss comes down (``m < fall_ratio`` times the previous window's):
  the cycle at work, forgiven (it neither counts nor moves ``L``, nor spoils a keep). ``p`` high windows in a row are
  an event (``"spike"``): a loss that stays far above its level, or keeps rising, while the rate holds or falls;
* otherwise the window is *clean* and ``L <- s * L + (1 - s) * m`` (the first clean window sets ``L``);
* a window in which the AMP GradScaler skipped every step has no mean: ``p`` such windows in a row are an event
  (``"skipped"``);
* **no progress**: (with ``relapse_share``) the run has not learned in 10 windows: an event (``"no progress"``),
  a network whose ReLUs died in its first steps, rolled back to its initial state with a cut aimed below the rate
  where its loss last fell. Two "no progress" events in a row (the loss falls at neither rate) are no rate's
  fault (a model trained before the fit began looks the same as a dead one): the guard then stops judging progress
  (``judging_progress``);
* with ``stall_patience`` ``q > 0`` and the rate above every one seen before (a warm-up), once ``L`` has fallen to
  ``0.9`` of its first value: ``q`` clean windows in a row without a new lowest ``L`` are an event (``"stall"``).

At the end of the fit (:meth:`LossMonitor.at_end`) a last window at the relapse level after the run learned, a
fit of 10 or more windows that never learned and ends within 5% of its lowest window, or one that ends within 5%
of the loss of its first step (``initial``, read with the first check), is a dead end: the guard
says so rather than hand back a dead model in silence.

The cut (:func:`rate_cut`): ``rate_factor``; after a stall, a relapse or on a second rollback, deeper if need be, so
that the peak ahead is at most ``stall_fraction`` times the rate where the loss last fell.

A state is kept only at the end of a keep interval (``keep_every_n_steps``) in which no window was high or skipped
(:meth:`LossMonitor.close_interval`), and a rollback puts the rule's state back as it was at the keep
(:meth:`LossMonitor.after_rollback`), so the restored weights are judged against their own past.

The rule and its defaults were chosen on recorded runs of four families and six policies, and reported on held-out
seeds (``python -m benchmarks.guard``, ``docs/benchmarks/guard.md``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Any

_SAMPLES = 100_000  # values of a schedule evaluated at most to find its highest one over a span

__all__ = ["BLOW_UP", "NON_FINITE", "NO_PROGRESS", "RELAPSE", "SKIPPED", "SPIKE", "STALL", "LossMonitor",
           "dead_message", "describe_event", "give_up_message", "highest", "newest_at_most", "no_fall_message",
           "rate_cut"]

NON_FINITE = "non-finite"
BLOW_UP = "blow-up"
#: a window mean this many times the first one is an event at once, whatever the rate does
BLOW_UP_FACTOR = 10.0
SPIKE = "spike"
SKIPPED = "skipped"
STALL = "stall"
RELAPSE = "relapse"
NO_PROGRESS = "no progress"
#: windows a fit must have had for its end to be judged "no progress" (a short fit may not have learned yet)
NO_PROGRESS_WINDOWS = 10
#: a window mean this many times the first one is a relapse even before the loss has learned anything
EXPLODE = 1.5
#: the stall rule waits until the level is this fraction of the first one: an untrained network's flat start is
#: not a stall
STALL_AFTER_FALL = 0.9


class LossMonitor:
    """The state of the rule above: the smoothed level and the runs of high and of skipped windows.

    Args:
        factor: `f`, the multiple of the level above which a window is high.
        patience: `p`, high (or all-skipped) windows in a row that make an event.
        smoothing: `s`, the weight of the old level in its update, in [0, 1).
        memory: `k`, the clean windows whose lowest level is the reference.
        stall_patience: `q`, windows without a new low that make a stall while the rate climbs (`0`: off).
        stall_min_delta: `d`, the relative fall below the lowest level that makes a new low.
    """

    def __init__(self, factor: float, patience: int, smoothing: float, memory: int = 20,
                 stall_patience: int = 0, stall_min_delta: float = 0.0, rate_aware: bool = False,
                 fall_ratio: float = 0.9, relapse_share: float = 0.0, learned_fraction: float = 0.9) -> None:
        self.factor = factor
        self.rate_aware = rate_aware
        self.fall_ratio = fall_ratio
        self.relapse_share = relapse_share
        self.learned_fraction = learned_fraction
        self.lowest: float | None = None  # the lowest clean window mean
        self.low_rate = 0.0  # the rate at the check that set ``lowest``: where the loss last fell
        self.prev_rate: float | None = None  # the previous check's rate and mean
        self.prev_mean: float | None = None
        self.relapsed = 0  # relapse windows in a row
        self.windows = 0  # windows observed since the fit began or the last rollback
        self.seen = 0  # windows observed in the whole fit (never put back)
        self.judging_progress = True  # False once the loss fell at no rate tried: no more "no progress" events
        self.initial: float | None = None  # the loss of the fit's first step, before any update (never put back)
        self.patience = patience
        self.smoothing = smoothing
        self.stall_patience = stall_patience
        self.stall_min_delta = stall_min_delta
        self.level: float | None = None
        self.first: float | None = None  # the first clean level
        self.top_rate = 0.0  # the highest scheduled rate seen at a check (never put back by a rollback)
        self.best: float | None = None  # the lowest level since the rates began to climb above top_rate
        self.best_rate = 0.0  # the rate at the check that set ``best``: where the loss last fell
        self.stalled = 0  # windows in a row, while the rates climb, without a new lowest level
        self.recent: deque[float] = deque(maxlen=memory)
        self.high = 0
        self.skipped = 0
        self.spotless = True  # no high or skipped window since the interval began

    @property
    def reference(self) -> float | None:
        """``R``: the lowest smoothed level of the last ``memory`` clean windows (``None`` before the first)."""
        return min(self.recent) if self.recent else None

    @property
    def learned(self) -> bool:
        """Whether a clean window's mean has fallen to ``learned_fraction`` of the first one: the run learned."""
        return self.first is not None and self.lowest is not None and self.lowest <= self.learned_fraction * self.first

    def relapse_level(self) -> float | None:
        """The mean at and above which a window is a relapse: back within ``relapse_share`` of what it had learned
        of its untrained (first) level, or, before it learned, ``EXPLODE`` times that level (``None``: off)."""
        if not self.relapse_share or self.first is None or self.first <= 0:
            return None
        if self.learned and self.lowest is not None:
            return self.first - self.relapse_share * (self.first - self.lowest)
        return EXPLODE * self.first

    def observe(self, mean: float | None, rate: float | None = None) -> str | None:
        """Takes one window's mean loss (``None``: every step skipped) and the highest scheduled rate at the check
        (``None``: unknown, the rate-aware parts sleep); returns the event, or ``None``."""
        try:
            return self._observe(mean, rate)
        finally:
            if mean is not None:
                self.prev_mean = mean
            if rate is not None:
                self.prev_rate = rate

    def at_end(self) -> str | None:
        """At the end of the fit (with ``relapse_share``): ``"relapse"`` if the last window ended back at the relapse
        level after the run had learned, ``"no progress"`` if a fit of at least ``NO_PROGRESS_WINDOWS`` windows
        never learned (since its last rollback) and ended within 5% of its lowest window, or if it ended within 5%
        of the loss of its first step (``initial``: its first window may have blown up already), else ``None``."""
        last = self.prev_mean
        if last is None or not self.relapse_share or self.first is None:
            return None
        if not math.isfinite(last):
            return NON_FINITE
        if not self.learned:
            lowest = self.lowest if self.lowest is not None else self.first
            return NO_PROGRESS if self.seen >= NO_PROGRESS_WINDOWS and last >= 0.95 * lowest else None
        threshold = self.relapse_level()
        if threshold is not None and last >= threshold:
            return RELAPSE
        # "learned" against a first window that had already blown up, and ended where its first step began
        return NO_PROGRESS if self.initial is not None and last >= 0.95 * self.initial else None

    def _observe(self, mean: float | None, rate: float | None) -> str | None:
        self.windows += 1
        self.seen += 1
        if mean is None:
            self.skipped += 1
            self.spotless = False
            return SKIPPED if self.skipped >= self.patience else None
        self.skipped = 0
        if not math.isfinite(mean):
            return NON_FINITE
        if self.first is not None and self.first > 0 and mean >= BLOW_UP_FACTOR * self.first:
            self.spotless = False
            return BLOW_UP
        threshold = self.relapse_level()
        if threshold is not None and mean >= threshold:
            self.relapsed += 1
            self.spotless = False
            return RELAPSE if self.relapsed >= self.patience else None
        self.relapsed = 0
        if (self.relapse_share and self.judging_progress and self.first is not None and not self.learned
                and self.windows >= NO_PROGRESS_WINDOWS and mean > self.learned_fraction * self.first):
            self.spotless = False
            return NO_PROGRESS  # never learned in NO_PROGRESS_WINDOWS windows: dead from the start
        reference = self.reference
        if reference is not None and reference > 0 and mean > self.factor * reference:
            rising = rate is not None and self.prev_rate is not None and rate > self.prev_rate * (1 + 1e-9)
            falling_loss = self.prev_mean is not None and mean < self.fall_ratio * self.prev_mean
            if self.rate_aware and rate is not None and (rising or falling_loss):
                self.high = 0  # the cycle at work: the rate climbs, or the loss comes down with it
                return None
            self.high += 1
            self.spotless = False
            return SPIKE if self.high >= self.patience else None
        self.high = 0
        level = mean if self.level is None else self.smoothing * self.level + (1.0 - self.smoothing) * mean
        self.level = level
        self.recent.append(level)
        if self.lowest is None or mean < self.lowest:
            self.lowest, self.low_rate = mean, rate if rate is not None else self.low_rate
        first = self.first = level if self.first is None else self.first
        return self._stall(level, first, rate) if self.stall_patience and rate is not None else None

    def _stall(self, level: float, first: float, rate: float) -> str | None:
        """The stall rule: while the rates climb above any they had, the level must keep making new lows."""
        climbing, self.top_rate = rate > self.top_rate, max(rate, self.top_rate)
        if not climbing or level > STALL_AFTER_FALL * first:
            self.best, self.stalled = None, 0
            return None
        if self.best is None or level < (1.0 - self.stall_min_delta) * self.best:
            self.best, self.best_rate, self.stalled = level, rate, 0
            return None
        self.stalled += 1
        self.spotless = False
        return STALL if self.stalled >= self.stall_patience else None

    def close_interval(self) -> bool:
        """Ends a keep interval: returns whether every window of it was clean (a state kept now is a good one:
        not one still shaken by a bump the rule let pass), and begins the next one."""
        spotless, self.spotless = self.spotless, True
        return spotless and self.high == 0 and self.skipped == 0

    def after_rollback(self, kept: dict[str, Any] | None = None) -> None:
        """Forgets the runs of high and skipped windows and, given the :meth:`state_dict` taken when the state
        was kept, puts the level and the recent levels back as they were then: the restored weights are judged
        against their own past, not against the lower level reached between the keep and the event."""
        top, low_rate, seen, first, judging = self.top_rate, self.low_rate, self.seen, self.first, self.judging_progress
        initial = self.initial
        if kept is not None:
            self.load_state_dict(kept)
        self.seen, self.judging_progress, self.initial = seen, judging, initial
        self.windows = 0  # a retry gets NO_PROGRESS_WINDOWS windows of its own to learn in
        if self.first is None:  # back to the initial state: the fit's untrained loss stays the reference
            self.first = first
        self.high = self.skipped = self.stalled = self.relapsed = 0
        self.best, self.top_rate, self.low_rate = None, top, low_rate
        self.prev_rate = self.prev_mean = None

    def state_dict(self) -> dict[str, Any]:
        return {"level": self.level, "recent": list(self.recent), "high": self.high, "skipped": self.skipped,
                "spotless": self.spotless, "first": self.first, "top_rate": self.top_rate, "best": self.best,
                "best_rate": self.best_rate, "stalled": self.stalled, "lowest": self.lowest, "low_rate": self.low_rate,
                "prev_rate": self.prev_rate, "prev_mean": self.prev_mean, "relapsed": self.relapsed,
                "windows": self.windows, "seen": self.seen, "judging_progress": self.judging_progress,
                "initial": self.initial}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        level = state.get("level")
        self.level = None if level is None else float(level)
        self.recent.clear()
        self.recent.extend(float(v) for v in state.get("recent", []))
        self.high = int(state.get("high", 0))
        self.skipped = int(state.get("skipped", 0))
        self.spotless = bool(state.get("spotless", True))
        first, best = state.get("first", self.level), state.get("best")
        self.first = None if first is None else float(first)
        self.best = None if best is None else float(best)
        self.top_rate = float(state.get("top_rate", 0.0))
        self.stalled = int(state.get("stalled", 0))
        self.best_rate = float(state.get("best_rate", 0.0))
        lowest = state.get("lowest", min(self.recent) if self.recent else None)  # older states: the recent low
        self.lowest = None if lowest is None else float(lowest)
        self.low_rate = float(state.get("low_rate", 0.0))
        prev_rate, prev_mean = state.get("prev_rate"), state.get("prev_mean")
        self.prev_rate = None if prev_rate is None else float(prev_rate)
        self.prev_mean = None if prev_mean is None else float(prev_mean)
        self.relapsed = int(state.get("relapsed", 0))
        self.windows = int(state.get("windows", 0))
        self.seen = int(state.get("seen", self.windows))
        self.judging_progress = bool(state.get("judging_progress", True))
        initial = state.get("initial")
        self.initial = None if initial is None else float(initial)


def rate_cut(reason: str | None, rate_factor: float, stall_fraction: float, best_rate: float, peak: float,
             low_rate: float = 0.0, aim: bool = False) -> float:
    """The factor a rollback multiplies the rates by: ``rate_factor``; lower if need be after a stall (so that the
    highest rate still ahead, ``peak``, becomes at most ``stall_fraction`` times the rate at which the loss last
    fell during the climb, ``best_rate``), and, with ``aim`` (a relapse, or a rollback after the first: the first
    cut was not enough), at most ``stall_fraction`` times ``low_rate``, the rate at the check where the loss last
    made a new low: the range test's rule, a peak somewhat below where the loss turns, read off the run.
    ``stall_fraction=0`` cuts by ``rate_factor`` alone."""
    if stall_fraction <= 0.0 or peak <= 0.0:
        return rate_factor
    factor = rate_factor
    if reason == STALL and best_rate > 0.0:
        factor = min(factor, stall_fraction * best_rate / peak)
    if aim and low_rate > 0.0:
        factor = min(factor, stall_fraction * low_rate / peak)
    return factor


def highest(schedule: Callable[[int], float], start: int, stop: int) -> float:
    """The highest value of ``schedule`` over the steps ``[start, stop)`` (sampled, at most 100,000 of them)."""
    stride = max(1, (stop - start) // _SAMPLES)
    return max((schedule(s) for s in range(start, stop, stride)), default=0.0)



def describe_event(event: dict[str, Any], window_steps: int, factor: float, patience: int,
                   stall_patience: int = 0) -> str:
    """One sentence on a rollback ``event`` (its step, reason, loss, level, kept step and new rate scale), for the
    warning and the give-up error; ``window_steps``, ``factor`` and ``patience`` are the rule's arguments."""
    window = f"the mean training loss of steps {event['step'] - window_steps + 1}-{event['step']}"
    if event["reason"] == SKIPPED:
        what = f"the AMP GradScaler skipped every step of {patience} windows in a row (gradients inf/NaN)"
    elif event["reason"] == NON_FINITE:
        what = f"{window} is {event['loss']}"
    elif event["reason"] == BLOW_UP:
        what = f"{window} ({event['loss']:.4g}) is {BLOW_UP_FACTOR:g} times the first window's or more"
    elif event["reason"] == NO_PROGRESS:
        what = (f"{window} ({event['loss']:.4g}) has not fallen below the first window's loss by the share that "
                f"counts as learning after {NO_PROGRESS_WINDOWS} checks")
    elif event["reason"] == RELAPSE:
        what = (f"{window} ({event['loss']:.4g}) was back near the untrained loss for {patience} checks after the "
                f"run had learned (smoothed loss {event['level']:.4g})")
    elif event["reason"] == STALL:
        what = (f"the smoothed training loss ({event['level']:.4g}) made no new low for {stall_patience} checks while "
                "the rates climbed above any they had")
    else:
        what = (f"{window} stayed above {factor:g}x its recent level ({event['level']:.4g}) for "
                f"{patience} checks (last: {event['loss']:.4g})")
    return (f"at step {event['step']}, {what}; rolled back to the state kept at step {event['kept_step']} and "
            f"scaled the schedules' rates to {event['rate_scale']:g}x")


def _advice(peaks: list[tuple[str, float, float]], rate_factor: float) -> str:
    """Per driven schedule ``(name, its rate scale, its peak)``, the peak it ran at and the ``max_lr`` to try."""
    return "; ".join(f"{name}: peak {peak:.4g} ran at {peak * scale:.4g}; try max_lr={peak * scale * rate_factor:.3g}"
                     for name, scale, peak in peaks) or "lower the learning rate"


def give_up_message(events: list[dict[str, Any]], history: list[str], peaks: list[tuple[str, float, float]],
                    rate_factor: float, max_rollbacks: int) -> str:
    """The :class:`DivergenceError` message: the last event, the earlier ones (``history``, one sentence each) and,
    per driven schedule ``(name, its rate scale, its peak)``, the peak it ran at and the one to try."""
    advice = _advice(peaks, rate_factor)
    last = events[-1]
    return (f"DivergenceGuard gives up: at step {last['step']} the loss diverged again ({last['reason']}, mean "
            f"{last['loss']}) after {len(events) - 1} rollback(s) (max_rollbacks={max_rollbacks}). "
            f"Earlier: {'; '.join(history) or 'none'}. Lower the peak ({advice}), or raise max_rollbacks.")


def dead_message(reason: str, step: int, last: float | None, first: float | None, lowest: float | None,
                 peaks: list[tuple[str, float, float]], events: list[dict[str, Any]], rate_factor: float,
                 fatal: bool = True) -> str:
    """The message when a fit ends dead: its last window's loss (``last``) back near the untrained one (``first``)
    after it had reached ``lowest``; per driven schedule ``(name, its rate scale, its peak)``, the peak to try. Not
    ``fatal`` (a fit that never learned and never broke), it may be a model trained before the fit began: the
    message says so."""
    advice = _advice(peaks, rate_factor)
    rollbacks = (f"after {len(events)} rollback(s) (last at step {events[-1]['step']})" if events
                 else "with no rollback")
    if not fatal:
        what = ("it never learned: either the network died in its first steps (lower the peak: "
                f"{advice}), or it was trained before this fit began and its loss has no room to fall (a fine-tune: "
                "DivergenceGuard(relapse_share=0) skips this check)")
    else:
        what = ("it had learned and then broke" if reason == RELAPSE else
                "it never learned" if reason == NO_PROGRESS else "its loss is not finite")
        what += f", so its weights are not a trained model. Lower the peak ({advice}), or raise max_rollbacks"
    return (f"DivergenceGuard: the fit ended at step {step} {rollbacks} with its training loss back near its untrained "
            f"level ({reason}): last window {last:.4g}, first window {first:.4g}, lowest window {lowest:.4g}; "
            f"{what}.")


def no_fall_message(step: int, loss: float | None, first: float | None, learned_fraction: float,
                    scale: float) -> str:
    """The warning when the loss has not fallen at the cut rate either, after a "no progress" rollback."""
    return (f"DivergenceGuard: at step {step} the mean training loss ({loss:.4g}) has again not fallen to "
            f"{learned_fraction:g} of the first window's ({first:.4g}) after the rollback to the initial state at a "
            "lower rate: it falls at no rate tried, so the rate is not what holds it back. The guard stops judging "
            f"progress in this fit and puts the schedules' rates back to {scale:g}x; spikes, relapses and non-finite "
            "losses are still watched. A model trained before this fit began (a fine-tune) looks like this: "
            "DivergenceGuard(relapse_share=0) skips the progress checks. Otherwise the network died in its first "
            "steps: lower the peak.")


def newest_at_most(kept: list[dict[str, Any]], peak: float) -> int:
    """The index of the newest kept copy whose scheduled ``"rate"`` was no higher than ``peak`` (with a relative
    tolerance of 1e-9), else of the newest copy: where a rollback goes when several copies are held."""
    return max((i for i, k in enumerate(kept) if k.get("rate", 0.0) <= peak * (1 + 1e-9)), default=len(kept) - 1)
