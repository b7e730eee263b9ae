"""Warmup-stable-decay (WSD, "trapezoidal"): a warm-up, a long plateau at the peak, and a short cool-down."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from lightning_clr._checks import check_choice, check_int, check_number
from lightning_clr.schedules._base import ScheduleBase

__all__ = ["WSD_SHAPES", "WarmupStableDecaySchedule"]

WSD_SHAPES: tuple[str, ...] = ("linear", "cosine", "1-sqrt")
"""The shapes of WSD's warm-up and cool-down, as transformers' ``get_wsd_schedule`` names them."""

WSDShape = Literal["linear", "cosine", "1-sqrt"]


def _rise(shape: str, progress: float) -> float:
    """The warm-up's share of the way from the floor to the peak, 0 at ``progress`` 0 and 1 at 1."""
    if shape == "linear":
        return progress
    if shape == "cosine":
        return 0.5 * (1.0 - math.cos(math.pi * progress))
    return 1.0 - math.sqrt(1.0 - progress)  # 1-sqrt


def _fall(shape: str, progress: float) -> float:
    """The cool-down's share of the way from the floor to the peak, 1 at ``progress`` 0 and 0 at 1."""
    if shape == "linear":
        return 1.0 - progress
    if shape == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0 - math.sqrt(progress)  # 1-sqrt


@dataclass(frozen=True)
class WarmupStableDecaySchedule(ScheduleBase):
    r"""Warmup-stable-decay (WSD): from ``floor`` up to ``peak``, ``peak`` for most of the run, then a short
    cool-down back to ``floor``, held from then on.

    .. math::
        v(t) = \begin{cases}
            v_0 + (V - v_0) \, w(t / W) & 0 \le t < W \\
            V & W \le t < W + S \\
            v_0 + (V - v_0) \, d\big((t - W - S) / D\big) & W + S \le t < W + S + D \\
            v_0 & t \ge W + S + D
        \end{cases}

    with the warm-up shape :math:`w` (``warmup_shape``) and the cool-down shape :math:`d` (``decay_shape``) of
    the progress :math:`p \in [0, 1)` through the phase:

    * ``"linear"``: :math:`w(p) = p`, :math:`d(p) = 1 - p`;
    * ``"cosine"``: :math:`w(p) = (1 - \cos \pi p) / 2`, :math:`d(p) = (1 + \cos \pi p) / 2`;
    * ``"1-sqrt"``: :math:`w(p) = 1 - \sqrt{1 - p}`, :math:`d(p) = 1 - \sqrt{p}`.

    Symbols: :math:`t` the 0-based optimizer step, :math:`V` ``peak``, :math:`v_0` ``floor``, :math:`W`
    ``warmup_steps``, :math:`S` ``stable_steps``, :math:`D` ``decay_steps``. The warm-up starts at ``floor``
    (step 0) and reaches ``peak`` at step :math:`W`; the cool-down starts at ``peak`` (step :math:`W + S`) and
    its last step, :math:`W + S + D - 1`, is still above ``floor``, which holds from step :math:`W + S + D`
    (``total_steps_or_none``) on. A phase of 0 steps is skipped.

    This is transformers' ``get_wsd_schedule(optimizer, num_warmup_steps=W, num_decay_steps=D,
    num_stable_steps=S, warmup_type=..., decay_type=..., min_lr_ratio=floor / peak)`` (a ``LambdaLR``: its value
    at optimizer step :math:`t` is its lambda at :math:`t`) times the optimizer's rate ``peak``, to a relative
    1e-9, for every pair of shapes: its warm-up too starts at ``min_lr_ratio`` times the rate, and it holds that
    after the cool-down. (transformers releases older than its ``warmup_type`` argument warm up from 0 and cool
    down by a cosine only: the same with ``floor=0``, ``decay_shape="cosine"``.) The floor here is interpolated,
    :math:`v_0 + (V - v_0) f`, not scaled, :math:`V ((1 - r) f + r)` with :math:`r = v_0 / V`, so the values held
    at the start and after the end are ``floor`` itself.

    The plateau needs no run length fixed in advance: a cool-down can start from it at any step. Hägele et al.
    found a short cool-down on par with a cosine schedule over the same run, and the 1-sqrt shape (the default)
    better than the linear one.

    Example::

        >>> WarmupStableDecaySchedule(1.0, 2, 2, 4, decay_shape="linear").values(9)
        [0.0, 0.5, 1.0, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0]

    References:
        Hägele et al., *Scaling Laws and Compute-Optimal Training Beyond
        Fixed Training Durations*, NeurIPS 2024. arXiv:2405.18392 (the 1-sqrt cool-down).
        Hu et al., *MiniCPM: Unveiling the Potential of Small Language Models with Scalable Training
        Strategies*, 2024. arXiv:2404.06395 (WSD).
    """

    peak: float
    warmup_steps: int
    stable_steps: int
    decay_steps: int
    floor: float = 0.0
    warmup_shape: WSDShape = "linear"
    decay_shape: WSDShape = "1-sqrt"

    def __post_init__(self) -> None:
        check_number(self.peak, "peak", 0.0)
        check_int(self.warmup_steps, "warmup_steps", 0, "steps")
        check_int(self.stable_steps, "stable_steps", 0, "steps")
        check_int(self.decay_steps, "decay_steps", 0, "steps")
        check_number(self.floor, "floor", 0.0, self.peak, why="the rate before the warm-up and after the cool-down")
        check_choice(self.warmup_shape, "warmup_shape", WSD_SHAPES)
        check_choice(self.decay_shape, "decay_shape", WSD_SHAPES)

    @property
    def total_steps_or_none(self) -> int | None:
        return self.warmup_steps + self.stable_steps + self.decay_steps

    def __call__(self, step: int) -> float:
        warmup, plateau_end = self.warmup_steps, self.warmup_steps + self.stable_steps
        if step < warmup:
            share = _rise(self.warmup_shape, step / warmup)
        elif step < plateau_end:
            return self.peak
        elif step < plateau_end + self.decay_steps:
            share = _fall(self.decay_shape, (step - plateau_end) / self.decay_steps)
        else:
            return self.floor
        return self.floor + (self.peak - self.floor) * share

    def cycle_ends(self, steps: int) -> list[int]:
        end = self.warmup_steps + self.stable_steps + self.decay_steps
        return [end] if 0 < end <= steps else []
