"""The divergence guard's decision, pure Python (no torch): is the mean training loss of a check window a
divergence?

The rule, with ``m`` the window's mean loss (already averaged over the ranks, so every rank decides alike),
``L`` the smoothed level and ``f``, ``p``, ``s`` the arguments:

* ``m`` not finite (NaN or inf): an event at once (``"non-finite"``);
* ``m > f * L`` (with ``L > 0``): the window is *high*; ``p`` high windows in a row are an event (``"spike"``).
  A high window does not move ``L``, so a loss that settles at a bad plateau stays above it;
* otherwise the window is *clean* and ``L <- s * L + (1 - s) * m`` (the first clean window sets ``L``);
* a window in which the AMP GradScaler skipped every step has no mean: ``p`` such windows in a row are an event
  (``"skipped"``: the gradients have been inf/NaN for ``p`` windows, a divergence the scaler cannot fix).

Defaults (``f = 1.3``, ``p = 2``, ``s = 0.8``, windows of 10 steps) were read off MNIST-1D ConvBase 1cycle
curves (``benchmarks/guard.py --curves``): on the tuned peak the highest ratio ``m / L`` in a run was 1.07;
the runs at 2x and 3x the tuned peak that died went to the chance level, 1.4x-1.6x their level, and stayed.
A slower level (``s = 0.9``) still remembers the initial plateau when the net dies, and ``f >= 1.4`` missed
two of the three deaths.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["LossMonitor", "NON_FINITE", "SPIKE", "SKIPPED"]

NON_FINITE = "non-finite"
SPIKE = "spike"
SKIPPED = "skipped"


class LossMonitor:
    """The state of the rule above: the smoothed level and the runs of high and of skipped windows.

    Args:
        factor: ``f``, the multiple of the level above which a window is high.
        patience: ``p``, high (or all-skipped) windows in a row that make an event.
        smoothing: ``s``, the weight of the old level in its update, in [0, 1).
    """

    def __init__(self, factor: float, patience: int, smoothing: float) -> None:
        self.factor = factor
        self.patience = patience
        self.smoothing = smoothing
        self.level: float | None = None
        self.high = 0
        self.skipped = 0

    def observe(self, mean: float | None) -> str | None:
        """Takes one window's mean loss (``None``: every step skipped) and returns the event, or ``None``."""
        if mean is None:
            self.skipped += 1
            return SKIPPED if self.skipped >= self.patience else None
        self.skipped = 0
        if not math.isfinite(mean):
            return NON_FINITE
        if self.level is not None and self.level > 0 and mean > self.factor * self.level:
            self.high += 1
            return SPIKE if self.high >= self.patience else None
        self.high = 0
        self.level = mean if self.level is None else self.smoothing * self.level + (1.0 - self.smoothing) * mean
        return None

    @property
    def clean(self) -> bool:
        """Whether the last window was clean: a state kept now is a good one."""
        return self.high == 0 and self.skipped == 0

    def after_rollback(self) -> None:
        """Forgets the runs of high and skipped windows; the level stays (high windows never moved it)."""
        self.high = self.skipped = 0

    def state_dict(self) -> dict[str, Any]:
        return {"level": self.level, "high": self.high, "skipped": self.skipped}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        level = state.get("level")
        self.level = None if level is None else float(level)
        self.high = int(state.get("high", 0))
        self.skipped = int(state.get("skipped", 0))
