"""DivergenceGuard's rule (:class:`lightning_clr.callbacks.guard_rule.LossMonitor`) on literal sequences of window
means: no Trainer, no torch."""

from __future__ import annotations

import math

import pytest

from lightning_clr.callbacks.guard_rule import LossMonitor, describe_event, newest_at_most, rate_cut


def test_the_rule_on_a_literal_sequence() -> None:
    monitor = LossMonitor(factor=1.3, patience=2, smoothing=0.5, memory=3)
    # level: 2, 1.5, 1.25 (reference 1.25); 1.7 > 1.3*1.25 is high; 1.6 is clean again (level 1.425, reference
    # still 1.25); two high windows make the spike; a NaN is at once; None twice is the skipped event.
    means = [2.0, 1.0, 1.0, 1.7, 1.6, 1.7, 1.7, math.nan, None, None]
    events = [monitor.observe(m) for m in means]
    assert events == [None, None, None, None, None, None, "spike", "non-finite", None, "skipped"]
    assert monitor.recent[-1] == 1.425 and monitor.reference == 1.25


def test_the_rule_after_a_rollback_judges_the_kept_weights_against_their_own_past() -> None:
    # The loss falls fast (2 -> 1) after the keep: the kept weights' loss (2) is high against the reference
    # reached since (1), but clean against the one of the kept step (2).
    fresh, restored = (LossMonitor(factor=1.3, patience=2, smoothing=0.0, memory=5) for _ in range(2))
    for monitor in (fresh, restored):
        monitor.observe(2.0)
    kept = restored.state_dict()
    for monitor in (fresh, restored):
        for mean in (1.0, 1.0, math.nan):
            monitor.observe(mean)
    fresh.after_rollback()
    restored.after_rollback(kept)
    assert (fresh.reference, restored.reference) == (1.0, 2.0)
    assert [fresh.observe(2.0), fresh.observe(2.0)] == [None, "spike"]  # a second rollback for nothing
    assert [restored.observe(2.0), restored.observe(2.0)] == [None, None]


def test_a_state_is_kept_only_after_an_interval_of_clean_windows() -> None:
    # One high window (1.7 > 1.3 * 1.0) that the patience lets pass still spoils its interval: the loss went
    # back down, but the weights may not have.
    monitor = LossMonitor(factor=1.3, patience=2, smoothing=0.0, memory=5)
    assert [monitor.observe(m) for m in (1.0, 1.0)] == [None, None] and monitor.close_interval()
    assert [monitor.observe(m) for m in (1.7, 1.0)] == [None, None] and not monitor.close_interval()
    assert [monitor.observe(m) for m in (1.0, 1.0)] == [None, None] and monitor.close_interval()
    assert monitor.observe(None) is None and not monitor.close_interval()  # an all-skipped window too


def test_the_copy_a_rollback_goes_to():
    kept = [{"rate": 0.1}, {"rate": 0.3}, {"rate": 0.2}, {"rate": 0.5}]
    assert newest_at_most(kept, 0.25) == 2  # the newest kept at a rate the cut schedule stays above
    assert newest_at_most(kept, 0.3) == 2
    assert newest_at_most(kept, 0.05) == 3  # none qualifies: the newest
    assert newest_at_most([{"step": 100}], 0.0) == 0  # a version-2 copy has no rate: it qualifies


def test_the_stall_rule_on_a_literal_sequence() -> None:
    # smoothing 0: the level is the window's mean. Rates climb 1, 2, ... (a warm-up). The flat start (2.0, 1.95:
    # above 0.9 x the first level) is no stall; then 1.5 and 1.4 are new lows; 1.45, 1.42, 1.41 are three
    # windows without one while the rates still climb: the event.
    monitor = LossMonitor(factor=1.3, patience=2, smoothing=0.0, memory=5, stall_patience=3)
    means = [2.0, 1.95, 1.96, 1.5, 1.4, 1.45, 1.42, 1.41]
    events = [monitor.observe(m, rate=float(r)) for r, m in enumerate(means, 1)]
    assert events == [None] * 7 + ["stall"]
    assert monitor.best == 1.4 and monitor.top_rate == 8.0 and not monitor.close_interval()


def test_a_new_low_must_beat_the_lowest_by_stall_min_delta() -> None:
    # A plateau that still drifts down a little (1.40, 1.39, 1.388, 1.387: under 1% a window) makes a new low
    # each window, so with stall_min_delta=0 it is never a stall; with 0.01 none after 1.40 counts (each is above
    # 0.99 x 1.40 = 1.386), and the third window without a new low is the event. The lowest level and its rate
    # stay those of the last low that counted.
    means = [2.0, 1.5, 1.4, 1.39, 1.388, 1.387]
    strict = LossMonitor(factor=1.3, patience=2, smoothing=0.0, stall_patience=3)
    assert [strict.observe(m, rate=float(r)) for r, m in enumerate(means, 1)] == [None] * 6
    tolerant = LossMonitor(factor=1.3, patience=2, smoothing=0.0, stall_patience=3, stall_min_delta=0.01)
    assert [tolerant.observe(m, rate=float(r)) for r, m in enumerate(means, 1)] == [None] * 5 + ["stall"]
    assert (tolerant.best, tolerant.best_rate) == (1.4, 3.0)
    # a fall of more than 1% is a new low and resets the count
    clear = LossMonitor(factor=1.3, patience=2, smoothing=0.0, stall_patience=3, stall_min_delta=0.01)
    means = [2.0, 1.5, 1.4, 1.39, 1.3, 1.29, 1.295]
    assert [clear.observe(m, rate=float(r)) for r, m in enumerate(means, 1)] == [None] * 7
    assert (clear.best, clear.best_rate, clear.stalled) == (1.3, 5.0, 2)


def test_the_stall_rule_sleeps_where_the_rates_do_not_climb_and_without_rates() -> None:
    # The same means with the rates falling after the first (an anneal, a restart back to an earlier peak) or
    # given no rate (stall_patience=0 in the guard): never a stall; a new climb starts a new count.
    means = [2.0, 1.5, 1.4, 1.45, 1.42, 1.41, 1.43]
    falling = LossMonitor(factor=1.3, patience=2, smoothing=0.0, stall_patience=3)
    assert [falling.observe(m, rate=1.0 / r) for r, m in enumerate(means, 1)] == [None] * 7
    unrated = LossMonitor(factor=1.3, patience=2, smoothing=0.0, stall_patience=3)
    assert [unrated.observe(m) for m in means] == [None] * 7
    climbing_again = LossMonitor(factor=1.3, patience=2, smoothing=0.0, stall_patience=3)
    rates = [1.0, 2.0, 3.0, 4.0, 1.0, 5.0, 6.0]  # the dip to 1.0 ends the first climb and its count (1 then)
    assert [climbing_again.observe(m, rate=r) for r, m in zip(rates, means, strict=True)] == [None] * 7
    assert climbing_again.best == 1.41 and climbing_again.stalled == 1  # the new climb's first low, one without


def test_a_rollback_keeps_the_highest_rate_seen_so_the_cut_schedule_is_not_a_new_climb() -> None:
    monitor = LossMonitor(factor=1.3, patience=2, smoothing=0.0, stall_patience=2)
    monitor.observe(2.0, rate=1.0)
    kept = monitor.state_dict()
    assert [monitor.observe(m, rate=r) for r, m in ((2.0, 1.5), (3.0, 1.6), (4.0, 1.7))] == [None, None, "stall"]
    monitor.after_rollback(kept)
    assert monitor.top_rate == 4.0 and monitor.level == 2.0 and monitor.stalled == 0
    # the lowered rates (half) stay under 4: the rule sleeps even if the loss is flat
    assert [monitor.observe(m, rate=r) for r, m in ((1.0, 1.5), (1.5, 1.6), (2.0, 1.7))] == [None, None, None]
    restored = LossMonitor(factor=1.3, patience=2, smoothing=0.0, stall_patience=2)
    restored.load_state_dict(monitor.state_dict())
    assert restored.state_dict() == monitor.state_dict()


def test_the_cut_after_a_stall_reads_the_rate_at_which_the_loss_last_fell() -> None:
    # peak ahead 1.0; the loss last fell at rate 0.6: 0.65 * 0.6 = 0.39, deeper than rate_factor 0.5
    assert rate_cut("stall", 0.5, 0.65, 0.6, 1.0) == 0.65 * 0.6
    assert rate_cut("stall", 0.5, 0.65, 0.9, 1.0) == 0.5  # never shallower than rate_factor
    assert rate_cut("stall", 0.5, 0.0, 0.6, 1.0) == 0.5  # stall_fraction=0: rate_factor alone
    assert rate_cut("spike", 0.5, 0.65, 0.6, 1.0) == 0.5 and rate_cut("non-finite", 0.5, 0.65, 0.6, 1.0) == 0.5
    assert rate_cut("stall", 0.5, 0.65, 0.0, 1.0) == 0.5 and rate_cut("stall", 0.5, 0.65, 0.6, 0.0) == 0.5


def test_the_rate_where_the_loss_last_fell_is_kept_with_the_lowest_level() -> None:
    monitor = LossMonitor(factor=1.3, patience=2, smoothing=0.0, stall_patience=2)
    for rate, mean in ((1.0, 2.0), (2.0, 1.5), (3.0, 1.4), (4.0, 1.45)):
        monitor.observe(mean, rate=rate)
    assert (monitor.best, monitor.best_rate, monitor.stalled) == (1.4, 3.0, 1)
    assert LossMonitor(1.3, 2, 0.0).state_dict().keys() <= monitor.state_dict().keys()
    restored = LossMonitor(1.3, 2, 0.0, stall_patience=2)
    restored.load_state_dict(monitor.state_dict())
    assert restored.best_rate == 3.0


def test_a_stall_event_is_described_in_one_sentence() -> None:
    event = {"step": 190, "reason": "stall", "loss": 1.5, "level": 1.41, "kept_step": 100, "rate_scale": 0.35}
    assert describe_event(event, 10, 1.2, 2, stall_patience=3) == (
        "at step 190, the smoothed training loss (1.41) made no new low for 3 checks while the rates climbed above "
        "any they had; rolled back to the state kept at step 100 and scaled the schedules' rates to 0.35x")


def test_the_rate_aware_rule_forgives_a_loss_that_rises_with_the_rate_and_falls_with_it() -> None:
    # smoothing 0, reference the lowest recent window. Rates climb 0.1 -> 0.5 and fall back: the loss rises to 3x
    # the reference while the rate climbs (forgiven), then falls by more than 10% a window while the rate falls
    # (forgiven): the cycle at work, no event. The same means judged without the rates make a spike.
    rates = [0.1, 0.1, 0.3, 0.5, 0.3, 0.1, 0.1]
    means = [1.0, 1.0, 2.0, 3.0, 2.5, 1.5, 1.0]
    aware = LossMonitor(factor=1.5, patience=2, smoothing=0.0, memory=5, rate_aware=True, fall_ratio=0.9)
    blind = LossMonitor(factor=1.5, patience=2, smoothing=0.0, memory=5)
    assert [aware.observe(m, r) for m, r in zip(means, rates, strict=True)] == [None] * 7
    assert [blind.observe(m, r) for m, r in zip(means, rates, strict=True)][:4] == [None, None, None, "spike"]
    assert aware.close_interval()  # forgiven windows do not spoil a keep


def test_a_loss_that_stays_high_or_rises_while_the_rate_falls_is_a_spike() -> None:
    monitor = LossMonitor(factor=1.5, patience=2, smoothing=0.0, memory=5, rate_aware=True, fall_ratio=0.9)
    rates = [0.1, 0.1, 0.5, 0.4, 0.3]
    means = [1.0, 1.0, 2.0, 2.0, 2.1]  # high while the rate climbs (forgiven), then flat and rising as it falls
    assert [monitor.observe(m, r) for m, r in zip(means, rates, strict=True)] == [None, None, None, None, "spike"]


def test_a_relapse_to_the_untrained_loss_after_learning_is_an_event_and_a_dead_end() -> None:
    # first 2.3; the run learns to 0.3 (below 0.9 x 2.3); a window at or above 2.3 - 0.25 x (2.3 - 0.3) = 1.8 is
    # a relapse, whatever the rate does; two in a row are the event. At the end, one relapse window is a dead end.
    monitor = LossMonitor(factor=1.5, patience=2, smoothing=0.0, memory=5, rate_aware=True, relapse_share=0.25)
    means, rates = [2.3, 1.0, 0.3, 1.9, 2.0], [0.1, 0.2, 0.3, 0.4, 0.5]
    assert [monitor.observe(m, r) for m, r in zip(means, rates, strict=True)] == [None] * 4 + ["relapse"]
    assert monitor.relapse_level() == pytest.approx(1.8) and monitor.low_rate == 0.3
    ended = LossMonitor(factor=1.5, patience=2, smoothing=0.0, relapse_share=0.25)
    for mean in (2.3, 1.0, 0.3, 0.3, 1.9):
        assert ended.observe(mean, 0.1) is None
    assert ended.at_end() == "relapse"
    ended.observe(0.5, 0.1)
    assert ended.at_end() is None  # it came back down


def test_a_long_fit_that_never_learned_ends_as_no_progress_and_a_short_one_does_not() -> None:
    monitor = LossMonitor(factor=1.5, patience=2, smoothing=0.0, relapse_share=0.25)
    for i, mean in enumerate([2.3, 2.31, 2.29, 2.3, 2.32, 2.3, 2.31, 2.3, 2.29, 2.3]):
        monitor.observe(mean, 0.1)
        assert monitor.at_end() == ("no progress" if i == 9 else None)
    assert LossMonitor(factor=1.5, patience=2, smoothing=0.0).at_end() is None  # relapse_share=0: off
    # before it learned, a window 1.5 x the first is a relapse at once (with patience)
    exploding = LossMonitor(factor=1.5, patience=1, smoothing=0.0, relapse_share=0.25)
    assert [exploding.observe(m, 0.1) for m in (2.3, 3.5)] == [None, "relapse"]


def test_the_cut_after_a_relapse_or_a_second_rollback_aims_below_the_rate_of_the_last_low() -> None:
    assert rate_cut("spike", 0.5, 0.65, 0.0, 1.0, low_rate=0.2, aim=False) == 0.5
    assert rate_cut("relapse", 0.5, 0.65, 0.0, 1.0, low_rate=0.2, aim=True) == 0.65 * 0.2
    assert rate_cut("spike", 0.5, 0.65, 0.0, 1.0, low_rate=0.9, aim=True) == 0.5  # never shallower than rate_factor


def test_a_state_dict_without_the_new_fields_still_loads() -> None:
    monitor = LossMonitor(factor=1.5, patience=2, smoothing=0.0, relapse_share=0.25)
    monitor.load_state_dict({"level": 1.0, "recent": [1.0, 0.8], "high": 0, "skipped": 0})  # a version-2 state
    assert monitor.lowest == 0.8 and monitor.prev_mean is None and monitor.windows == 0
    assert monitor.observe(1.0, 0.1) is None


def test_a_run_that_has_not_learned_in_ten_windows_is_no_progress() -> None:
    # ReLUs dead from the first steps: the loss sits at its first value. The tenth window is the event; a run
    # that fell below learned_fraction (0.9) of its first window in time is not one, and relapse_share=0 is off.
    flat = LossMonitor(factor=1.5, patience=2, smoothing=0.0, relapse_share=0.25)
    assert [flat.observe(2.3 + 0.01 * (i % 2), 1.0) for i in range(10)] == [None] * 9 + ["no progress"]
    learning = LossMonitor(factor=1.5, patience=2, smoothing=0.0, relapse_share=0.25)
    assert [learning.observe(m, 1.0) for m in [2.3] * 8 + [2.0] + [2.05] * 5] == [None] * 14
    off = LossMonitor(factor=1.5, patience=2, smoothing=0.0)
    assert [off.observe(2.3, 1.0) for _ in range(12)] == [None] * 12


def test_a_run_rolled_back_to_its_start_that_still_never_learns_ends_as_no_progress() -> None:
    # The rollback puts the window count back with the rest of the kept state; the end check counts the whole fit.
    monitor = LossMonitor(factor=1.5, patience=2, smoothing=0.0, relapse_share=0.25)
    kept = monitor.state_dict()  # the initial state
    assert [monitor.observe(2.3, 1.0) for _ in range(10)][-1] == "no progress"
    monitor.after_rollback(kept)
    monitor.observe(2.3, 0.5)
    assert monitor.windows == 1 and monitor.at_end() == "no progress"


def test_a_retry_gets_ten_windows_of_its_own_and_no_progress_stops_once_not_judged() -> None:
    # A state kept in the ninth window of a run that has not learned must not make the retry's first window an event.
    monitor = LossMonitor(factor=1.5, patience=2, smoothing=0.0, relapse_share=0.25)
    assert [monitor.observe(2.3, 1.0) for _ in range(9)] == [None] * 9
    kept = monitor.state_dict()
    assert monitor.observe(2.3, 1.0) == "no progress"
    monitor.after_rollback(kept)
    assert [monitor.observe(2.3, 0.5) for _ in range(10)] == [None] * 9 + ["no progress"]
    monitor.judging_progress = False  # the guard's verdict: the loss falls at no rate tried
    monitor.after_rollback(kept)
    restored = LossMonitor(factor=1.5, patience=2, smoothing=0.0, relapse_share=0.25)
    restored.load_state_dict(monitor.state_dict())
    for judged in (monitor, restored):
        assert not judged.judging_progress and [judged.observe(2.3, 0.5) for _ in range(12)] == [None] * 12
        assert judged.at_end() == "no progress"  # the end still says so; the guard decides whether it is an error


def test_a_window_ten_times_the_first_is_an_event_at_once_even_while_the_rate_climbs() -> None:
    # A loss blown up to 1e11 in the second window, while a cyclical rate still climbs, then calm again: the spike
    # rule forgives it (the rate climbs) and the relapse rule waits for a second window; it is a blow-up at once.
    monitor = LossMonitor(factor=1.5, patience=2, smoothing=0.0, rate_aware=True, relapse_share=0.25)
    assert [monitor.observe(m, r) for m, r in [(3.5, 0.1), (1.9e11, 0.2)]] == [None, "blow-up"]
    calm = LossMonitor(factor=1.5, patience=2, smoothing=0.0, rate_aware=True, relapse_share=0.25)
    assert [calm.observe(m, r) for m, r in [(3.5, 0.1), (34.0, 0.2), (3.4, 0.3)]] == [None, None, None]
    assert describe_event({"step": 20, "reason": "blow-up", "loss": 1.9e11, "level": 3.5, "kept_step": 0,
                           "rate_scale": 0.1}, 10, 1.5, 2).startswith(
        "at step 20, the mean training loss of steps 11-20 (1.9e+11) is 10 times the first window's or more")


def test_a_fit_that_ends_at_its_first_steps_loss_is_a_dead_end_even_if_its_first_window_blew_up() -> None:
    # SGDR at 8x its peak: the first window (3.5) is already far above the untrained loss (2.3), the run "learns"
    # against it (2.25 < 0.9 x 3.5) and ends at 2.31, under the relapse level 3.5 - 0.25 x (3.5 - 2.25).
    def ended(initial: float | None) -> str | None:
        monitor = LossMonitor(factor=1.5, patience=2, smoothing=0.0, relapse_share=0.25)
        monitor.initial = initial
        for mean in (3.5, 2.4, 2.25, 2.3, 2.31):
            monitor.observe(mean, 0.1)
        return monitor.at_end()

    assert ended(None) is None and ended(2.3) == "no progress" and ended(3.0) is None
