"""The LR range test (Smith, 2017) as a callback: sweep the rate up over a short run, read the bounds off the loss.

:class:`LRRangeTest` runs the test at train start, in its own small loop over the training data
(:mod:`~lightning_clr.tuner.sweep`), and then puts everything back (:mod:`~lightning_clr.tuner.isolation`), so the
real training starts as if the test had never run. Its :class:`~lightning_clr.RangeTestResult` holds the curve and
the suggestion (:mod:`~lightning_clr.tuner.suggest`), which :class:`~lightning_clr.CyclicLR`,
:class:`~lightning_clr.OneCycleLR` and :class:`~lightning_clr.CosineRestartsLR` take when given ``"auto"``.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from typing import Any, Literal

from lightning_utilities.core.rank_zero import rank_zero_info
from typing_extensions import override

from lightning_clr._checks import check_bool, check_choice, check_int, check_number
from lightning_clr._compat import CallbackBase
from lightning_clr._trainer import is_automatic_optimization, steps_per_epoch, total_steps, unwrap_optimizer
from lightning_clr._warnings import warn
from lightning_clr.schedules import ExponentialRamp, LinearRamp
from lightning_clr.tuner.isolation import isolated
from lightning_clr.tuner.result import RangeTestResult, build_result
from lightning_clr.tuner.suggest import MIN_POINTS, POLICIES, CurveReading, RangeTestError
from lightning_clr.tuner.sweep import optimizer_family, run_sweep

__all__ = ["PLOT_NAME", "RESULT_NAME", "LRRangeTest", "RangeTestError", "RangeTestResult"]

PLOT_NAME = "lr_range_test.png"
RESULT_NAME = "lr_range_test.json"
DEFAULT_MIN_LR = 1e-6
"""The first rate of the default sweep: below any useful rate of SGD or Adam."""
DEFAULT_MAX_LR = 10.0
"""The last rate of the default sweep (it usually ends earlier, when the loss diverges)."""
DEFAULT_STEPS_PER_DECADE = 16.0
"""Optimizer steps per decade of the default (exponential) sweep."""
LINEAR_STEPS = 100
"""Optimizer steps of a linear sweep when ``num_steps`` is not given."""
_SUPPORTED_STRATEGIES = ("SingleDeviceStrategy", "DDPStrategy", "ModelParallelStrategy")
_UNSUPPORTED_STRATEGIES = ("DeepSpeedStrategy", "FSDPStrategy", "XLAStrategy", "SingleDeviceXLAStrategy")


class LRRangeTest(CallbackBase):
    r"""Runs an LR range test at train start and suggests the bounds of a cyclical schedule.

    Over the optimizer steps of the sweep on the training data, the rate of every param group rises from
    ``min_lr`` to ``max_lr`` (exponentially, ``steps_per_decade`` steps a decade,
    :class:`~lightning_clr.ExponentialRamp`; or linearly, :class:`~lightning_clr.LinearRamp`), and the training
    loss of each step is recorded. The test stops early when the loss diverges: the smoothed loss exceeds
    ``divergence_threshold`` times its lowest value, climbs back above its starting level after a fall, or the
    loss is NaN or infinite. The defaults (1e-6 to 10,
    16 steps a decade: at most 113 steps, usually fewer) resolve the region where the loss falls and turns for
    SGD and Adam-family optimizers alike. Then the
    weights, the optimizer's state, ``global_step``, the random states (torch, CUDA, numpy, Python and the
    loaders' generators) and the train loaders are put back, so the real training that follows is the same,
    step for step, as without the test.

    The result, :attr:`result`, holds the curve, its cost (steps, seconds) and a suggestion per policy (see
    :mod:`lightning_clr.tuner.suggest` for the rules, :meth:`RangeTestResult.suggest`). Schedule callbacks given
    ``"auto"`` bounds take theirs from it::

        trainer = Trainer(max_epochs=10, callbacks=[LRRangeTest(), CyclicLR(base_lr="auto", max_lr="auto",
                                                                            step_size_up="auto")])

    The test runs its own loop: the steps call ``training_step`` (with the strategy's wrapper, so DDP
    averages gradients, and the precision's autocast), honour ``accumulate_grad_batches`` and gradient
    clipping, and step the optimizer, but fire no other callback's batch hooks, write nothing to the loggers
    (``self.log`` does nothing during the test) and do not advance ``global_step``. Under DDP and under FSDP2
    (``ModelParallelStrategy``, the module sharded with ``fully_shard``) the loss is averaged over ranks before
    it is recorded, so every rank reads the same curve and stops at the same step, and every rank gets rank
    zero's result; under FSDP2 each rank keeps and puts back its own local shards (parameters, gradients,
    optimizer state).

    Args:
        min_lr: the rate of the first step.
        max_lr: the rate of the last step.
        num_steps: optimizer steps of the sweep, at least 10; `None`: `steps_per_decade` steps a decade
            (exponential; 113 steps with the defaults) or 100 (linear). The loaders start over when they run
            out (`limit_train_batches` does not apply to the sweep).
        mode: `"exponential"` (even steps on a log axis; the usual choice over several decades) or
            `"linear"`.
        smoothing: the weight of a new loss in the moving average, in (0, 1]; 1 is no smoothing.
        divergence_threshold: stop when the smoothed loss exceeds this many times the lowest smoothed loss
            (for a negative best loss: `best + (threshold - 1) * |best|`); `None` never stops early
            except on NaN or infinite losses.
        step_size_epochs: the suggested `step_size_up` in epochs of the real training (Smith: 2 to 10).
        plot: on rank zero, save the result (`lr_range_test.json`) and its figure (`lr_range_test.png`)
            next to the logs, and add the figure to an attached TensorBoardLogger. `None`: the figure only
            when matplotlib is installed; `True`: matplotlib is required (ImportError otherwise);
            `False`: write nothing.
        save_dir: the folder for those files; `None` is `trainer.log_dir` (`default_root_dir`
            without a logger).
        verbose: print the suggestion (on rank zero).
        steps_per_decade: the density of an exponential sweep when `num_steps` is `None`.
        rules: per policy (`"one_cycle"`, `"cyclic"`, `"cosine_restarts"`), a function of the curve's reading
            (`lightning_clr.tuner.suggest.CurveReading`) that returns the policy's `max_lr`, replacing the
            built-in rule (e.g. `lightning_clr.tuner.suggest.knee_peak` with a factor of one's own).

    Raises:
        ValueError: an argument out of range (``"Expected ..., but got ..."``).
    """

    def __init__(
        self,
        min_lr: float = DEFAULT_MIN_LR,
        max_lr: float = DEFAULT_MAX_LR,
        num_steps: int | None = None,
        mode: Literal["exponential", "linear"] = "exponential",
        smoothing: float = 0.05,
        divergence_threshold: float | None = 4.0,
        step_size_epochs: float = 4.0,
        plot: bool | None = None,
        save_dir: str | None = None,
        verbose: bool = True,
        steps_per_decade: float = DEFAULT_STEPS_PER_DECADE,
        rules: dict[str, Callable[[CurveReading], float]] | None = None,
    ) -> None:
        super().__init__()
        self.min_lr = check_number(min_lr, "min_lr", 0.0, math.inf, low_open=True, high_open=True)
        self.max_lr = check_number(max_lr, "max_lr", 0.0, math.inf, low_open=True, high_open=True)
        if not max_lr > min_lr:
            raise ValueError(f"Expected max_lr > min_lr, but got min_lr={min_lr!r}, max_lr={max_lr!r}.")
        if num_steps is not None:
            check_int(num_steps, "num_steps", MIN_POINTS, "steps")
        self.mode = check_choice(mode, "mode", ("exponential", "linear"))
        self.smoothing = check_number(smoothing, "smoothing", 0.0, 1.0, low_open=True)
        self.divergence_threshold = (None if divergence_threshold is None else check_number(
            divergence_threshold, "divergence_threshold", 1.0, math.inf, low_open=True, high_open=True,
            why="or None"))
        self.step_size_epochs = check_number(step_size_epochs, "step_size_epochs", 0.0, math.inf, low_open=True,
                                             high_open=True)
        if plot is not None:
            check_bool(plot, "plot")
        self.steps_per_decade = check_number(steps_per_decade, "steps_per_decade", 1.0, math.inf, high_open=True)
        self.num_steps: int | None = num_steps  # as given (repr shows it only when given); sweep_steps resolves it
        if rules is not None:
            for policy, rule in rules.items():
                check_choice(policy, "a key of rules", POLICIES)
                if not callable(rule):
                    raise ValueError(f"Expected rules[{policy!r}] to be a callable, but got {rule!r}.")
        self.rules = None if rules is None else dict(rules)
        self.plot = plot
        self.save_dir = save_dir
        self.verbose = bool(verbose)
        self.result: RangeTestResult | None = None
        self._ran_this_fit = False
        self._restored: RangeTestResult | None = None
        self._stop_after_test = False  # set by lr_range_test: no training after the test
        self._run_unknown = False  # set by lr_range_test on its own throw-away Trainer: its length is not the run's

    # ------------------------------------------------------------------ the sweep
    @property
    def sweep_steps(self) -> int:
        """The most optimizer steps of the sweep: ``num_steps`` if given, else ``steps_per_decade`` steps a
        decade from ``min_lr`` to ``max_lr`` (113 with the defaults) or 100 for a linear sweep."""
        if self.num_steps is not None:
            return self.num_steps
        if self.mode == "linear":
            return max(MIN_POINTS, LINEAR_STEPS)
        decades = math.log10(self.max_lr / self.min_lr)
        return max(MIN_POINTS, math.ceil(decades * self.steps_per_decade) + 1)

    @property
    def sweep_schedule(self) -> ExponentialRamp | LinearRamp:
        """The rate of each optimizer step of the sweep, as a ramp schedule."""
        ramp = ExponentialRamp if self.mode == "exponential" else LinearRamp
        return ramp(self.min_lr, self.max_lr, self.sweep_steps)

    def lr_at(self, step: int) -> float:
        """The rate of optimizer step ``step`` of the sweep (``0 <= step < sweep_steps``)."""
        return self.sweep_schedule(step)

    # ------------------------------------------------------------------ hooks
    @override
    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        _check_supported(trainer, pl_module)
        self._ran_this_fit = self._restored is not None
        if self._restored is not None:
            self.result, self._restored = self._restored, None

    @override
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        result = self._ensure(trainer, pl_module)
        if self._stop_after_test:
            trainer.should_stop = True
        elif not result.has_suggestion:
            warn(f"LRRangeTest gave no suggestion: {result.suggestion_error}")

    @override
    def state_dict(self) -> dict[str, Any]:
        return {} if self.result is None else {"result": self.result.to_dict()}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "result" in state_dict:
            # A resumed fit keeps the bounds it started with instead of testing the half-trained model.
            self._restored = RangeTestResult.from_dict(state_dict["result"])

    # ------------------------------------------------------------------ the entry point for "auto" bounds
    def ensure_result(self, trainer: Any, pl_module: Any) -> RangeTestResult:
        """Runs the test if it has not run in this fit, and returns a result with a suggestion.

        Schedule callbacks with ``"auto"`` bounds call this at train start; it is idempotent.

        Raises:
            RangeTestError: if the curve gave no suggestion (``error.result`` has the curve).
        """
        return self._ensure(trainer, pl_module).require_suggestion()

    def _ensure(self, trainer: Any, pl_module: Any) -> RangeTestResult:
        if not self._ran_this_fit or self.result is None:
            if trainer.train_dataloader is None:
                raise RuntimeError(
                    "LRRangeTest runs at train start (when the train loader is set up); it was asked for its "
                    "result before. Call ensure_result from on_train_start or later."
                )
            _check_supported(trainer, pl_module)
            self.result = self._run(trainer, pl_module)
            self._ran_this_fit = True
            self._report(trainer, self.result)
            if self.result.has_suggestion and self.result.note:
                warn(f"LRRangeTest: {self.result.note}.")
        return self.result

    @override
    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self._ran_this_fit = False

    # ------------------------------------------------------------------ the loop
    def _run(self, trainer: Any, pl_module: Any) -> RangeTestResult:
        optimizers = [unwrap_optimizer(o) for o in trainer.optimizers]
        if not optimizers:
            raise ValueError("LRRangeTest found no optimizer: configure_optimizers returned none.")
        start = time.perf_counter()
        with isolated(trainer, pl_module, optimizers):
            curve = run_sweep(trainer, pl_module, optimizers, self.sweep_schedule, self.sweep_steps, self.smoothing,
                              self.divergence_threshold)
        result = build_result(curve.lrs, curve.losses, self.smoothing, curve.stopped_early, curve.reason,
                              steps_per_epoch(trainer), self.step_size_epochs, self.mode,
                              seconds=time.perf_counter() - start, optimizer=optimizer_family(optimizers),
                              # unknown: CLR's step_size_up is step_size_epochs epochs, not fitted to this fit
                              total_steps=None if self._run_unknown else total_steps(trainer), rules=self.rules)
        # Every rank must use the same bounds; rank zero's are the reference.
        return trainer.strategy.broadcast(result, src=0)

    # ------------------------------------------------------------------ reporting
    def _report(self, trainer: Any, result: RangeTestResult) -> None:
        directory = self.save_dir
        if directory is None:
            directory = trainer.log_dir or trainer.default_root_dir  # log_dir is collective under DDP: every rank
        if self.verbose:
            rank_zero_info(describe(result))
        if not trainer.is_global_zero:
            return
        if self.plot is False:
            return
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, RESULT_NAME), "w") as file:
            json.dump(result.to_dict(), file, indent=1)
        if self.plot is None:
            try:
                import matplotlib  # noqa: F401
            except ImportError:
                return
        figure = result.plot(path=os.path.join(directory, PLOT_NAME))
        for logger in trainer.loggers:
            if _is_tensorboard(logger):
                logger.experiment.add_figure("lr_range_test", figure, global_step=trainer.global_step)



def describe(result: RangeTestResult) -> str:
    """One line on a result: its cost (steps, seconds and, where the run's length is known, its share of the run's
    optimizer steps), each policy's suggestion and any note."""
    steps, total = len(result.lrs), result.total_steps
    share = f" ({steps / total:.0%} of the run's {total})" if total else ""
    cost = f"{steps} steps{share} in {result.seconds:.1f} s, {result.reason}"
    if not result.has_suggestion:
        return f"LRRangeTest ({cost}): no suggestion ({result.suggestion_error})."
    one, cyclic, sgdr = (result.suggest(p) for p in ("one_cycle", "cyclic", "cosine_restarts"))
    return (f"LRRangeTest ({cost}; {result.optimizer} rules): OneCycleLR max_lr={one.max_lr:.3g}; CyclicLR "
            f"base_lr={cyclic.base_lr:.3g}, max_lr={cyclic.max_lr:.3g}, step_size_up={result.step_size_up}; "
            f"CosineRestartsLR max_lr={sgdr.max_lr:.3g}." + (f" Note: {result.note}." if result.note else ""))


def _is_tensorboard(logger: Any) -> bool:
    return any(cls.__name__ == "TensorBoardLogger" for cls in type(logger).__mro__)



def _check_supported(trainer: Any, pl_module: Any) -> None:
    if not is_automatic_optimization(pl_module):
        raise ValueError(
            "LRRangeTest needs automatic optimization, but the LightningModule sets automatic_optimization=False. "
            "Under manual optimization, sweep the rate in your own training_step or give the bounds as numbers."
        )
    names = {cls.__name__ for cls in type(trainer.strategy).__mro__}
    if names & set(_UNSUPPORTED_STRATEGIES) or not names & set(_SUPPORTED_STRATEGIES):
        raise ValueError(
            "Expected a single-device, DDP or ModelParallelStrategy (FSDP2) strategy for LRRangeTest, but got "
            f"{type(trainer.strategy).__name__}. Run the range test on one device (lr_range_test) and pass "
            "the bounds as numbers."
        )
