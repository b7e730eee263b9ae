"""What the schedule callbacks log, under which names, and when.

Names (unchanged since the first release): ``<logging_name>-<Optimizer>`` for an optimizer with one param
group, ``<logging_name>-<Optimizer>/<group name or pgN>`` per group otherwise, a ``-N`` suffix for the N-th
further optimizer of one class, and ``-momentum`` after the name for the momentum. The values are the
schedules' own floats (what was written), never read back from the optimizer (a device sync for a tensor
rate).

When a batch logs (Lightning's rule, checked at every batch start) is the hot path's to say:
:meth:`lightning_clr.callbacks.hot_path.HotPath.start`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["RateLog", "logging_step", "metric_names"]


def metric_names(logging_name: str, optimizers: Sequence[tuple[str, list[dict], bool]],
                 log_momentum: bool) -> list[tuple[list[str], list[str] | None]]:
    """The logged names of each driven optimizer: one per param group, and one per group for the momentum
    (``stem-momentum`` with one group, ``stem/pgN-momentum`` with several), or ``None`` if it is not logged.

    Args:
        logging_name: the callback's prefix, e.g. ``"lr-clr"``.
        optimizers: per driven optimizer, ``(class name, its param-group dicts, whether a momentum cycles)``.
        log_momentum: whether the momentum is logged.
    """
    counts: dict[str, int] = {}
    result = []
    for base, params, cycles_momentum in optimizers:
        seen = counts.get(base, 0)
        counts[base] = seen + 1
        stem = f"{logging_name}-{base}" + (f"-{seen}" if seen else "")
        names = [stem] if len(params) == 1 else [f"{stem}/{p.get('name', f'pg{i + 1}')}" for i, p in enumerate(params)]
        moments = None
        if log_momentum and cycles_momentum:
            moments = [f"{stem}-momentum"] if len(params) == 1 else [f"{name}-momentum" for name in names]
        result.append((names, moments))
    return result


class RateLog:
    """The metrics of a logging batch: each driven optimizer's rates and momenta at its clock's step, under
    :func:`metric_names`' names. The values are the writer's (:meth:`GroupWriter.values`: the floats written, read
    from its table); the names are worked out again only when an optimizer's param groups are replaced.

    Args:
        logging_name: the callback's prefix.
        log_momentum: whether the momentum is logged.
    """

    __slots__ = ("_linked", "_names", "log_momentum", "logging_name")

    def __init__(self, logging_name: str, log_momentum: bool) -> None:
        self.logging_name = logging_name
        self.log_momentum = log_momentum
        self._linked: list[Any] = []  # the param_groups lists the names were made for
        self._names: list[tuple[list[str], list[str] | None]] = []

    def metrics(self, driven: Sequence[Any], trainer: Any, scale: float) -> dict[str, float]:
        """The metrics now.

        Args:
            driven: the callback's driven optimizers (each with ``optimizer``, ``clock`` and ``writer``).
            trainer: the Trainer (for the clock).
            scale: the callback's rate scale.
        """
        linked = self._linked
        if len(linked) != len(driven) or any(
                d.optimizer.param_groups is not g for d, g in zip(driven, linked, strict=True)):
            self._rename(driven)
            self._linked = [item.optimizer.param_groups for item in driven]
        metrics: dict[str, float] = {}
        for item, (names, moment_names) in zip(driven, self._names, strict=False):
            writer = item.writer
            if writer is None:
                continue
            lrs, momenta = writer.values(item.clock.now(trainer), scale)
            for name, lr in zip(names, lrs, strict=False):
                metrics[name] = lr
            if moment_names is not None:
                for name, momentum in zip(moment_names, momenta, strict=False):
                    if momentum is not None:
                        metrics[name] = momentum
        return metrics

    def _rename(self, driven: Sequence[Any]) -> None:
        described = []
        for item in driven:
            writer = item.writer
            params = [] if writer is None else writer.params
            momentum = writer is not None and any(m is not None for m in writer.momentum)
            described.append((type(item.optimizer).__name__, params, momentum))
        self._names = metric_names(self.logging_name, described, self.log_momentum)


def logging_step(trainer: Any) -> int:
    """The step Lightning logs under: its count of batches that stepped (``global_step`` as a fallback)."""
    loop = getattr(getattr(trainer, "fit_loop", None), "epoch_loop", None)
    return int(getattr(loop, "_batches_that_stepped", trainer.global_step))
