"""Trains tiny models under DDP on CPU (2 ranks, gloo) and writes, per rank, what the ranks saw.

``tests/test_ddp.py`` runs this file with ``subprocess.run`` for ``strategy="ddp"`` (whose launcher re-executes
``sys.argv``, so it must never start inside pytest) and imports it for ``strategy="ddp_spawn"`` (the spawned
ranks unpickle the classes below, so they live at module level and hold no closures).

Each rank writes ``<output>/<phase>-rank<R>.json``:

* ``used``: ``(global_step, [lr], [momentum])`` read in ``on_before_optimizer_step``, i.e. what every
  optimizer step really applied on that rank;
* ``collectives_total``: every torch.distributed / strategy collective call of the fit (to compare with the
  ``baseline`` phase, the same fit without the CLR callback), ``collectives_in_clr``: those made while the CLR
  callback's code ran, by hook, and ``probe``: what a deliberate barrier in a "hook" counts (proves the
  counter works);
* ``step_size_up``: the per-rank step count ``"1 epochs"`` resolved to; ``state``: the callback's state_dict.

Each rank's logger writes ``<output>/<phase>-metrics-rank<R>.jsonl`` (it is not rank-zero-only on purpose).

Usage::

    python tests/scripts/ddp_run.py OUTPUT_DIR [--strategy ddp]
        [--phases full,resume,own_clock,own_clock_resume,baseline]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for helpers

import pytorch_lightning as pl
import torch
import torch.distributed as dist
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint

from lightning_clr import CyclicLR

from helpers import EndsDistributedCleanly, MinimalLogger, RecordingModel

torch.set_num_threads(1)

#: 20 batches of 2 samples: 10 batches per rank after the distributed sampler, so "1 epochs" is 10 steps.
NUM_BATCHES = 20
STEPS_PER_RANK_EPOCH = 10
CHECKPOINT_STEP = 7
CLR_ARGUMENTS: dict[str, Any] = dict(base_lr=0.01, max_lr=0.1, step_size_up="1 epochs", mode="triangular2",
                                     base_momentum=0.8, max_momentum=0.9)

COLLECTIVES = (
    "all_reduce", "all_gather", "all_gather_object", "all_gather_into_tensor", "all_to_all", "all_to_all_single",
    "broadcast", "broadcast_object_list", "barrier", "monitored_barrier", "reduce", "reduce_scatter",
    "reduce_scatter_tensor", "gather", "gather_object", "scatter", "scatter_object_list", "send", "recv",
    "isend", "irecv", "batch_isend_irecv",
)
STRATEGY_COLLECTIVES = ("barrier", "broadcast", "reduce", "all_gather", "reduce_boolean_decision")


class _Counter:
    """Counts collective calls: all of them (``total``), and those made while the CLR callback's code runs,
    by the outermost hook that was running (``by_hook``)."""

    def __init__(self) -> None:
        self.hooks: list[str] = []
        self.total: dict[str, int] = {}
        self.by_hook: dict[str, dict[str, int]] = {}
        self.originals: list[tuple[Any, str, Any]] = []

    def count(self, label: str) -> None:
        self.total[label] = self.total.get(label, 0) + 1
        if self.hooks:
            counts = self.by_hook.setdefault(self.hooks[0], {})
            counts[label] = counts.get(label, 0) + 1

    def wrap(self, owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name, None)
        if original is None:
            return
        self.originals.append((owner, name, original))

        @functools.wraps(original)
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.count(label)
            return original(*args, **kwargs)

        setattr(owner, name, counted)

    def install(self, strategy: Any) -> None:
        self.total, self.by_hook = {}, {}
        for name in COLLECTIVES:
            self.wrap(dist, name, f"torch.distributed.{name}")
            self.wrap(dist.distributed_c10d, name, f"torch.distributed.{name}")
        for name in STRATEGY_COLLECTIVES:
            self.wrap(strategy, name, f"strategy.{name}")

    def uninstall(self) -> None:
        for owner, name, original in reversed(self.originals):
            setattr(owner, name, original)
        self.originals = []


COUNTER = _Counter()  # one per process, i.e. per rank


def _counted_hook(name: str) -> Any:
    def hook(self: Any, *args: Any, **kwargs: Any) -> Any:
        COUNTER.hooks.append(name)
        try:
            return getattr(super(CountingCyclicLR, self), name)(*args, **kwargs)
        finally:
            COUNTER.hooks.pop()

    hook.__name__ = name
    return hook


class CountingCyclicLR(CyclicLR):
    """CyclicLR whose every hook (and the write and log paths the torch step hooks call) is watched by COUNTER."""


for _name in (
    "setup", "on_fit_start", "on_train_start", "on_train_epoch_start", "on_train_batch_start",
    "on_before_optimizer_step", "on_train_batch_end", "on_train_epoch_end", "on_validation_start",
    "on_validation_end", "on_fit_end", "teardown", "state_dict", "load_state_dict", "on_save_checkpoint",
    "on_load_checkpoint", "_write", "_log",
):
    setattr(CountingCyclicLR, _name, _counted_hook(_name))


class RankFileLogger(MinimalLogger):
    """Writes every ``log_metrics`` call, on every rank (deliberately not rank-zero-only), to a JSON-lines file."""

    def __init__(self, output: str, phase: str) -> None:
        super().__init__()
        self.output = output
        self.phase = phase

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        rank = dist.get_rank() if dist.is_initialized() else 0
        path = Path(self.output) / f"{self.phase}-metrics-rank{rank}.jsonl"
        with path.open("a") as handle:
            handle.write(json.dumps({"step": step, **{k: float(v) for k, v in metrics.items()}}) + "\n")


class RankRecorder(pl.Callback):
    """Installs the collective counter and, at fit end, writes what this rank saw."""

    def __init__(self, output: str, phase: str) -> None:
        self.output = output
        self.phase = phase

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        COUNTER.install(trainer.strategy)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        total, by_hook = dict(COUNTER.total), {k: dict(v) for k, v in COUNTER.by_hook.items()}
        COUNTER.hooks.append("probe")  # a deliberate collective, as if in a hook, must be counted
        dist.barrier()
        trainer.strategy.barrier("probe")
        COUNTER.hooks.pop()
        probe = COUNTER.by_hook.get("probe", {})
        clr = next((cb for cb in trainer.callbacks if isinstance(cb, CyclicLR)), None)
        record: dict[str, Any] = {
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "strategy": type(trainer.strategy).__name__,
            "used": pl_module.used,
            "global_step": trainer.global_step,
            "estimated_stepping_batches": trainer.estimated_stepping_batches,
            "final_lr": float(trainer.optimizers[0].param_groups[0]["lr"]),
            "collectives_total": total,
            "collectives_in_clr": by_hook,
            "probe": probe,
        }
        if clr is not None:
            record.update(step_size_up=clr.step_schedule(0).step_size_up, state=clr.state_dict())
        path = Path(self.output) / f"{self.phase}-rank{trainer.global_rank}.json"
        path.write_text(json.dumps(record))

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        COUNTER.uninstall()


def make_trainer(output: str, phase: str, strategy: str, count_skipped_steps: bool = True,
                 checkpoint: bool = False, clr: bool = True) -> pl.Trainer:
    callbacks: list[Any] = [
        # The monitor goes before the CLR callback: it must still log the rate each step applies.
        LearningRateMonitor(logging_interval="step", log_momentum=True),
        RankRecorder(output, phase),
    ]
    if clr:
        callbacks.insert(1, CountingCyclicLR(**CLR_ARGUMENTS, count_skipped_steps=count_skipped_steps))
    if strategy == "ddp_spawn":  # the spawned ranks end here (`ddp` runs end in finish())
        callbacks.append(EndsDistributedCleanly())
    if checkpoint:
        callbacks.append(ModelCheckpoint(dirpath=str(Path(output) / f"{phase}-ckpt"), filename="{step}",
                                         every_n_train_steps=CHECKPOINT_STEP, save_top_k=-1))
    return pl.Trainer(
        default_root_dir=output,
        accelerator="cpu",
        devices=2,
        strategy=strategy,
        max_epochs=2,
        logger=RankFileLogger(output, phase),
        log_every_n_steps=1,
        callbacks=callbacks,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=checkpoint,
        num_sanity_val_steps=0,
        limit_val_batches=1,
    )


def run_phase(output: str, phase: str, strategy: str) -> pl.Trainer:
    if phase == "baseline":  # the same fit without the CLR callback: the collectives Lightning makes anyway
        trainer = make_trainer(output, phase, strategy, checkpoint=True, clr=False)
        trainer.fit(RecordingModel(num_batches=NUM_BATCHES))
        return trainer
    own_clock = phase.startswith("own_clock")
    base = "own_clock" if own_clock else "full"
    resume = phase.endswith("resume")
    trainer = make_trainer(output, phase, strategy, count_skipped_steps=not own_clock, checkpoint=not resume)
    ckpt_path = str(Path(output) / f"{base}-ckpt" / f"step={CHECKPOINT_STEP}.ckpt") if resume else None
    trainer.fit(RecordingModel(num_batches=NUM_BATCHES), ckpt_path=ckpt_path)
    return trainer


def finish(trainers: list[pl.Trainer]) -> int:
    """Ends the run in an order that cannot abort: all ranks meet, the gloo group is destroyed on each, and
    rank 0 (the ``ddp`` launcher) waits for its child rank and returns that rank's exit code.

    Lightning never destroys a gloo process group (only NCCL's, at exit), so without this the ranks tore it
    down during interpreter shutdown in no particular order; a rank whose peer or whose TCPStore (hosted by
    rank 0) was already gone could abort with SIGABRT, and rank 0 could exit before noticing.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    # The first Trainer's launcher started the child rank; the later ones found it running.
    children = [proc for trainer in trainers
                for proc in getattr(getattr(trainer.strategy, "launcher", None), "procs", None) or []]
    for rank, proc in enumerate(children, start=1):
        code = proc.wait(timeout=300)
        if code != 0:
            print(f"ddp_run.py: rank {rank} (pid {proc.pid}) exited with code {code}", file=sys.stderr)
            return code if code > 0 else 128 - code
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output")
    parser.add_argument("--strategy", default="ddp")
    parser.add_argument("--phases", default="full,resume,own_clock,own_clock_resume,baseline")
    args = parser.parse_args(argv)
    os.makedirs(args.output, exist_ok=True)
    trainers = [run_phase(args.output, phase, args.strategy) for phase in args.phases.split(",")]
    return finish(trainers)


if __name__ == "__main__":
    sys.exit(main())
