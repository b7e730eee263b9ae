"""DivergenceGuard's rule (:class:`lightning_clr.callbacks._spike.LossMonitor`) on literal sequences of window
means: no Trainer, no torch."""

from __future__ import annotations

import math

from lightning_clr.callbacks._spike import LossMonitor, newest_at_most


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
