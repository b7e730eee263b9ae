"""The LR range test (Smith, 2017): sweep the rate up over a short run, read the cycle's bounds off the loss.

:class:`LRRangeTest` is a callback that runs the test at train start, in its own small loop over the training
data, and then puts everything back (weights, optimizer state, ``global_step``, random states, the loaders'
progress), so the real training starts as if the test had never run. Its :class:`RangeTestResult` holds the
curve and a suggested ``base_lr``, ``max_lr`` and ``step_size_up``, which :class:`~lightning_clr.CyclicLR`,
:class:`~lightning_clr.OneCycleLR` and :class:`~lightning_clr.CosineRestartsLR` take when given ``"auto"``.
:func:`lr_range_test` runs the test alone, with no training afterwards.

The suggestion (:func:`suggest_bounds`) is read off a robust, centred smoothing of the recorded losses
(:func:`analysis_curve`: clipped to the starting level, a 5-step running median, then the moving average run
forward and backward, so it is not ~``1/smoothing`` steps late like the one-sided average):

1. ``bottom`` is the lowest point of that curve, ``top`` the highest before it; the loss must fall by at
   least 2% between them, over at least :data:`MIN_POINTS` recorded steps;
2. ``max_lr`` is the first rate where the curve has made 90% of its fall from ``top`` to ``bottom``: the
   loss is about to stop falling, a little before its lowest point and the ragged region past it;
3. ``base_lr`` is the first rate where it has made 10% of its fall (the loss starts to fall), kept between
   ``max_lr / 10`` and ``max_lr / 3``;
4. ``step_size_up`` is ``step_size_epochs`` (4 by default; Smith advises 2 to 10) epochs of optimizer
   steps of the real training.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import statistics
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Optional, Union

import torch
from lightning_utilities.core.rank_zero import rank_zero_info
from typing_extensions import override

from lightning_clr._compat import CallbackBase, rank_zero_warn
from lightning_clr._trainer import is_automatic_optimization, steps_per_epoch, unwrap_optimizer

__all__ = [
    "LRRangeTest",
    "RangeTestResult",
    "RangeTestError",
    "lr_range_test",
    "Suggestion",
    "suggest_bounds",
    "analysis_curve",
    "smooth_losses",
    "zero_phase_smooth",
    "MIN_POINTS",
    "BASE_FRACTION",
    "MAX_FRACTION",
    "BASE_RATIO_RANGE",
    "MIN_FALL",
]

MIN_POINTS = 10
"""The fewest recorded steps a suggestion is made from."""
BASE_FRACTION = 0.1
"""``base_lr``: where the analysis curve has made this share of its fall (before clamping)."""
MAX_FRACTION = 0.9
"""``max_lr``: where the analysis curve has made this share of its fall."""
BASE_RATIO_RANGE = (3.0, 10.0)
"""``base_lr`` is kept between ``max_lr / 10`` and ``max_lr / 3``."""
MIN_FALL = 0.02
"""The loss must fall by at least this share of its highest smoothed value for a suggestion."""
MEDIAN_WINDOW = 5
"""Steps of the running median that removes single-step spikes before smoothing."""
ANALYSIS_SMOOTHING_FACTOR = 4.0
"""The zero-phase average of the analysis curve weighs a new loss ``ANALYSIS_SMOOTHING_FACTOR * smoothing``."""
PLOT_NAME = "lr_range_test.png"
RESULT_NAME = "lr_range_test.json"
_SUPPORTED_STRATEGIES = ("SingleDeviceStrategy", "DDPStrategy")
_UNSUPPORTED_STRATEGIES = ("DeepSpeedStrategy", "FSDPStrategy", "XLAStrategy", "SingleDeviceXLAStrategy",
                           "ModelParallelStrategy")


class RangeTestError(ValueError):
    """The range test gave no suggestion. ``error.result`` holds the curve recorded so far (or ``None``)."""

    def __init__(self, message: str, result: Optional[RangeTestResult] = None) -> None:
        super().__init__(message)
        self.result = result


# ---------------------------------------------------------------------------------------------- the analysis
def smooth_losses(losses: Sequence[float], smoothing: float) -> list[float]:
    """The exponential moving average of ``losses`` with bias correction (as fastai's LR finder).

    ``avg_k = (1 - smoothing) * avg_{k-1} + smoothing * loss_k`` and the value is ``avg_k / (1 - (1 - smoothing)
    ** (k + 1))``, so the first value is the first loss.

    Args:
        losses: the raw losses, in order.
        smoothing: the weight of a new loss, in (0, 1]; 1 means no smoothing.
    """
    beta = 1.0 - smoothing
    avg, out = 0.0, []
    for k, loss in enumerate(losses):
        avg = beta * avg + smoothing * float(loss)
        out.append(avg / (1.0 - beta ** (k + 1)))
    return out


def zero_phase_smooth(losses: Sequence[float], smoothing: float) -> list[float]:
    """:func:`smooth_losses` run forward and then backward: a symmetric filter that is not late.

    Args:
        losses: the raw losses, in order.
        smoothing: the weight of a new loss, in (0, 1].
    """
    forward = smooth_losses(losses, smoothing)
    return smooth_losses(forward[::-1], smoothing)[::-1]


def analysis_curve(losses: Sequence[float], smoothing: float = 0.05) -> list[float]:
    """The curve the suggestion is read from: robust to spikes and to the explosion at the end, and not late.

    1. Losses above the starting level (the median of the first ``max(3, n // 20)``) are clipped to it, so
       that the diverging tail weighs no more than "as bad as at the start";
    2. a running median over :data:`MEDIAN_WINDOW` steps removes single-step spikes;
    3. the zero-phase moving average (:func:`zero_phase_smooth`) with weight ``min(1, 4 * smoothing)``
       (0.2 by default): run in both directions, it is centred on each step instead of ~``1/smoothing``
       steps late, and it smooths over about +-6 steps.

    Args:
        losses: the raw losses, in order (finite).
        smoothing: the range test's ``smoothing``.
    """
    n = len(losses)
    if n == 0:
        return []
    start = statistics.median(losses[: max(3, n // 20)])
    clipped = [min(float(loss), start) for loss in losses]
    half = MEDIAN_WINDOW // 2
    medians = [statistics.median(clipped[max(0, i - half): i + half + 1]) for i in range(n)]
    return zero_phase_smooth(medians, min(1.0, ANALYSIS_SMOOTHING_FACTOR * smoothing))


@dataclass(frozen=True)
class Suggestion:
    """The bounds :func:`suggest_bounds` reads off a curve.

    Attributes:
        base_lr: the suggested lower bound.
        max_lr: the suggested upper bound.
        min_loss_lr: the rate at the lowest point of the analysis curve.
        steepest_lr: the rate where the analysis curve falls fastest against ``log(lr)`` (the suggestion of
            Lightning's ``Tuner.lr_find``).
        note: a remark on the curve, or ``None``.
    """

    base_lr: float
    max_lr: float
    min_loss_lr: float
    steepest_lr: float
    note: Optional[str] = None


def _first_at_or_below(values: Sequence[float], level: float, start: int, stop: int) -> int:
    for i in range(start, stop + 1):
        if values[i] <= level:
            return i
    return stop


def suggest_bounds(lrs: Sequence[float], losses: Sequence[float], smoothing: float = 0.05) -> Suggestion:
    """The suggested ``base_lr`` and ``max_lr`` of a range test's curve.

    The rule, on the :func:`analysis_curve` ``z`` of the losses:

    1. ``bottom`` is the lowest point of ``z``, ``top`` the highest point before it, and the fall
       ``z[top] - z[bottom]`` must be at least :data:`MIN_FALL` (2%) of ``|z[top]|``;
    2. ``max_lr`` is the first rate after ``top`` where ``z`` has made :data:`MAX_FRACTION` (90%) of its
       fall: the loss is about to stop falling, a little before its lowest point and the ragged region past it;
    3. ``base_lr`` is the first rate where ``z`` has made :data:`BASE_FRACTION` (10%) of its fall (the loss
       starts to fall), kept between ``max_lr / 10`` and ``max_lr / 3``: Smith's cycles span 3 to 10
       times, and a wider one spends much of each cycle at rates that barely train.

    Args:
        lrs: the rate of each recorded step, increasing.
        losses: the raw loss of each step (finite), as many as ``lrs``.
        smoothing: the range test's ``smoothing``, in (0, 1].

    Returns:
        The :class:`Suggestion`.

    Raises:
        RangeTestError: fewer than :data:`MIN_POINTS` points, or a loss that does not fall.
        ValueError: ``lrs`` and ``losses`` of different lengths.
    """
    if len(lrs) != len(losses):
        raise ValueError(f"Expected as many losses as rates, but got {len(losses)} losses and {len(lrs)} rates.")
    if len(lrs) < MIN_POINTS:
        raise RangeTestError(
            f"Expected at least {MIN_POINTS} recorded steps for a suggestion, but got {len(lrs)}. Raise num_steps, "
            "or lower max_lr if the test stopped early because the loss diverged."
        )
    z = analysis_curve(losses, smoothing)
    bottom = min(range(len(z)), key=z.__getitem__)
    top = max(range(bottom + 1), key=z.__getitem__)
    fall = z[top] - z[bottom]
    if not fall >= MIN_FALL * max(abs(z[top]), 1e-12):
        raise RangeTestError(
            f"Expected the loss to fall during the range test, but its smoothed value went from {z[top]:.4g} at "
            f"most to {z[bottom]:.4g} at least (less than {MIN_FALL:.0%}) over rates {lrs[0]:.3g} to "
            f"{lrs[-1]:.3g}. Widen the range (raise max_lr), take more steps, or check that the model trains."
        )
    start = _first_at_or_below(z, z[top] - BASE_FRACTION * fall, top, bottom)
    peak = _first_at_or_below(z, z[top] - MAX_FRACTION * fall, top, bottom)
    log_lrs = [math.log(lr) for lr in lrs]

    def slope(i: int) -> float:
        left, right = max(i - 1, top), min(i + 1, bottom)
        return (z[right] - z[left]) / max(log_lrs[right] - log_lrs[left], 1e-300)

    steepest = min(range(top, bottom + 1), key=slope)
    max_lr = float(lrs[peak])
    base_lr = min(max(float(lrs[start]), max_lr / BASE_RATIO_RANGE[1]), max_lr / BASE_RATIO_RANGE[0])
    note = None
    if bottom == len(z) - 1:
        note = ("the loss was still falling at the largest rate tried, so max_lr may be low: raise the test's "
                "max_lr to see where the loss stops falling")
    elif start <= max(3, len(z) // 20):
        note = "the loss was falling from the first step: lower the test's min_lr to see where it starts to fall"
    return Suggestion(base_lr, max_lr, float(lrs[bottom]), float(lrs[steepest]), note)


# ---------------------------------------------------------------------------------------------- the result
@dataclass(frozen=True)
class RangeTestResult:
    """What an LR range test recorded, and the bounds it suggests.

    Attributes:
        lrs: the rate of each recorded optimizer step.
        losses: the training loss of each step (the mean of its accumulated batches, averaged over ranks).
        smoothed_losses: the bias-corrected moving average of ``losses`` (the curve divergence is checked on).
        base_lr: the suggested lower bound, or ``None`` if the curve gave no suggestion.
        max_lr: the suggested upper bound (and 1cycle's peak), or ``None``.
        step_size_up: optimizer steps of a half cycle: ``step_size_epochs`` epochs of the real training, or
            ``None`` if the epoch length is unknown.
        steps_per_epoch: optimizer steps in one epoch of the real training, or ``None``.
        stopped_early: whether the test ended before ``num_steps``.
        reason: why the test ended.
        min_loss_lr: the rate at the lowest zero-phase smoothed loss, or ``None``.
        steepest_lr: the rate of the steepest fall of the smoothed loss (Lightning's ``lr_find`` suggestion).
        suggestion_error: why there is no suggestion, or ``None``.
        note: a remark on the curve, e.g. that the loss was still falling at the end, or ``None``.
        mode: ``"exponential"`` or ``"linear"``.
        smoothing: the moving average's weight of a new loss.
    """

    lrs: list[float]
    losses: list[float]
    smoothed_losses: list[float]
    base_lr: Optional[float]
    max_lr: Optional[float]
    step_size_up: Optional[int]
    steps_per_epoch: Optional[int]
    stopped_early: bool
    reason: str
    min_loss_lr: Optional[float] = None
    steepest_lr: Optional[float] = None
    suggestion_error: Optional[str] = None
    note: Optional[str] = None
    mode: str = "exponential"
    smoothing: float = 0.05

    @property
    def analysis_losses(self) -> list[float]:
        """The curve the suggestion is read from (:func:`analysis_curve` of :attr:`losses`)."""
        return analysis_curve(self.losses, self.smoothing)

    @property
    def has_suggestion(self) -> bool:
        """Whether the curve gave ``base_lr`` and ``max_lr``."""
        return self.base_lr is not None and self.max_lr is not None

    def require_suggestion(self) -> RangeTestResult:
        """Returns this result if it has a suggestion.

        Raises:
            RangeTestError: if it has none, with the reason.
        """
        if not self.has_suggestion:
            raise RangeTestError(f"The LR range test gave no suggestion: {self.suggestion_error} "
                                 f"(the test ended: {self.reason}).", self)
        return self

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON-able values."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RangeTestResult:
        """The result saved by :meth:`to_dict` (unknown keys are ignored)."""
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in names})

    def plot(self, path: Union[str, os.PathLike, None] = None, ax: Any = None, title: Optional[str] = None) -> Any:
        """Draws the loss against the rate (log axis) with the suggested bounds and returns the figure.

        Args:
            path: also save the figure there (e.g. ``"range_test.png"``).
            ax: a matplotlib axes to draw on; a new figure by default.
            title: the title; a summary of the suggestion by default.

        Raises:
            ImportError: if matplotlib is not installed.
        """
        from lightning_clr.tuner.plot import plot_range_test

        return plot_range_test(self, path=path, ax=ax, title=title)


def _analyse(lrs: list[float], losses: list[float], smoothing: float, stopped_early: bool, reason: str,
             steps_per_epoch: Optional[int], step_size_epochs: float, mode: str) -> RangeTestResult:
    base = maximum = min_loss = steepest = error = note = None
    try:
        suggestion = suggest_bounds(lrs, losses, smoothing)
    except RangeTestError as exc:
        error = str(exc)
    else:
        base, maximum = suggestion.base_lr, suggestion.max_lr
        min_loss, steepest, note = suggestion.min_loss_lr, suggestion.steepest_lr, suggestion.note
    step_size_up = None if steps_per_epoch is None else max(1, round(step_size_epochs * steps_per_epoch))
    return RangeTestResult(
        lrs=list(lrs), losses=list(losses), smoothed_losses=smooth_losses(losses, smoothing), base_lr=base,
        max_lr=maximum, step_size_up=step_size_up, steps_per_epoch=steps_per_epoch, stopped_early=stopped_early,
        reason=reason, min_loss_lr=min_loss, steepest_lr=steepest, suggestion_error=error, note=note, mode=mode,
        smoothing=smoothing,
    )


# ---------------------------------------------------------------------------------------------- save and restore
@dataclass
class _Snapshot:
    """Everything the test changes, kept to put back exactly."""

    tensors: list[tuple[torch.Tensor, torch.Tensor]]
    grads: list[tuple[torch.nn.Parameter, Optional[torch.Tensor]]]
    training: list[tuple[torch.nn.Module, bool]]
    optimizers: list[tuple[torch.optim.Optimizer, dict, list[dict], Any, Any]]
    rng: dict[str, Any]
    generators: list[tuple[torch.Generator, torch.Tensor]]
    metrics: list[tuple[Any, dict[str, Any]]]
    scaler: Any
    scaler_state: Optional[dict]
    global_step: int
    module_dict: dict[str, Any] = field(default_factory=dict)


def _unique(tensors: Iterator[torch.Tensor]) -> list[torch.Tensor]:
    seen: set[int] = set()
    out = []
    for t in tensors:
        if id(t) not in seen:
            seen.add(id(t))
            out.append(t)
    return out


def _rng_states() -> dict[str, Any]:
    states: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy comes with torch's usual installs
        pass
    else:
        states["numpy"] = np.random.get_state()
    return states


def _set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    random.setstate(states["python"])
    if "cuda" in states:
        torch.cuda.set_rng_state_all(states["cuda"])
    if "numpy" in states:
        import numpy as np

        np.random.set_state(states["numpy"])


def _loader_generators(iterables: Any) -> list[torch.Generator]:
    """The torch generators of the loaders (their own, their samplers'), which iterating them advances."""
    found: list[torch.Generator] = []
    stack = [iterables]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
            continue
        if isinstance(item, (list, tuple)):
            stack.extend(item)
            continue
        candidates = [getattr(item, "generator", None)]
        for sampler in (getattr(item, "sampler", None), getattr(getattr(item, "batch_sampler", None), "sampler", None)):
            candidates.append(getattr(sampler, "generator", None))
        for gen in candidates:
            if isinstance(gen, torch.Generator) and all(gen is not g for g in found):
                found.append(gen)
    return found


def _metrics(module: torch.nn.Module) -> list[Any]:
    try:
        from torchmetrics import Metric
    except ImportError:  # pragma: no cover - torchmetrics is a dependency
        return []
    return [m for m in module.modules() if isinstance(m, Metric)]


def _metric_state(metric: Any) -> dict[str, Any]:
    names = [*getattr(metric, "_defaults", {}), "_update_count", "_computed"]
    return {name: copy.deepcopy(getattr(metric, name)) for name in names if hasattr(metric, name)}


def _put_back(current: Any, saved: Any) -> Any:
    """``saved`` written into ``current`` where it is a tensor of the same shape (kept identity), else ``saved``."""
    if isinstance(current, torch.Tensor) and isinstance(saved, torch.Tensor) and current.shape == saved.shape:
        current.copy_(saved)
        return current
    return saved


def _take_snapshot(trainer: Any, pl_module: Any, optimizers: list[torch.optim.Optimizer]) -> _Snapshot:
    with torch.no_grad():
        tensors = [(t, t.detach().clone()) for t in _unique(_chain(pl_module))]
        grads = [(p, None if p.grad is None else p.grad.detach().clone()) for p in _unique(pl_module.parameters())]
    saved_optimizers = []
    for optimizer in optimizers:
        state = {param: copy.deepcopy(value) for param, value in optimizer.state.items()}
        groups = [{k: copy.deepcopy(v) for k, v in group.items() if k != "params"} for group in optimizer.param_groups]
        pre = getattr(optimizer, "_optimizer_step_pre_hooks", None)
        post = getattr(optimizer, "_optimizer_step_post_hooks", None)
        saved_optimizers.append((optimizer, state, groups, pre, post))
    scaler = getattr(trainer.precision_plugin, "scaler", None)
    return _Snapshot(
        tensors=tensors,
        grads=grads,
        training=[(m, m.training) for m in pl_module.modules()],
        optimizers=saved_optimizers,
        rng=_rng_states(),
        generators=[(g, g.get_state()) for g in _loader_generators(trainer.train_dataloader)],
        metrics=[(m, _metric_state(m)) for m in _metrics(pl_module)],
        scaler=scaler,
        scaler_state=None if scaler is None else copy.deepcopy(scaler.state_dict()),
        global_step=int(trainer.global_step),
        module_dict={name: pl_module.__dict__[name] for name in ("log", "log_dict") if name in pl_module.__dict__},
    )


def _chain(module: torch.nn.Module) -> Iterator[torch.Tensor]:
    yield from module.parameters()
    yield from module.buffers()


def _restore(snapshot: _Snapshot, trainer: Any, pl_module: Any) -> None:
    with torch.no_grad():
        for tensor, saved in snapshot.tensors:
            tensor.copy_(saved)
        for param, grad in snapshot.grads:
            if grad is None:
                param.grad = None
            elif param.grad is not None and param.grad.shape == grad.shape:
                param.grad.copy_(grad)
            else:
                param.grad = grad
    for module, training in snapshot.training:
        module.training = training  # per module: train() would recurse into the children
    for optimizer, state, groups, pre, post in snapshot.optimizers:
        # In place: Lightning's LightningOptimizer and LR schedulers hold these very dicts.
        optimizer.state.clear()
        optimizer.state.update(state)
        for group, saved in zip(optimizer.param_groups, groups):
            for key in [k for k in group if k != "params" and k not in saved]:
                del group[key]
            for key, value in saved.items():
                group[key] = _put_back(group.get(key), value)
        if pre is not None:
            optimizer._optimizer_step_pre_hooks = pre
        if post is not None:
            optimizer._optimizer_step_post_hooks = post
    for metric, state in snapshot.metrics:
        for name, value in state.items():
            setattr(metric, name, value)
    if snapshot.scaler is not None and snapshot.scaler_state is not None:
        snapshot.scaler.load_state_dict(snapshot.scaler_state)
    _set_rng_states(snapshot.rng)
    for generator, state in snapshot.generators:
        generator.set_state(state)
    for name in ("log", "log_dict"):
        pl_module.__dict__.pop(name, None)
    pl_module.__dict__.update(snapshot.module_dict)
    if trainer.global_step != snapshot.global_step:  # pragma: no cover - the sweep never steps Lightning's loop
        raise RuntimeError(f"LRRangeTest changed global_step from {snapshot.global_step} to {trainer.global_step}.")


def _no_log(*args: Any, **kwargs: Any) -> None:
    """Stands in for ``LightningModule.log`` during the test: its steps are not the real training's."""


# ---------------------------------------------------------------------------------------------- the data
class _FreshIterable:
    """Iterates a loader with a new iterator that leaves the Trainer's own one (and persistent workers) alone."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def __iter__(self) -> Iterator[Any]:
        loader = self.loader
        if isinstance(loader, torch.utils.data.DataLoader) and loader.num_workers > 0 and loader.persistent_workers:
            return loader._get_iterator()  # DataLoader.__iter__ would reset the Trainer's cached iterator
        return iter(loader)


def _combined_loader(iterables: Any) -> Any:
    """The loaders combined as the fit loop combines them (``max_size_cycle``), each with a fresh iterator."""
    try:
        from pytorch_lightning.utilities.combined_loader import CombinedLoader
    except ImportError:  # pragma: no cover - only the unified package installed
        from lightning.pytorch.utilities.combined_loader import CombinedLoader
    return CombinedLoader(_wrap_tree(iterables), mode="max_size_cycle")


def _wrap_tree(item: Any) -> Any:
    if isinstance(item, dict):
        return {k: _wrap_tree(v) for k, v in item.items()}
    if isinstance(item, (list, tuple)):
        return type(item)(_wrap_tree(v) for v in item)
    return _FreshIterable(item)


def _batches(iterables: Any, max_restarts: int) -> Iterator[tuple[Any, int]]:
    """``(batch, batch_idx)`` from the training loaders, starting over when they run out."""
    for _ in range(max_restarts):
        loader = _combined_loader(iterables)
        count = 0
        for batch, batch_idx, _ in loader:
            count += 1
            yield batch, batch_idx
        if count == 0:
            return


# ---------------------------------------------------------------------------------------------- the callback
class LRRangeTest(CallbackBase):
    r"""Runs an LR range test at train start and suggests the bounds of a cyclical schedule.

    Over ``num_steps`` optimizer steps on the training data, the rate of every param group rises from
    ``min_lr`` to ``max_lr`` (exponentially: :math:`\text{min\_lr}\,(\text{max\_lr}/\text{min\_lr})^{k/(n-1)}`,
    or linearly), and the training loss of each step is recorded. The test stops early when the smoothed loss
    exceeds ``divergence_threshold`` times its lowest value, or when the loss is NaN or infinite. Then the
    weights, the optimizer's state, ``global_step``, the random states (torch, CUDA, numpy, Python and the
    loaders' generators) and the train loaders are put back, so the real training that follows is the same,
    step for step, as without the test.

    The result, :attr:`result`, holds the curve and the suggestion (see :mod:`lightning_clr.tuner.range_test` for
    the rule). Schedule callbacks given ``"auto"`` bounds take theirs from it::

        trainer = Trainer(max_epochs=10, callbacks=[LRRangeTest(), CyclicLR(base_lr="auto", max_lr="auto",
                                                                            step_size_up="auto")])

    The test runs its own loop: the steps call ``training_step`` (with the strategy's wrapper, so DDP
    averages gradients, and the precision's autocast), honour ``accumulate_grad_batches`` and gradient
    clipping, and step the optimizer, but fire no other callback's batch hooks, write nothing to the loggers
    (``self.log`` does nothing during the test) and do not advance ``global_step``. Under DDP the loss is
    averaged over ranks before it is recorded, and every rank gets rank zero's result.

    Args:
        min_lr: the rate of the first step.
        max_lr: the rate of the last step.
        num_steps: optimizer steps of the sweep (at least :data:`MIN_POINTS`); the loaders start over when
            they run out (``limit_train_batches`` does not apply to the sweep).
        mode: ``"exponential"`` (even steps on a log axis; the usual choice over several decades) or
            ``"linear"``.
        smoothing: the weight of a new loss in the moving average, in (0, 1]; 1 is no smoothing.
        divergence_threshold: stop when the smoothed loss exceeds this many times the lowest smoothed loss
            (for a negative best loss: ``best + (threshold - 1) * |best|``); ``None`` never stops early
            except on NaN or infinite losses.
        step_size_epochs: the suggested ``step_size_up`` in epochs of the real training (Smith: 2 to 10).
        plot: on rank zero, save the result (``lr_range_test.json``) and its figure (``lr_range_test.png``)
            next to the logs, and add the figure to an attached TensorBoardLogger. ``None``: the figure only
            when matplotlib is installed; ``True``: matplotlib is required (ImportError otherwise);
            ``False``: write nothing.
        save_dir: the folder for those files; ``None`` is ``trainer.log_dir`` (``default_root_dir``
            without a logger).
        verbose: print the suggestion (on rank zero).

    Raises:
        ValueError: an argument out of range (``"Expected ..., but got ..."``).
    """

    def __init__(
        self,
        min_lr: float = 1e-7,
        max_lr: float = 10.0,
        num_steps: int = 100,
        mode: Literal["exponential", "linear"] = "exponential",
        smoothing: float = 0.05,
        divergence_threshold: Optional[float] = 4.0,
        step_size_epochs: float = 4.0,
        plot: Optional[bool] = None,
        save_dir: Optional[str] = None,
        verbose: bool = True,
    ) -> None:
        super().__init__()
        for name, value in (("min_lr", min_lr), ("max_lr", max_lr)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value < math.inf):
                raise ValueError(f"Expected {name} to be a positive finite float, but got {name}={value!r}.")
        if not max_lr > min_lr:
            raise ValueError(f"Expected max_lr > min_lr, but got min_lr={min_lr!r}, max_lr={max_lr!r}.")
        if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < MIN_POINTS:
            raise ValueError(f"Expected num_steps to be an int >= {MIN_POINTS}, but got num_steps={num_steps!r}.")
        if mode not in ("exponential", "linear"):
            raise ValueError(f"Expected mode to be 'exponential' or 'linear', but got mode={mode!r}.")
        if isinstance(smoothing, bool) or not isinstance(smoothing, (int, float)) or not 0 < smoothing <= 1:
            raise ValueError(f"Expected smoothing in (0, 1], but got smoothing={smoothing!r}.")
        if divergence_threshold is not None and (
            isinstance(divergence_threshold, bool) or not isinstance(divergence_threshold, (int, float))
            or not 1 < divergence_threshold < math.inf
        ):
            raise ValueError(
                f"Expected divergence_threshold to be a float > 1 or None, but got {divergence_threshold!r}."
            )
        if (isinstance(step_size_epochs, bool) or not isinstance(step_size_epochs, (int, float))
                or not 0 < step_size_epochs < math.inf):
            raise ValueError(f"Expected step_size_epochs to be a positive float, but got {step_size_epochs!r}.")
        if plot is not None and not isinstance(plot, bool):
            raise ValueError(f"Expected plot to be True, False or None, but got plot={plot!r}.")
        self.min_lr = float(min_lr)
        self.max_lr = float(max_lr)
        self.num_steps = num_steps
        self.mode = mode
        self.smoothing = float(smoothing)
        self.divergence_threshold = None if divergence_threshold is None else float(divergence_threshold)
        self.step_size_epochs = float(step_size_epochs)
        self.plot = plot
        self.save_dir = save_dir
        self.verbose = bool(verbose)
        self.result: Optional[RangeTestResult] = None
        self._ran_this_fit = False
        self._restored: Optional[RangeTestResult] = None
        self._stop_after_test = False  # set by lr_range_test: no training after the test

    # ------------------------------------------------------------------ the sweep
    def lr_at(self, step: int) -> float:
        """The rate of optimizer step ``step`` of the sweep (``0 <= step < num_steps``)."""
        fraction = step / (self.num_steps - 1)
        if self.mode == "exponential":
            return self.min_lr * (self.max_lr / self.min_lr) ** fraction
        return self.min_lr + (self.max_lr - self.min_lr) * fraction

    def _diverged(self, smoothed: float, best: float) -> bool:
        if self.divergence_threshold is None:
            return False
        return smoothed > best + (self.divergence_threshold - 1.0) * abs(best)

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
            rank_zero_warn(f"LRRangeTest gave no suggestion: {result.suggestion_error}")

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
        return self.result

    @override
    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self._ran_this_fit = False

    # ------------------------------------------------------------------ the loop
    def _run(self, trainer: Any, pl_module: Any) -> RangeTestResult:
        optimizers = [unwrap_optimizer(o) for o in trainer.optimizers]
        if not optimizers:
            raise ValueError("LRRangeTest found no optimizer: configure_optimizers returned none.")
        snapshot = _take_snapshot(trainer, pl_module, optimizers)
        try:
            lrs, losses, stopped_early, reason = self._sweep(trainer, pl_module, optimizers)
        finally:
            _restore(snapshot, trainer, pl_module)
        result = _analyse(lrs, losses, self.smoothing, stopped_early, reason, steps_per_epoch(trainer),
                          self.step_size_epochs, self.mode)
        # Every rank must use the same bounds; rank zero's are the reference.
        return trainer.strategy.broadcast(result, src=0)

    def _sweep(self, trainer: Any, pl_module: Any,
               optimizers: list[torch.optim.Optimizer]) -> tuple[list[float], list[float], bool, str]:
        accumulate = max(1, int(getattr(trainer, "accumulate_grad_batches", 1)))
        strategy = trainer.strategy
        scaler = getattr(trainer.precision_plugin, "scaler", None)
        pl_module.__dict__["log"] = _no_log
        pl_module.__dict__["log_dict"] = _no_log
        for optimizer in optimizers:
            # The sweep's steps are not the training's: step hooks (e.g. count_skipped_steps=False) see none.
            if hasattr(optimizer, "_optimizer_step_pre_hooks"):
                optimizer._optimizer_step_pre_hooks = type(optimizer._optimizer_step_pre_hooks)()
            if hasattr(optimizer, "_optimizer_step_post_hooks"):
                optimizer._optimizer_step_post_hooks = type(optimizer._optimizer_step_post_hooks)()
            optimizer.zero_grad(set_to_none=True)
        pl_module.train()

        lrs: list[float] = []
        losses: list[float] = []
        avg, best = 0.0, math.inf
        beta = 1.0 - self.smoothing
        batches = _batches(trainer.train_dataloader, max_restarts=self.num_steps * accumulate + 1)
        step = 0
        window: list[torch.Tensor] = []
        reason = f"completed num_steps={self.num_steps}"
        stopped_early = False
        with torch.enable_grad():
            while step < self.num_steps:
                lr = self.lr_at(step)
                for optimizer in optimizers:
                    _set_lr(optimizer, lr)
                window = []
                for batch, batch_idx in batches:
                    batch = strategy.batch_to_device(batch, dataloader_idx=0)
                    loss = _loss_of(strategy.training_step(batch, batch_idx))
                    if loss is None:
                        continue
                    window.append(loss.detach())
                    scaled = loss / accumulate if accumulate > 1 else loss
                    if scaler is not None:
                        scaled = scaler.scale(scaled)
                    scaled.backward()
                    if len(window) == accumulate:
                        break
                if not window:
                    reason = f"the training data ran out after {step} optimizer steps"
                    stopped_early = True
                    break
                mean = torch.stack([w.float() for w in window]).mean()
                value = float(strategy.reduce(mean, reduce_op="mean"))
                if not math.isfinite(value):
                    reason = f"the loss was {value} at lr={lr:.4g} (step {step})"
                    stopped_early = True
                    break
                for optimizer in optimizers:
                    if scaler is not None:
                        scaler.unscale_(optimizer)
                    pl_module.configure_gradient_clipping(
                        optimizer, gradient_clip_val=trainer.gradient_clip_val,
                        gradient_clip_algorithm=trainer.gradient_clip_algorithm)
                    if scaler is not None:
                        scaler.step(optimizer)
                    else:
                        optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.update()
                lrs.append(lr)
                losses.append(value)
                avg = beta * avg + self.smoothing * value
                smoothed = avg / (1.0 - beta ** len(losses))
                best = min(best, smoothed)
                step += 1
                if self._diverged(smoothed, best):
                    reason = (f"the loss diverged at lr={lr:.4g} (step {step - 1}): smoothed loss {smoothed:.4g} > "
                              f"{self.divergence_threshold:g} x best {best:.4g}")
                    stopped_early = step < self.num_steps
                    break
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        return lrs, losses, stopped_early, reason

    # ------------------------------------------------------------------ reporting
    def _report(self, trainer: Any, result: RangeTestResult) -> None:
        directory = self.save_dir
        if directory is None:
            directory = trainer.log_dir or trainer.default_root_dir  # log_dir is collective under DDP: every rank
        if self.verbose:
            if result.has_suggestion:
                rank_zero_info(
                    f"LRRangeTest: base_lr={result.base_lr:.3g}, max_lr={result.max_lr:.3g}, "
                    f"step_size_up={result.step_size_up} ({len(result.lrs)} steps, {result.reason})."
                    + (f" Note: {result.note}." if result.note else "")
                )
            else:
                rank_zero_info(f"LRRangeTest: no suggestion ({result.suggestion_error}).")
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


def _is_tensorboard(logger: Any) -> bool:
    return any(cls.__name__ == "TensorBoardLogger" for cls in type(logger).__mro__)


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(lr)
        else:
            group["lr"] = lr


def _loss_of(output: Any) -> Optional[torch.Tensor]:
    if output is None:
        return None
    loss = output.get("loss") if isinstance(output, dict) else output
    if not isinstance(loss, torch.Tensor):
        raise ValueError(
            "Expected training_step to return a loss tensor, a dict with a 'loss' tensor or None, but got "
            f"{type(output).__name__}."
        )
    if not loss.requires_grad:
        raise ValueError("Expected training_step's loss to require grad, but it does not (was it detached?).")
    return loss



def _check_supported(trainer: Any, pl_module: Any) -> None:
    if not is_automatic_optimization(pl_module):
        raise ValueError(
            "LRRangeTest needs automatic optimization, but the LightningModule sets automatic_optimization=False. "
            "Under manual optimization, sweep the rate in your own training_step or give the bounds as numbers."
        )
    names = {cls.__name__ for cls in type(trainer.strategy).__mro__}
    if names & set(_UNSUPPORTED_STRATEGIES) or not names & set(_SUPPORTED_STRATEGIES):
        raise ValueError(
            "Expected a single-device or DDP strategy for LRRangeTest, but got "
            f"{type(trainer.strategy).__name__}. Run the range test on one device (lr_range_test) and pass "
            "the bounds as numbers."
        )


# ---------------------------------------------------------------------------------------------- alone
def lr_range_test(
    model: Any,
    train_dataloaders: Any = None,
    datamodule: Any = None,
    trainer: Any = None,
    **range_test_kwargs: Any,
) -> RangeTestResult:
    """Runs an LR range test alone, with no training after it, and returns its result.

    The model, its optimizer and the random states are as before when it returns.

    Example::

        result = lr_range_test(model, datamodule=dm, num_steps=200)
        print(result.base_lr, result.max_lr)
        result.plot("range_test.png")

    Args:
        model: the LightningModule.
        train_dataloaders: the training data (as for ``Trainer.fit``), or ``None`` for the model's or the
            datamodule's.
        datamodule: a LightningDataModule, or ``None``.
        trainer: the Trainer to run on (its devices, precision, accumulation); by default a quiet one on
            the automatic accelerator with one device, no logger and no checkpoints.
        **range_test_kwargs: arguments of :class:`LRRangeTest` (``plot`` is ``False`` unless given).

    Returns:
        The result, with the curve and (if the curve allows one) the suggestion.

    Raises:
        RangeTestError: if the curve gave no suggestion (``error.result`` holds the curve).
        ValueError: bad arguments, or ``trainer`` already has an :class:`LRRangeTest` and arguments were given.
    """
    existing = [] if trainer is None else [cb for cb in trainer.callbacks if isinstance(cb, LRRangeTest)]
    if existing and range_test_kwargs:
        raise ValueError(
            "Expected either a trainer with its own LRRangeTest or range test arguments, but got both "
            f"(arguments {sorted(range_test_kwargs)})."
        )
    if existing:
        callback = existing[0]
    else:
        range_test_kwargs.setdefault("plot", False)
        callback = LRRangeTest(**range_test_kwargs)
    if trainer is None:
        trainer = _quiet_trainer(model)
    added = not existing
    if added:
        trainer.callbacks.append(callback)
    callback._stop_after_test = True
    try:
        trainer.fit(model, train_dataloaders=train_dataloaders, datamodule=datamodule)
    finally:
        callback._stop_after_test = False
        if added:
            trainer.callbacks.remove(callback)
    if callback.result is None:
        raise RuntimeError(
            "The range test ran in other processes (e.g. strategy='ddp_spawn') and its result is not here; "
            f"read {RESULT_NAME} from the log directory, or use strategy='ddp'."
        )
    return callback.result.require_suggestion()


def _quiet_trainer(model: Any) -> Any:
    if any(cls.__module__.startswith("lightning.pytorch") for cls in type(model).__mro__):
        from lightning.pytorch import Trainer
    else:
        from pytorch_lightning import Trainer
    return Trainer(
        max_epochs=1, devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
    )
