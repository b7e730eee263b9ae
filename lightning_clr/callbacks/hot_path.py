"""The work a schedule callback does on every training batch, in one small slotted object: its hot path.

Lightning calls every hook of every callback on every batch, so what a schedule callback costs per step is what
its ``on_train_batch_start`` and ``on_train_batch_end`` do beyond an empty ``Callback``'s. Each makes one call
into :class:`HotPath`, whose slots hold everything that work reads: the step counter, the step written last, the
writers, the rate scale and Lightning's logging interval. Inside a fit, Lightning's own work between two batches
evicts this code and its data from the CPU caches, so what costs is each function called and each object read, not
the arithmetic: measured there, hooks that called the writer, its safety check and a cadence object cost 0.24-0.58
µs a step more than this object, which writes the steady state itself (``docs/benchmarks/overhead.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lightning_clr.callbacks.writer import _BETAS, _MOMENTUM, TABLE_STEPS, GroupWriter

__all__ = ["NEVER", "HotPath"]

#: ``first_end`` when no step is past a schedule's end. An int: the hot path compares it with the step, and an
#: int with a float (``math.inf``) is a slow comparison in CPython (a quarter of a microsecond, measured in a fit).
NEVER = 2**62


class HotPath:
    """The per-batch work of one schedule callback: the write ahead, the safety net and the logging cadence.

    ==========================  =======================================================================================
    hook                        work
    ==========================  =======================================================================================
    ``on_train_batch_end``      Lightning's clock only: once the batch has stepped (``trainer.global_step`` moved
                                since the last write), the new step's values go in, those of the next update: in
                                the steady state of a lone writer the floats are replaced here, from its table;
                                else :meth:`GroupWriter.write` writes. A batch that only accumulated gradients
                                writes nothing.
    ``on_train_batch_start``    Lightning's clock only: a rate that anything replaced since the last write is
                                written again (the safety net; ``global_step`` cannot move between a batch's end and
                                the next batch's start). Any clock: whether this batch logs, by Lightning's rule.
    ==========================  =======================================================================================

    Under an own clock (``count_skipped_steps=False``, or manual optimization) torch's step hooks write, so
    ``steps`` is ``None`` and only the logging cadence is left here.

    Lightning's logging rule (``_LoggerConnector.should_update_logs``, checked at batch start): log when
    ``(batches_that_stepped + 1) % log_every_n_steps == 0``, or when the Trainer should stop; never with
    ``log_every_n_steps=0`` or no logger. :meth:`start_fit` looks up, once per fit, the loop that holds that count;
    where the private attribute is missing (another Lightning version), the logger connector is asked instead.

    Attributes:
        steps: an object whose ``completed`` is ``trainer.global_step`` (``global_step_counter``), or ``None``
            under an own clock.
        seen: the step whose values were written last under Lightning's clock (-1: none yet).
        writers: the driven optimizers' writers.
        scale: the rate scale the writers multiply the learning rates by.
        first_end: the first step past the end of a driven schedule (:data:`NEVER` if none, or once warned).
    """

    __slots__ = ("_active", "_every", "_loop", "first_end", "lead", "scale", "seen", "steps", "writers")

    def __init__(self) -> None:
        self.steps: Any = None
        self.seen = -1
        self.writers: Sequence[GroupWriter] = ()
        self.lead: GroupWriter | None = None  # the one writer, when one optimizer is driven (the usual case)
        self.scale = 1.0
        self.first_end = NEVER
        self._loop: Any = None  # the loop holding Lightning's count of batches that stepped, when the rule applies
        self._every = 1
        self._active = False  # a logger is attached

    def start_fit(self, trainer: Any, steps: Any) -> None:
        """Reads the Trainer's step counter (``steps``, or ``None`` under an own clock), loggers and logging
        interval (at train start)."""
        self.steps = steps
        self._active = bool(getattr(trainer, "loggers", None))
        every = getattr(trainer, "log_every_n_steps", None)
        loop = getattr(getattr(trainer, "fit_loop", None), "epoch_loop", None)
        ok = isinstance(every, int) and not isinstance(every, bool) and isinstance(
            getattr(loop, "_batches_that_stepped", None), int)
        self._loop = loop if ok and self._active and every else None
        self._every = every if ok else 1  # type: ignore[assignment]

    def set_writers(self, writers: Sequence[GroupWriter]) -> None:
        """The driven optimizers' writers (at fit or train start, once they are built)."""
        self.writers = tuple(writers)
        self.lead = self.writers[0] if len(self.writers) == 1 else None

    def end(self) -> bool:
        """``on_train_batch_end``: writes the next step's values once the batch has stepped (Lightning's clock).

        In the steady state of the lead writer (every group holds the floats it wrote last, the step is in its
        table, the scale is the table's) the new floats replace them here, in one tight loop; anything else goes to
        :meth:`GroupWriter.write`, which writes any entry and records the steady state again.

        Returns:
            Whether the step written is at or past ``first_end`` (the callback then watches for a step past a
            schedule's end).
        """
        steps = self.steps
        if steps is None:
            return False
        step = steps.completed
        if step == self.seen:  # a batch that accumulated gradients only
            return False
        self.seen = step
        w = self.lead
        # The steady state of a lone writer, inline: a call to the writer here costs about 0.2 µs a step in a fit.
        if w is not None and w._written_one is not None and 0 <= (i := step - w._table_start) < TABLE_STEPS and (
                self.scale == w._table_scale and w.optimizer.param_groups is w._linked):
            last, lr = w._written_one, w._table_lr[i]
            mode = w._m_mode
            momentum = w._table_m[i] if mode else None
            last_m = w._written_m
            for group in w._params:
                if group["lr"] is not last:
                    break
                if mode == _MOMENTUM:
                    if group["momentum"] is not last_m:
                        break
                    group["momentum"] = momentum
                elif mode == _BETAS:  # the first one
                    betas = group["betas"]
                    if betas[0] is not last_m:
                        break
                    group["betas"] = (momentum, *betas[1:])
                group["lr"] = lr
            else:
                w._written_one = lr
                w._written_m = momentum
                w.written_step = step
                return step >= self.first_end
        for writer in self.writers:  # several writers, not steady, or a loop cut short: the general path
            writer.write(step, self.scale)
        return step >= self.first_end

    def start(self, trainer: Any) -> bool:
        """``on_train_batch_start``: the safety net (Lightning's clock), then whether this batch logs."""
        if self.steps is not None:
            seen = self.seen
            w = self.lead
            if w is None:
                for writer in self.writers:
                    if not writer.is_current(seen):
                        writer.write(seen, self.scale)
            else:  # GroupWriter.is_current's steady case, inline: a call here costs 0.25 µs a step in a fit
                last = w._written_one
                if last is not None and w.written_step == seen and w.optimizer.param_groups is w._linked:
                    for group in w._params:
                        if group["lr"] is not last:
                            w.write(seen, self.scale)
                            break
                elif not w.is_current(seen):
                    w.write(seen, self.scale)
        loop = self._loop
        if loop is not None:  # the usual case: one attribute read and a modulo
            return (loop._batches_that_stepped + 1) % self._every == 0 or bool(trainer.should_stop)
        return self._active and self._every != 0 and _connector_says(trainer)


def _connector_says(trainer: Any) -> bool:
    connector = getattr(trainer, "_logger_connector", None)
    if connector is not None and hasattr(connector, "should_update_logs"):
        return bool(connector.should_update_logs)
    return trainer.global_step % max(1, trainer.log_every_n_steps) == 0  # pragma: no cover
