"""``SnapshotCheckpoint``: a checkpoint at the end of every cycle, where the rate is at its minimum.

Snapshot Ensembles (Huang et al., ICLR 2017) train one network with a cyclic cosine schedule, save it at the
end of every cycle (each cycle converges to a different local minimum) and average the saved models'
predictions: with the same training budget, DenseNet-100's CIFAR-10 error fell from 3.74% to 3.44%, and on
CIFAR-100 from 19.25% to 17.41%. This callback takes the snapshots; :class:`~lightning_clr.SnapshotEnsemble`
averages them.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable
from typing import Any, Optional
from weakref import proxy

from typing_extensions import override

from lightning_clr._checks import check_int
from lightning_clr._compat import CheckpointBase
from lightning_clr._warnings import warn
from lightning_clr.callbacks.base import ScheduleCallback

__all__ = ["SnapshotCheckpoint"]

_STATE_VERSION = 1
_DEFAULT_FILENAME = "snapshot-cycle={cycle:02d}-step={step:06d}"


class SnapshotCheckpoint(CheckpointBase):
    """Saves a full Lightning checkpoint after the last optimizer step of every cycle of the schedule.

    It is a Lightning ``Checkpoint``: the Trainer runs it after its other callbacks (so the step it sees is
    final), every logger's ``after_save_checkpoint`` is called after each snapshot (a ``WandbLogger`` or
    ``MLFlowLogger`` with ``log_model="all"`` uploads them; the newest is ``last_model_path``), and, as for
    any checkpoint callback, the Trainer then adds no default ``ModelCheckpoint`` (add one yourself to keep
    it). So there is no need for ``Trainer(enable_checkpointing=False)`` to avoid the default one: leave the
    flag at its default, ``True``. With ``False``, Lightning refuses this callback when the Trainer is built,
    with a message that says ``ModelCheckpoint`` but means any checkpoint callback (Lightning 2.6.6):
    ``MisconfigurationException: Trainer was configured with `enable_checkpointing=False` but found
    `ModelCheckpoint` in callbacks list.``

    The cycles are those of the lightning_clr schedule callback on the same Trainer (its
    ``cycle_ends``): ``CyclicLR`` ends a cycle every ``step_size_up + step_size_down`` steps,
    ``CosineRestartsLR`` at every restart (cycles growing by ``t_mul``), ``OneCycleLR`` once, at the end of
    its run. The check is made after every optimizer step, so cycles need not align with epochs. A
    checkpoint saved after ``n`` steps stores ``global_step == n`` and, like any Lightning checkpoint, can
    resume training or be loaded with ``YourModule.load_from_checkpoint``.

    Example::

        from lightning_clr import CosineRestartsLR, SnapshotCheckpoint, SnapshotEnsemble

        snapshots = SnapshotCheckpoint(dirpath="snapshots")
        trainer = Trainer(max_epochs=30, callbacks=[CosineRestartsLR(max_lr=0.1, first_cycle="5 epochs"), snapshots])
        trainer.fit(model)
        ensemble = SnapshotEnsemble.from_checkpoints(MyModel, snapshots.snapshot_paths)

    Under DDP every rank runs the same check (the step count is the same on every rank) and calls
    ``trainer.save_checkpoint``, which writes on rank 0 only (and lets strategies that shard the model
    gather it); ``keep_last`` deletes through the strategy, also on rank 0 only. On resume, the steps already
    saved come from the checkpoint, so no snapshot is taken twice, and a cycle end between the saved one and
    the resumed step is not taken late.

    Args:
        dirpath: the folder of the snapshots. `None`: `<logger's log_dir>/snapshots` with a logger
            (like `ModelCheckpoint`'s `checkpoints`), else `<default_root_dir>/snapshots`.
        filename: the file name without `.ckpt`, a `str.format` pattern with the fields `cycle`
            (1-based) and `step` (optimizer steps taken).
        keep_last: keep only the newest `keep_last` snapshots, deleting older ones; `None` keeps all.
        save_weights_only: save only the weights (and hyper-parameters), not the optimizer and loops; enough
            for an ensemble, not for resuming.
        optimizer: the index of the optimizer whose schedule defines the cycles.

    Raises:
        ValueError: `keep_last` not a positive int, `optimizer` not a non-negative int, or a
            `filename` without valid `{cycle}` / `{step}` fields; at fit start, if no lightning_clr
            schedule callback drives that optimizer.
    """

    def __init__(
        self,
        dirpath: Optional[str] = None,  # noqa: UP045 - LightningCLI shows this form
        filename: str = _DEFAULT_FILENAME,
        keep_last: Optional[int] = None,  # noqa: UP045
        save_weights_only: bool = False,
        optimizer: int = 0,
    ) -> None:
        super().__init__()
        check_int(keep_last, "keep_last", 1, allow_none=True)
        check_int(optimizer, "optimizer", 0, noun="index")
        try:
            first, second = filename.format(cycle=1, step=6), filename.format(cycle=2, step=18)
        except (KeyError, IndexError, ValueError, AttributeError) as error:
            raise ValueError(
                f"Expected filename to be a format string with the fields {{cycle}} and {{step}}, e.g. "
                f"{_DEFAULT_FILENAME!r}, but got {filename!r} ({error!r})."
            ) from error
        if first == second or os.sep in first:
            raise ValueError(
                f"Expected filename to name a file within dirpath and to contain {{cycle}} or {{step}}, so that "
                f"each snapshot gets its own file, but got {filename!r}."
            )
        self.dirpath = None if dirpath is None else os.fspath(dirpath)
        self.filename = filename
        self.keep_last = keep_last
        self.save_weights_only = bool(save_weights_only)
        self.optimizer = optimizer
        self._schedule_callback: ScheduleCallback | None = None
        self._saved_steps: list[int] = []  # every snapshot taken, deleted ones included
        self._kept: list[tuple[int, int, str]] = []  # (cycle, step, path) of the snapshots still on disk
        self._last_seen: int | None = None
        self._ends: list[int] = []
        self._ends_horizon = 0
        self._ends_of: Callable[[int], float] | None = None
        self._resolved_dirpath: str | None = None
        #: The newest snapshot, as for ``last_model_path``: snapshots have no score, and this is what
        #: ``trainer.test(ckpt_path="best")`` loads (Lightning's name; ``""`` before the first snapshot).
        self.best_model_path = ""

    # ------------------------------------------------------------------ results
    @property
    def snapshot_paths(self) -> list[str]:
        """The paths of the snapshots kept on disk, oldest first (on rank 0; under ``ddp_spawn`` list the
        folder instead, as the launching process's callback is not the one that trained)."""
        return [path for _, _, path in self._kept]

    @property
    def saved_steps(self) -> list[int]:
        """The step counts at which snapshots were taken, deleted ones included."""
        return list(self._saved_steps)

    # What loggers read off a checkpoint callback in ``after_save_checkpoint`` (ModelCheckpoint's names).
    @property
    def last_model_path(self) -> str:
        """The newest snapshot kept, or ``""`` before the first."""
        return self._kept[-1][2] if self._kept else ""

    @property
    def current_score(self) -> None:
        """``None``: snapshots are taken at cycle ends, not by a monitored score."""
        return None

    @property
    def save_top_k(self) -> int:
        """``keep_last``, or -1 when every snapshot is kept (ModelCheckpoint's meaning)."""
        return -1 if self.keep_last is None else self.keep_last

    # ------------------------------------------------------------------ identity and checkpoints
    @property
    @override
    def state_key(self) -> str:
        if self.optimizer == 0:
            return self.__class__.__qualname__
        return self._generate_state_key(optimizer=self.optimizer)

    @override
    def state_dict(self) -> dict[str, Any]:
        return {
            "version": _STATE_VERSION,
            "saved_steps": list(self._saved_steps),
            "kept": [{"cycle": c, "step": s, "path": p} for c, s, p in self._kept],
        }

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._saved_steps = [int(s) for s in state_dict.get("saved_steps", [])]
        self._kept = [(int(k["cycle"]), int(k["step"]), str(k["path"])) for k in state_dict.get("kept", [])]
        self.best_model_path = self.last_model_path

    # ------------------------------------------------------------------ fit start
    @override
    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if stage != "fit":
            return
        dirpath = self.dirpath if self.dirpath is not None else self._default_dirpath(trainer)
        self._resolved_dirpath = trainer.strategy.broadcast(dirpath)  # the same folder on every rank

    @staticmethod
    def _default_dirpath(trainer: Any) -> str:
        loggers = getattr(trainer, "loggers", None) or []
        if loggers:
            logger = loggers[0]
            save_dir = logger.save_dir if logger.save_dir is not None else trainer.default_root_dir
            version = logger.version if isinstance(logger.version, str) else f"version_{logger.version}"
            return os.path.join(save_dir, str(logger.name), version, "snapshots")
        return os.path.join(trainer.default_root_dir, "snapshots")

    @override
    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        count = len(trainer.optimizers)
        if self.optimizer >= count:
            raise ValueError(
                f"SnapshotCheckpoint(optimizer={self.optimizer}) follows the schedule of optimizer {self.optimizer}, "
                f"but configure_optimizers returned {count} optimizer(s) (valid indices 0..{count - 1})."
            )
        candidates = [cb for cb in trainer.callbacks if isinstance(cb, ScheduleCallback) and cb.drives(self.optimizer)]
        if not candidates:
            found = [type(cb).__name__ for cb in trainer.callbacks if isinstance(cb, ScheduleCallback)]
            raise ValueError(
                f"SnapshotCheckpoint takes a snapshot at the end of every cycle of a lightning_clr schedule, but "
                f"no lightning_clr schedule callback on the Trainer drives optimizer {self.optimizer}"
                + (f" (found {found}, driving other optimizers)" if found else "")
                + ". Add one to the Trainer's callbacks, e.g. CosineRestartsLR(max_lr=0.1, first_cycle='5 epochs')."
            )
        self._schedule_callback = candidates[0]
        self._ends_of, self._ends, self._ends_horizon = None, [], 0

    @override
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        # Cycle ends at or before the step the fit starts from were handled by the run that took those steps.
        if self._schedule_callback is not None:
            self._last_seen = self._schedule_callback.current_step(trainer, self.optimizer)

    # ------------------------------------------------------------------ the check after every step
    @override
    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        callback = self._schedule_callback
        if callback is None or self._last_seen is None:
            return
        step = callback.current_step(trainer, self.optimizer)
        if step <= self._last_seen:  # no optimizer step in this batch (gradient accumulation)
            return
        previous, self._last_seen = self._last_seen, step
        ends = self._cycle_ends(callback, trainer, step)
        # ``ends`` is sorted: the cycles that ended in (previous, step] are a slice of it.
        first, last = bisect.bisect_right(ends, previous), bisect.bisect_right(ends, step)
        reached = [(i + 1, ends[i]) for i in range(first, last) if ends[i] not in self._saved_steps]
        if not reached or bool(getattr(trainer, "fast_dev_run", False)) or trainer.sanity_checking:
            return
        cycle, end = reached[-1]  # one snapshot, of the latest cycle that ended, if a clock jumped several
        self._save(trainer, cycle, end, step)

    def _cycle_ends(self, callback: ScheduleCallback, trainer: Any, step: int) -> list[int]:
        schedule = callback.step_schedule(self.optimizer)
        if schedule is None:
            return []
        if schedule is not self._ends_of or step > self._ends_horizon:
            ends_of = getattr(schedule, "cycle_ends", None)
            if not callable(ends_of):
                warn(f"SnapshotCheckpoint: the schedule {type(schedule).__name__} has no `cycle_ends`, so "
                               "no snapshot is taken. Use a lightning_clr schedule.")
                self._ends_of, self._ends, self._ends_horizon = schedule, [], float("inf")  # type: ignore[assignment]
                return []
            total = trainer.estimated_stepping_batches
            horizon = int(total) if isinstance(total, (int, float)) and 0 < total < float("inf") else 0
            horizon = max(horizon, step, 2 * self._ends_horizon if schedule is self._ends_of else 0)
            self._ends_of, self._ends, self._ends_horizon = schedule, list(ends_of(horizon)), horizon
        return self._ends

    def _save(self, trainer: Any, cycle: int, end: int, step: int) -> None:
        dirpath = self._resolved_dirpath if self._resolved_dirpath is not None else self._default_dirpath(trainer)
        path = os.path.join(dirpath, self.filename.format(cycle=cycle, step=step) + ".ckpt")
        # Recorded before saving, so the checkpoint's own copy of this callback's state lists it.
        self._saved_steps.append(end)
        self._kept.append((cycle, step, path))
        self.best_model_path = path
        trainer.save_checkpoint(path, weights_only=self.save_weights_only)  # every rank; rank 0 writes
        if self.keep_last is not None:
            while len(self._kept) > self.keep_last:
                _, _, old = self._kept.pop(0)
                if os.path.abspath(old) != os.path.abspath(path):
                    trainer.strategy.remove_checkpoint(old)  # rank 0 only
        if trainer.is_global_zero:  # as ModelCheckpoint does
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))
