"""Closed-form learning-rate (and momentum) schedules.

Every schedule is a small frozen dataclass whose ``__call__(step)`` returns the value to use at the
0-based optimizer step ``step``. They hold no state, import neither torch nor Lightning, pickle, and fit
LightningCLI's ``class_path``/``init_args``. Lengths here are plain step counts; the callbacks resolve
lengths given in epochs or percent before they build a schedule. Arguments are checked once, in
``__post_init__``; ``__call__`` never raises for a non-negative step, and past the end of a finite
schedule it holds the final value.

Each schedule is written for any quantity that cycles between two values, so the same classes give the
momentum schedules (momentum falls while the rate rises: swap the two values).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Literal, Optional, Protocol, runtime_checkable

from lightning_clr._checks import ANNEAL_STRATEGIES, CYCLIC_MODES, check_choice, check_int, check_number

__all__ = [
    "ANNEAL_STRATEGIES",
    "CYCLIC_MODES",
    "ConstantSchedule",
    "CosineRestartsSchedule",
    "CyclicSchedule",
    "ExponentialRamp",
    "LinearRamp",
    "OneCycleSchedule",
    "Schedule",
    "ScheduleBase",
]

CyclicMode = Literal["triangular", "triangular2", "exp_range"]
AnnealStrategy = Literal["cos", "linear"]


@runtime_checkable
class Schedule(Protocol):
    """Anything that maps a 0-based optimizer step to a value."""

    def __call__(self, step: int) -> float: ...


class ScheduleBase:
    """Shared conveniences of the built-in schedules: listing values, cycle ends and plotting."""

    #: The first step past the schedule's end, from which it holds its final value; ``None`` if endless.
    @property
    def total_steps_or_none(self) -> int | None:
        return None

    def __call__(self, step: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def values(self, steps: int) -> list[float]:
        """The values at steps ``0 .. steps - 1``."""
        return [self(step) for step in range(steps)]

    def cycle_ends(self, steps: int) -> list[int]:
        """Optimizer-step counts ``n <= steps`` at which a cycle ends: after ``n`` steps the schedule
        restarts (or, for a finite schedule, ends). A snapshot taken after step count ``n`` sits at a
        cycle's minimum."""
        return []

    def plot(self, steps: int, **kwargs: Any) -> Any:
        """Draws the schedule over ``steps`` optimizer steps with matplotlib and returns the figure.

        Keyword arguments go to :func:`lightning_clr.plotting.plot_schedule`.
        """
        from lightning_clr.plotting import plot_schedule

        return plot_schedule(self, steps, **kwargs)


class _Precomputed:
    """A frozen schedule with step-independent constants worked out once, in :meth:`_precompute` (called
    from ``__post_init__``). They live in ``__dict__`` beside the fields, but are no fields: equality and
    ``repr`` ignore them, and a pickle (or copy) holds the fields only and works them out again."""

    # The constants, by name (each schedule sets those it uses); declared here, outside the dataclasses, so
    # that they are no fields.
    _total: int
    _ratio: float
    _ratio_down: float
    _amplitude: float
    _mode: int
    _table: tuple[tuple[float, float, float, float, float, float], ...]
    _cos: bool
    _last: int
    _limit: float
    _log_t_mul: float
    _floor: float
    _cycle: tuple[int, float, float, float, float]
    _delta: float

    def _precompute(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _cache(self, **values: Any) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return type(self), tuple(getattr(self, f.name) for f in fields(self))  # type: ignore[arg-type]


def _snap_to_step(value: float) -> float:
    """``value``, or the whole step it misses only through rounding.

    Rounding can put a whole-step cycle start a hair late (``21 * (0.1 - 1) / (0.1 - 1)`` is
    ``21.000000000000004``), which would leave that step at the end of the previous cycle.
    """
    nearest = round(value)
    return float(nearest) if abs(value - nearest) <= 1e-9 * max(1.0, abs(value)) else value


@dataclass(frozen=True)
class CyclicSchedule(_Precomputed, ScheduleBase):
    r"""Cyclical learning rate (Smith, 2017): a triangle wave between ``start`` and ``peak``.

    .. math::
        c = \lfloor 1 + t / (u + d) \rfloor, \quad x = 1 + t / (u + d) - c, \\
        s = x / r \text{ if } x \le r \text{ else } (x - 1) / (r - 1), \quad r = u / (u + d), \\
        v(t) = v_0 + (v_1 - v_0) \, s \, f

    with :math:`f = 1` (``triangular``), :math:`f = 2^{-(c - 1)}` (``triangular2``, halving each cycle)
    or :math:`f = \gamma^t` (``exp_range``). This is ``torch.optim.lr_scheduler.CyclicLR``'s formula,
    evaluated in the same order, so the values agree to the last bits.

    Symbols: :math:`t` the 0-based optimizer step, :math:`u` ``step_size_up``, :math:`d`
    ``step_size_down``, :math:`v_0` ``start``, :math:`v_1` ``peak``, :math:`c` the 1-based cycle.

    For a rate, ``start`` is ``base_lr`` and ``peak`` is ``max_lr``. For momentum, ``start`` is
    ``max_momentum`` and ``peak`` is ``base_momentum``. Cycles end (at ``start``) after every
    ``u + d`` steps.

    References:
        Smith, *Cyclical Learning Rates for Training Neural Networks*, WACV 2017. arXiv:1506.01186.
    """

    start: float
    peak: float
    step_size_up: int = 2000
    step_size_down: Optional[int] = None  # noqa: UP045 - LightningCLI shows this form
    mode: CyclicMode = "triangular"
    gamma: float = 1.0

    def __post_init__(self) -> None:
        check_number(self.start, "start")
        check_number(self.peak, "peak")
        check_int(self.step_size_up, "step_size_up", 1, "steps")
        if self.step_size_down is not None:
            check_int(self.step_size_down, "step_size_down", 1, "steps")
        check_choice(self.mode, "mode", CYCLIC_MODES)
        check_number(self.gamma, "gamma", 0.0, 1.0, low_open=True, why="gamma > 1 grows the amplitude without bound")
        self._precompute()

    def _precompute(self) -> None:
        total = self.cycle_length
        ratio = self.step_size_up / total
        self._cache(_total=total, _ratio=ratio, _ratio_down=ratio - 1, _amplitude=self.peak - self.start,
                    _mode=CYCLIC_MODES.index(self.mode))

    @property
    def cycle_length(self) -> int:
        down = self.step_size_up if self.step_size_down is None else self.step_size_down
        return self.step_size_up + down

    def __call__(self, step: int) -> float:
        total = self._total
        ratio = self._ratio
        cycle = math.floor(1 + step / total)
        x = 1.0 + step / total - cycle
        scale = x / ratio if x <= ratio else (x - 1) / self._ratio_down
        height = self._amplitude * scale
        mode = self._mode
        if mode == 0:  # triangular
            return self.start + height  # height * 1.0, exactly
        if mode == 1:  # triangular2; torch: 1 / 2.0 ** (cycle - 1), equal, but OverflowError past cycle 1025
            return self.start + height * 0.5 ** (cycle - 1)
        return self.start + height * self.gamma**step  # exp_range

    def cycle_ends(self, steps: int) -> list[int]:
        return list(range(self.cycle_length, steps + 1, self.cycle_length))


@dataclass(frozen=True)
class OneCycleSchedule(_Precomputed, ScheduleBase):
    r"""The 1cycle policy (Smith & Topin, 2019): one rise and one long fall over ``total_steps``.

    Two phases (default): ``initial`` to ``peak`` over the first :math:`p T - 1` steps, then ``peak`` to
    ``final`` by step :math:`T - 1`. Three phases: ``initial`` to ``peak`` by :math:`p T - 1`, back to
    ``initial`` by :math:`2 p T - 2`, then to ``final`` by :math:`T - 1`. Within a phase running from
    value :math:`a` at step :math:`t_0` to :math:`b` at :math:`t_1`, with :math:`\pi_t = (t - t_0) / (t_1 - t_0)`:

    .. math::
        v_{\cos}(t) = b + \frac{a - b}{2} (1 + \cos \pi \pi_t), \qquad v_{\text{lin}}(t) = (b - a) \pi_t + a

    Symbols: :math:`T` ``total_steps``, :math:`p` ``pct_start``. These are
    ``torch.optim.lr_scheduler.OneCycleLR``'s phases and formulas. From step :math:`T - 1` on the value
    stays at ``final`` (torch raises "Tried to step X times" instead).

    For a rate: ``initial = max_lr / div_factor``, ``peak = max_lr``, ``final = initial / final_div_factor``.
    For momentum: ``initial = final = max_momentum``, ``peak = base_momentum``.

    References:
        Smith & Topin, *Super-Convergence: Very Fast Training of Neural Networks Using Large Learning
        Rates*, 2019. arXiv:1708.07120.
    """

    initial: float
    peak: float
    final: float
    total_steps: int
    pct_start: float = 0.3
    anneal_strategy: AnnealStrategy = "cos"
    three_phase: bool = False

    def __post_init__(self) -> None:
        for name in ("initial", "peak", "final", "pct_start"):
            check_number(getattr(self, name), name)
        check_int(self.total_steps, "total_steps", 1, "steps")
        check_number(self.pct_start, "pct_start", 0.0, 1.0, low_open=True, high_open=True)
        check_choice(self.anneal_strategy, "anneal_strategy", ANNEAL_STRATEGIES)
        self._precompute()

    def _precompute(self) -> None:
        # Per phase: (end_step, start_step, span, start_value, end_value, half or delta), as __call__ uses them.
        table = []
        start_step = 0.0
        for end_step, start_value, end_value in self._phases():
            span = end_step - start_step
            slope = ((start_value - end_value) / 2.0 if self.anneal_strategy == "cos"
                     else end_value - start_value)
            table.append((end_step, start_step, span, start_value, end_value, slope))
            start_step = end_step
        self._cache(_table=tuple(table), _cos=self.anneal_strategy == "cos", _last=self.total_steps - 1)

    @property
    def total_steps_or_none(self) -> int | None:
        return self.total_steps

    def _phases(self) -> tuple[tuple[float, float, float], ...]:
        """``(end_step, start_value, end_value)`` for each phase, as torch builds them."""
        rise_end = float(self.pct_start * self.total_steps) - 1
        if self.three_phase:
            return (
                (rise_end, self.initial, self.peak),
                (float(2 * self.pct_start * self.total_steps) - 2, self.peak, self.initial),
                (self.total_steps - 1, self.initial, self.final),
            )
        return ((rise_end, self.initial, self.peak), (self.total_steps - 1, self.peak, self.final))

    def __call__(self, step: int) -> float:
        step = min(step, self._last)
        table = self._table
        for phase in table:
            if step <= phase[0]:
                break  # else: the last phase, which always matches
        _, start_step, span, start_value, end_value, slope = phase
        pct = (step - start_step) / span if span != 0 else 1.0
        if self._cos:
            return end_value + slope * (math.cos(math.pi * pct) + 1)
        return slope * pct + start_value

    def cycle_ends(self, steps: int) -> list[int]:
        return [self.total_steps] if self.total_steps <= steps else []


@dataclass(frozen=True)
class CosineRestartsSchedule(_Precomputed, ScheduleBase):
    r"""Cosine decay with warm restarts (SGDR; Keras ``CosineDecayRestarts``).

    Cycle :math:`i` (0-based) starts at step :math:`s_i = F (m^i - 1) / (m - 1)` (:math:`s_i = F i` when
    :math:`m = 1`) and lasts :math:`T_i = F m^i` steps. With :math:`\tau = (t - s_i) / T_i`:

    .. math::
        v(t) = V \left( (1 - \alpha) \, \mu^i \, \tfrac{1}{2} (1 + \cos \pi \tau) + \alpha \right)

    Symbols: :math:`V` ``peak`` (Keras ``initial_learning_rate``), :math:`F` ``first_cycle``
    (``first_decay_steps``), :math:`m` ``t_mul``, :math:`\mu` ``m_mul``, :math:`\alpha` ``alpha`` (the floor
    as a fraction of :math:`V`). With :math:`\mu = 1` and an integer :math:`m` this is also torch's
    ``CosineAnnealingWarmRestarts(T_0=F, T_mult=m, eta_min=alpha * V)``. The cycle index is found in
    closed form and corrected against the exact cycle starts, so restarts never drift by a step through
    rounding.

    References:
        Loshchilov & Hutter, *SGDR: Stochastic Gradient Descent with Warm Restarts*, ICLR 2017.
        arXiv:1608.03983.
    """

    peak: float
    first_cycle: int
    t_mul: float = 1.0
    m_mul: float = 1.0
    alpha: float = 0.0

    def __post_init__(self) -> None:
        for name in ("peak", "t_mul", "m_mul", "alpha"):
            check_number(getattr(self, name), name)
        check_int(self.first_cycle, "first_cycle", 1, "steps")
        check_number(self.t_mul, "t_mul", 0.0, low_open=True)
        check_number(self.m_mul, "m_mul", 0.0, 1.0, low_open=True, why="m_mul > 1 grows the peaks without bound")
        check_number(self.alpha, "alpha", 0.0, 1.0)
        self._precompute()

    def _precompute(self) -> None:
        limit = _snap_to_step(self.first_cycle / (1 - self.t_mul)) if self.t_mul < 1 else math.inf
        self._cache(_log_t_mul=math.log(self.t_mul), _limit=limit, _amplitude=1 - self.alpha,
                    _floor=self.peak * self.alpha)
        self._cache(_cycle=self._cycle_of(0))

    def _cycle_of(self, index: int) -> tuple[int, float, float, float, float]:
        """``(index, first step, first step of the next cycle, length, 0.5 * m_mul ** index)`` of a cycle."""
        end = min(self.cycle_start(index + 1), self._limit)
        return index, self.cycle_start(index), end, self.first_cycle * self.t_mul**index, 0.5 * self.m_mul**index

    def cycle_start(self, index: int) -> float:
        """The step at which cycle ``index`` (0-based) begins."""
        if self.t_mul == 1:
            return float(self.first_cycle * index)
        return _snap_to_step(self.first_cycle * (self.t_mul**index - 1) / (self.t_mul - 1))

    def cycle_index(self, step: int) -> int:
        """The 0-based cycle that step ``step`` falls in."""
        if self.t_mul == 1:
            return step // self.first_cycle
        if step >= self._limit:  # shrinking cycles (t_mul < 1) sum to F / (1 - m): past that, the final state
            return -1
        index = math.floor(math.log(1 + step / self.first_cycle * (self.t_mul - 1)) / self._log_t_mul)
        index = max(index, 0)
        while self.cycle_start(index + 1) <= step:
            index += 1
        while index > 0 and self.cycle_start(index) > step:
            index -= 1
        return index

    def __call__(self, step: int) -> float:
        # The cycle of the last call (see _cycle_of): steps come in order, so it is nearly always the one
        # asked for, and the search (a logarithm, powers) runs once a cycle. Pure: the value depends on step only.
        index, start, end, length, height = self._cycle
        if not start <= step < end:
            index = self.cycle_index(step)
            if index < 0:  # beyond the limit of shrinking cycles
                return self._floor
            cycle = self._cycle_of(index)
            self._cache(_cycle=cycle)
            index, start, end, length, height = cycle
        fraction = (step - start) / length
        cosine = height * (1 + math.cos(math.pi * fraction))
        return self.peak * (self._amplitude * cosine + self.alpha)

    def cycle_ends(self, steps: int) -> list[int]:
        ends: list[int] = []
        index = 1
        while True:
            end = self.cycle_start(index)
            rounded = round(end)
            if rounded > steps or (self.t_mul < 1 and rounded in ends):
                return ends
            if abs(end - rounded) < 1e-9:
                ends.append(rounded)
            index += 1


@dataclass(frozen=True)
class ConstantSchedule(ScheduleBase):
    """The same value at every step."""

    value: float

    def __post_init__(self) -> None:
        check_number(self.value, "value")

    def __call__(self, step: int) -> float:
        return self.value


@dataclass(frozen=True)
class LinearRamp(_Precomputed, ScheduleBase):
    r"""From ``start`` at step 0 to ``end`` at step :math:`n - 1` in equal increments, then ``end``.

    .. math:: v(t) = a + (b - a) \min(t, n - 1) / (n - 1)
    """

    start: float
    end: float
    num_steps: int

    def __post_init__(self) -> None:
        check_number(self.start, "start")
        check_number(self.end, "end")
        check_int(self.num_steps, "num_steps", 1, "steps")
        self._precompute()

    def _precompute(self) -> None:
        self._cache(_delta=self.end - self.start, _last=self.num_steps - 1)

    @property
    def total_steps_or_none(self) -> int | None:
        return self.num_steps

    def __call__(self, step: int) -> float:
        if step >= self._last:  # exactly ``end``: the formula can miss it by an ulp
            return self.end
        return self.start + self._delta * step / self._last


@dataclass(frozen=True)
class ExponentialRamp(_Precomputed, ScheduleBase):
    r"""From ``start`` at step 0 to ``end`` at step :math:`n - 1` in equal ratios, then ``end``
    (the LR range test's usual sweep).

    .. math:: v(t) = a (b / a)^{\min(t, n - 1) / (n - 1)}
    """

    start: float
    end: float
    num_steps: int

    def __post_init__(self) -> None:
        check_number(self.start, "start")
        check_number(self.end, "end")
        if self.start <= 0 or self.end <= 0:
            raise ValueError(f"Expected start > 0 and end > 0, but got start={self.start!r}, end={self.end!r}.")
        check_int(self.num_steps, "num_steps", 1, "steps")
        self._precompute()

    def _precompute(self) -> None:
        self._cache(_ratio=self.end / self.start, _last=self.num_steps - 1)

    @property
    def total_steps_or_none(self) -> int | None:
        return self.num_steps

    def __call__(self, step: int) -> float:
        if step >= self._last:  # exactly ``end``: the formula can miss it by an ulp
            return self.end
        return self.start * self._ratio ** (step / self._last)
