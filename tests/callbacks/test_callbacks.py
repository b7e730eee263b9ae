"""The callbacks on a real Trainer: the rate (and momentum) each optimizer step really used.

``RecordingModel`` reads the param groups in ``on_before_optimizer_step``, so ``model.used`` holds what every
optimizer step applied; the tests compare it with the pure schedules and with torch's own schedulers.
"""

from __future__ import annotations

import copy
import csv
import itertools
import logging
import pickle
import re
import warnings
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import LearningRateMonitor
from pytorch_lightning.loggers import CSVLogger
from typing_extensions import override

from lightning_clr import CosineRestartsLR, CyclicLR, OneCycleLR, ScheduledLR
from lightning_clr.schedules import CosineRestartsSchedule, CyclicSchedule, LinearRamp, OneCycleSchedule

from helpers import RecordingModel, torch_reference, trainer_kwargs, used_lrs, used_momenta


def sgd(params: Any) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=0.5, momentum=0.9)


def adam(params: Any) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=0.5, betas=(0.9, 0.999))


def adagrad(params: Any) -> torch.optim.Optimizer:
    return torch.optim.Adagrad(params, lr=0.5)


def fit(tmp_path: Any, callbacks: list, model: RecordingModel | None = None, **trainer: Any) -> tuple[
        RecordingModel, pl.Trainer]:
    model = model or RecordingModel(num_batches=10)
    trainer_obj = pl.Trainer(**trainer_kwargs(tmp_path, **trainer), callbacks=callbacks)
    trainer_obj.fit(model)
    return model, trainer_obj


def messages(record: Any, pattern: str) -> list[str]:
    return [str(w.message) for w in record if re.search(pattern, str(w.message))]


# ---------------------------------------------------------------------------------------------- same as torch
TORCH_CASES = {
    # name: (our callback, torch scheduler for the same arguments, over 3 epochs of 10 steps)
    "cyclic-triangular": (
        lambda: CyclicLR(0.01, 0.5, 3, 5, base_momentum=0.8, max_momentum=0.95),
        lambda opt: torch.optim.lr_scheduler.CyclicLR(opt, 0.01, 0.5, 3, 5, base_momentum=0.8, max_momentum=0.95),
    ),
    "cyclic-triangular2": (
        lambda: CyclicLR(0.01, 0.5, 2, mode="triangular2"),
        lambda opt: torch.optim.lr_scheduler.CyclicLR(opt, 0.01, 0.5, 2, mode="triangular2"),
    ),
    "cyclic-exp_range": (
        lambda: CyclicLR(0.01, 0.5, "4 steps", mode="exp_range", gamma=0.95),
        lambda opt: torch.optim.lr_scheduler.CyclicLR(opt, 0.01, 0.5, 4, mode="exp_range", gamma=0.95),
    ),
    "one-cycle-cos": (
        lambda: OneCycleLR(0.5, div_factor=10.0, final_div_factor=100.0, base_momentum=0.8),
        lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, 0.5, total_steps=30, div_factor=10.0,
                                                        final_div_factor=100.0, base_momentum=0.8),
    ),
    "one-cycle-linear-three-phase": (
        lambda: OneCycleLR(0.5, total_steps="1 epochs", pct_start=0.25, anneal_strategy="linear", three_phase=True),
        lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, 0.5, total_steps=10, pct_start=0.25,
                                                        anneal_strategy="linear", three_phase=True),
    ),
    "cosine-restarts": (
        lambda: CosineRestartsLR(0.5, first_cycle=3, t_mul=2, alpha=0.1),
        lambda opt: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=2, eta_min=0.05),
    ),
    "cosine-restarts-warmup": (
        lambda: CosineRestartsLR(0.5, first_cycle=3, t_mul=2, alpha=0.1, warmup=4, warmup_start=0.25),
        lambda opt: torch.optim.lr_scheduler.SequentialLR(opt, [
            torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.25, total_iters=4),
            torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=2, eta_min=0.05)],
            milestones=[4]),
    ),
}


@pytest.mark.parametrize("optimizer", [sgd, adam], ids=["SGD", "Adam"])
@pytest.mark.parametrize("case", list(TORCH_CASES))
def test_applied_rates_equal_torch_schedulers(tmp_path: Any, case: str, optimizer: Callable) -> None:
    """The rate and momentum (SGD momentum, Adam betas[0]) every optimizer step of a 30-step fit applied equal
    what torch's scheduler with the same arguments sets when stepped after every optimizer step."""
    make_callback, make_scheduler = TORCH_CASES[case]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*past the schedule's end")
        model, _ = fit(tmp_path, [make_callback()], RecordingModel(optimizer=optimizer), max_epochs=3)
    steps = 10 if case == "one-cycle-linear-three-phase" else 30  # past its end, torch raises; ours holds
    reference = torch_reference(optimizer, make_scheduler, steps)
    assert [step for step, _, _ in model.used] == list(range(30))
    for k, (lr, momentum) in enumerate(reference):
        assert used_lrs(model)[k] == pytest.approx(lr, rel=1e-9, abs=0), f"lr at step {k}"
        assert used_momenta(model)[k] == pytest.approx(momentum, rel=1e-9, abs=0), f"momentum at step {k}"
    assert used_lrs(model)[steps:] == [used_lrs(model)[steps - 1]] * (30 - steps)


# ---------------------------------------------------------------------------------------------- the clock
class BatchProbe(pl.Callback):
    """Records ``(batch_idx, global_step, lr)`` at the start of every batch, stepping or not."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int, float]] = []

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        self.seen.append((batch_idx, trainer.global_step, trainer.optimizers[0].param_groups[0]["lr"]))


def test_accumulation_rate_changes_only_when_the_optimizer_steps(tmp_path: Any) -> None:
    """10 batches with accumulate_grad_batches=3: four optimizer steps per epoch (batches 2, 5, 8, 9). The rate
    seen by every batch equals schedule(global_step): it changes only when the optimizer steps."""
    probe = BatchProbe()
    model, trainer = fit(tmp_path, [CyclicLR(0.1, 1.0, 2), probe], max_epochs=2, accumulate_grad_batches=3)
    schedule = CyclicSchedule(0.1, 1.0, 2)
    assert trainer.global_step == 8
    assert [step for step, _, _ in model.used] == list(range(8))
    assert used_lrs(model) == schedule.values(8)
    assert [step for _, step, _ in probe.seen] == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6, 7]
    assert [lr for _, _, lr in probe.seen] == [schedule(step) for _, step, _ in probe.seen]


def test_rate_changes_every_step_not_every_epoch(tmp_path: Any) -> None:
    """A known pain: a scheduler returned from configure_optimizers steps once per epoch by default
    (``interval="epoch"``), so a "cyclical" rate is a staircase of one value per epoch. Here it changes at
    every optimizer step within the epoch."""
    model, _ = fit(tmp_path, [CyclicLR(0.1, 1.0, step_size_up="1 epochs")], max_epochs=2)
    lrs = used_lrs(model)
    assert all(a < b for a, b in itertools.pairwise(lrs[:11]))  # rising at every step of epoch 0
    assert all(a > b for a, b in itertools.pairwise(lrs[10:20]))  # falling at every step of epoch 1
    assert len(set(lrs)) == 11


def test_momentum_sgd_and_adam_beta1(tmp_path: Any) -> None:
    """SGD's momentum and Adam's betas[0] move inversely to the rate; Adam's betas[1] is left alone."""
    momentum = CyclicSchedule(0.95, 0.85, 3)
    model, _ = fit(tmp_path, [CyclicLR(0.1, 1.0, 3, base_momentum=0.85, max_momentum=0.95)], max_epochs=1)
    assert used_momenta(model) == momentum.values(10)
    model, trainer = fit(tmp_path, [CyclicLR(0.1, 1.0, 3, base_momentum=0.85, max_momentum=0.95)],
                         RecordingModel(optimizer=adam), max_epochs=1)
    assert used_momenta(model) == momentum.values(10)
    assert trainer.optimizers[0].param_groups[0]["betas"][1] == 0.999
    model, _ = fit(tmp_path, [OneCycleLR(1.0, cycle_momentum=False)], max_epochs=1)
    assert used_momenta(model) == [0.5] * 10  # RecordingModel's own momentum, untouched


@pytest.mark.parametrize(
    "callback",
    [lambda: CyclicLR(0.1, 1.0, 3), lambda: OneCycleLR(1.0)],
    ids=["CyclicLR", "OneCycleLR"],
)
def test_optimizer_without_momentum_warns_once_and_cycles_the_rate(tmp_path: Any, callback: Callable) -> None:
    """torch's CyclicLR raises ValueError ("optimizer must support momentum or beta1 with `cycle_momentum`
    option enabled") for Adagrad & co. unless you pass cycle_momentum=False; OneCycleLR likewise. Here the
    rate cycles, the momentum setting is skipped with exactly one warning, and nothing crashes."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model, _ = fit(tmp_path, [callback()], RecordingModel(optimizer=adagrad), max_epochs=2)
    assert len(messages(record, "neither `momentum` nor `betas`")) == 1
    assert used_momenta(model) == [None] * 20
    assert len(set(used_lrs(model))) > 5


# ---------------------------------------------------------------------------------------------- param groups
def test_two_param_groups_with_list_and_scalar_bounds(tmp_path: Any) -> None:
    model, _ = fit(tmp_path, [CyclicLR([0.01, 0.1], [0.1, 1.0], 3)], RecordingModel(groups=2), max_epochs=1)
    assert used_lrs(model, 0) == CyclicSchedule(0.01, 0.1, 3).values(10)
    assert used_lrs(model, 1) == CyclicSchedule(0.1, 1.0, 3).values(10)
    assert used_momenta(model, 0) == used_momenta(model, 1) == CyclicSchedule(0.9, 0.8, 3).values(10)

    model, _ = fit(tmp_path, [CyclicLR(0.1, 1.0, 3)], RecordingModel(groups=2), max_epochs=1)
    assert used_lrs(model, 0) == used_lrs(model, 1) == CyclicSchedule(0.1, 1.0, 3).values(10)

    model, _ = fit(tmp_path, [OneCycleLR([0.1, 1.0])], RecordingModel(groups=2), max_epochs=1)
    assert used_lrs(model, 0) == OneCycleSchedule(0.004, 0.1, 0.004 / 1e4, 10).values(10)
    assert used_lrs(model, 1) == OneCycleSchedule(0.04, 1.0, 0.04 / 1e4, 10).values(10)

    model, _ = fit(tmp_path, [CosineRestartsLR([0.1, 1.0], 4)], RecordingModel(groups=2), max_epochs=1)
    assert used_lrs(model, 1) == CosineRestartsSchedule(1.0, 4).values(10)


def test_cosine_restarts_warmup_resolves_its_length_and_keeps_old_fingerprints(tmp_path: Any) -> None:
    """``warmup="20%"`` of a 10-step fit is 2 steps before the cycles; without a warm-up the fingerprint is the
    one a checkpoint saved before the warm-up existed holds (its arguments had no warm-up keys)."""
    model, _ = fit(tmp_path, [CosineRestartsLR(1.0, 4, warmup="20%", warmup_start=0.5)], RecordingModel(),
                   max_epochs=1)
    assert used_lrs(model) == CosineRestartsSchedule(1.0, 4, warmup_steps=2, warmup_start=0.5).values(10)
    assert used_lrs(model)[:3] == [0.5, 0.75, 1.0]
    plain = CosineRestartsLR(0.1, 10, t_mul=2.0)
    assert "warmup" not in plain._plain_arguments()
    assert plain.fingerprint() == "9e67d4e3e52f51d2"  # as computed by 0.1 (commit 412f1a4)
    warm = CosineRestartsLR(0.1, 10, t_mul=2.0, warmup="5%")
    assert warm._plain_arguments()["warmup"] == "5%" and warm.fingerprint() != plain.fingerprint()


@pytest.mark.parametrize(
    "callback,groups",
    [
        (lambda: CyclicLR([0.01, 0.02, 0.03], 1.0, 3), 2),
        (lambda: CyclicLR(0.01, [0.5, 1.0], 3), 1),
        (lambda: OneCycleLR([0.1, 0.2, 0.3]), 2),
        (lambda: CosineRestartsLR([0.1, 0.2], 3), 1),
        (lambda: ScheduledLR([LinearRamp(0.0, 1.0, 5)] * 3), 2),
    ],
)
def test_list_length_differing_from_group_count_raises_at_fit_start(tmp_path: Any, callback: Callable,
                                                                    groups: int) -> None:
    model = RecordingModel(groups=groups)
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=1), callbacks=[callback()])
    message = rf"one value per param group of optimizer 0 \(SGD\), which has {groups} param group"
    with pytest.raises(ValueError, match=message):
        trainer.fit(model)
    assert model.used == []


# ---------------------------------------------------------------------------------------------- past the end
def test_past_the_end_holds_the_final_value_and_warns_once(tmp_path: Any) -> None:
    """torch's OneCycleLR raises "Tried to step 7 times. The specified number of total steps is 5" as soon as
    a run is longer than total_steps (e.g. after adding an epoch or resuming). Here the final value is held
    and one warning says so."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model, _ = fit(tmp_path, [OneCycleLR(1.0, total_steps=5)], max_epochs=2)
    final = OneCycleSchedule(0.04, 1.0, 0.04 / 1e4, 5)(4)
    assert used_lrs(model) == OneCycleSchedule(0.04, 1.0, 0.04 / 1e4, 5).values(5) + [final] * 15
    assert used_momenta(model)[4:] == [0.95] * 16
    assert messages(record, "past the schedule's end") == [
        "OneCycleLR: optimizer 0 takes step 5, past the schedule's end (5 steps); the final value is held. "
        "The run is longer than the schedule."
    ]


def test_a_resume_past_the_end_warns_at_its_first_step(tmp_path: Any) -> None:
    """The past-the-end check sleeps until a step may pass the end; a run resumed there must still warn."""
    callback = OneCycleLR(1.0, total_steps=5)
    _, trainer = fit(tmp_path, [callback], max_steps=5, enable_checkpointing=True)
    path = tmp_path / "five.ckpt"
    trainer.save_checkpoint(path)
    model = RecordingModel(num_batches=10)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        resumed = pl.Trainer(**trainer_kwargs(tmp_path, max_steps=8), callbacks=[OneCycleLR(1.0, total_steps=5)])
        resumed.fit(model, ckpt_path=path)
    final = OneCycleSchedule(0.04, 1.0, 0.04 / 1e4, 5)(4)
    assert used_lrs(model) == [final] * 3
    assert messages(record, "past the schedule's end") == [
        "OneCycleLR: optimizer 0 takes step 5, past the schedule's end (5 steps); the final value is held. "
        "The run is longer than the schedule."
    ]


def test_the_step_is_read_from_lightnings_own_counter_and_checked(tmp_path: Any) -> None:
    """The per-step read of global_step goes to Lightning's optimizer-step tracker (the fast path is live on this
    Lightning), agrees with trainer.global_step at every batch end (accumulation included), and a Trainer of
    another shape falls back to trainer.global_step itself."""
    from lightning_clr._trainer import _GlobalStep, global_step_counter

    seen: list[tuple[int, int]] = []

    class Probe(pl.Callback):
        def on_train_start(self, trainer: Any, *args: Any) -> None:
            self.counter = global_step_counter(trainer)

        def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
            seen.append((self.counter.completed, trainer.global_step))

    probe = Probe()
    callback = CyclicLR(0.1, 1.0, step_size_up=2)
    model, trainer = fit(tmp_path, [callback, probe], max_epochs=2, accumulate_grad_batches=3)
    assert not isinstance(probe.counter, _GlobalStep)
    assert [a for a, _ in seen] == [b for _, b in seen] and seen[-1][1] == trainer.global_step == 8
    assert used_lrs(model) == [CyclicSchedule(0.1, 1.0, 2)(step) for step in range(8)]

    class Double:
        global_step = 7

    counter = global_step_counter(Double())
    assert isinstance(counter, _GlobalStep) and counter.completed == 7


def test_one_cycle_spans_exactly_the_estimated_stepping_batches(tmp_path: Any) -> None:
    """total_steps=None: the cycle is trainer.estimated_stepping_batches (12 = ceil(10 / 3) * 3 epochs) long,
    so the last step of the fit applies the final rate, and there is no past-the-end warning."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model, trainer = fit(tmp_path, [OneCycleLR(1.0)], max_epochs=3, accumulate_grad_batches=3)
    assert trainer.estimated_stepping_batches == 12 == len(model.used)
    expected = OneCycleSchedule(0.04, 1.0, 0.04 / 1e4, 12)
    assert used_lrs(model) == expected.values(12)
    assert used_lrs(model)[-1] == pytest.approx(0.04 / 1e4, rel=1e-12)
    assert messages(record, "past the schedule's end") == []


def test_scheduled_lr_with_cosine_restarts(tmp_path: Any) -> None:
    lr = CosineRestartsSchedule(peak=0.5, first_cycle=3, t_mul=2.0, m_mul=0.5, alpha=0.1)
    momentum = LinearRamp(0.9, 0.5, 10)
    model, _ = fit(tmp_path, [ScheduledLR(lr, momentum)], max_epochs=2)
    assert used_lrs(model) == lr.values(20)
    assert used_momenta(model) == momentum.values(20)
    model, _ = fit(tmp_path, [ScheduledLR([lr, LinearRamp(0.1, 0.2, 5)])], RecordingModel(groups=2), max_epochs=1)
    assert used_lrs(model, 0) == lr.values(10)
    assert used_lrs(model, 1) == LinearRamp(0.1, 0.2, 5).values(10)


# ---------------------------------------------------------------------------------------------- copies
CALLBACKS = {
    "CyclicLR": lambda: CyclicLR(0.1, 1.0, "1 epochs", mode="triangular2"),
    "OneCycleLR": lambda: OneCycleLR(1.0, total_steps="50%", three_phase=True),
    "CosineRestartsLR": lambda: CosineRestartsLR(0.5, "3 steps", t_mul=2.0, alpha=0.1),
    "ScheduledLR": lambda: ScheduledLR(CosineRestartsSchedule(0.5, 4, 1.5), LinearRamp(0.9, 0.8, 7)),
}


@pytest.mark.parametrize("name", list(CALLBACKS))
def test_callbacks_pickle_and_deepcopy_before_and_after_a_fit(tmp_path: Any, name: str) -> None:
    """Copies made before and after a fit (e.g. by LightningCLI, ddp_spawn, or a saved Trainer config)
    drive a new fit exactly as the original did."""
    callback = CALLBACKS[name]()
    before = [pickle.loads(pickle.dumps(callback)), copy.deepcopy(callback)]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*past the schedule's end")
        model, _ = fit(tmp_path, [callback], max_epochs=2)
        after = [pickle.loads(pickle.dumps(callback)), copy.deepcopy(callback)]
        for clone in before + after:
            assert type(clone) is type(callback) and clone.fingerprint() == callback.fingerprint()
            again, _ = fit(tmp_path, [clone], max_epochs=2)
            assert again.used == model.used


# ---------------------------------------------------------------------------------------------- bad arguments
BAD_ARGUMENTS = [
    # (callback class, kwargs, argument named in the message, value shown in the message)
    (CyclicLR, dict(base_lr=-0.1, max_lr=1.0), "base_lr", "-0.1"),
    (CyclicLR, dict(base_lr=float("nan"), max_lr=1.0), "base_lr", "nan"),
    (CyclicLR, dict(base_lr=0.1, max_lr=0.1), "max_lr", "0.1"),
    (CyclicLR, dict(base_lr=0.5, max_lr=0.1), "max_lr", "0.1"),
    (CyclicLR, dict(base_lr=0.0, max_lr=0.0), "max_lr", "0.0"),
    (CyclicLR, dict(base_lr=[0.1, 0.2], max_lr=[1.0, 0.15]), "max_lr", "0.15"),
    (CyclicLR, dict(base_lr=[0.1, 0.2], max_lr=[1.0, 2.0, 3.0]), "base_lr", "[0.1, 0.2]"),
    (CyclicLR, dict(base_lr=0.1, max_lr=1.0, step_size_up="3 fortnights"), "step_size_up", "'3 fortnights'"),
    (CyclicLR, dict(base_lr=0.1, max_lr=1.0, step_size_up=0), "step_size_up", "0"),
    (CyclicLR, dict(base_lr=0.1, max_lr=1.0, step_size_up=True), "step_size_up", "True"),
    (CyclicLR, dict(base_lr=0.1, max_lr=1.0, step_size_up=2.5), "step_size_up", "2.5"),
    (CyclicLR, dict(base_lr=0.1, max_lr=1.0, step_size_up="0 epochs"), "step_size_up", "'0 epochs'"),
    (CyclicLR, dict(base_lr=0.1, max_lr=1.0, step_size_down=-1), "step_size_down", "-1"),
    (CyclicLR, dict(base_lr=0.1, max_lr=1.0, mode="cosine"), "mode", "'cosine'"),
    (CyclicLR, dict(base_lr=0.1, max_lr=1.0, gamma=0.0), "gamma", "0.0"),
    (CyclicLR, dict(base_lr=0.1, max_lr=1.0, gamma=-0.5), "gamma", "-0.5"),
    (CyclicLR, dict(base_lr=0.1, max_lr=1.0, mode="exp_range", gamma=1.5), "gamma", "1.5"),
    (CyclicLR, dict(base_lr=0.1, max_lr=1.0, base_momentum=1.0), "base_momentum", "1.0"),
    (CyclicLR, dict(base_lr=0.1, max_lr=1.0, max_momentum=-0.1), "max_momentum", "-0.1"),
    (CyclicLR, dict(base_lr=0.1, max_lr=1.0, base_momentum=0.95, max_momentum=0.9), "base_momentum", "0.95"),
    (CyclicLR, dict(base_lr=0.1, max_lr=1.0, optimizers=-1), "optimizers", "-1"),
    (OneCycleLR, dict(max_lr=0.0), "max_lr", "0.0"),
    (OneCycleLR, dict(max_lr=-1.0), "max_lr", "-1.0"),
    (OneCycleLR, dict(max_lr=1.0, total_steps=0), "total_steps", "0"),
    (OneCycleLR, dict(max_lr=1.0, total_steps="3 fortnights"), "total_steps", "'3 fortnights'"),
    (OneCycleLR, dict(max_lr=1.0, pct_start=0.0), "pct_start", "0.0"),
    (OneCycleLR, dict(max_lr=1.0, pct_start=1.0), "pct_start", "1.0"),
    (OneCycleLR, dict(max_lr=1.0, pct_start=1.5), "pct_start", "1.5"),
    (OneCycleLR, dict(max_lr=1.0, anneal_strategy="cosine"), "anneal_strategy", "'cosine'"),
    (OneCycleLR, dict(max_lr=1.0, div_factor=0.0), "div_factor", "0.0"),
    (OneCycleLR, dict(max_lr=1.0, final_div_factor=-1.0), "final_div_factor", "-1.0"),
    (OneCycleLR, dict(max_lr=1.0, base_momentum=1.0), "base_momentum", "1.0"),
    (OneCycleLR, dict(max_lr=1.0, max_momentum=1.2), "max_momentum", "1.2"),
    (CosineRestartsLR, dict(max_lr=-0.1, first_cycle=10), "max_lr", "-0.1"),
    (CosineRestartsLR, dict(max_lr=0.1, first_cycle=0), "first_cycle", "0"),
    (CosineRestartsLR, dict(max_lr=0.1, first_cycle="2 weeks"), "first_cycle", "'2 weeks'"),
    (CosineRestartsLR, dict(max_lr=0.1, first_cycle=10, t_mul=0.0), "t_mul", "0.0"),
    (CosineRestartsLR, dict(max_lr=0.1, first_cycle=10, t_mul=-2.0), "t_mul", "-2.0"),
    (CosineRestartsLR, dict(max_lr=0.1, first_cycle=10, m_mul=2.0), "m_mul", "2.0"),
    (CosineRestartsLR, dict(max_lr=0.1, first_cycle=10, m_mul=0.0), "m_mul", "0.0"),
    (CosineRestartsLR, dict(max_lr=0.1, first_cycle=10, alpha=-0.1), "alpha", "-0.1"),
    (CosineRestartsLR, dict(max_lr=0.1, first_cycle=10, alpha=1.5), "alpha", "1.5"),
    (CosineRestartsLR, dict(max_lr=0.1, first_cycle=10, warmup=-5), "warmup", "-5"),
    (CosineRestartsLR, dict(max_lr=0.1, first_cycle=10, warmup="2 weeks"), "warmup", "'2 weeks'"),
    (CosineRestartsLR, dict(max_lr=0.1, first_cycle=10, warmup_start=1.5), "warmup_start", "1.5"),
    (ScheduledLR, dict(lr=0.1), "lr", "0.1"),
    (ScheduledLR, dict(lr=LinearRamp(0.0, 1.0, 3), momentum=0.9), "momentum", "0.9"),
]


@pytest.mark.parametrize("cls,kwargs,argument,value", BAD_ARGUMENTS,
                         ids=[f"{c.__name__}-{a}={v}" for c, _, a, v in BAD_ARGUMENTS])
def test_bad_arguments_raise_in_init_naming_argument_and_value(cls: type, kwargs: dict, argument: str,
                                                               value: str) -> None:
    with pytest.raises(ValueError) as info:
        cls(**kwargs)
    message = str(info.value)
    assert argument in message and value in message, message
    assert message.startswith("Expected"), message


# ---------------------------------------------------------------------------------------------- conflicts
class ModelWithScheduler(RecordingModel):
    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.SGD(self.parameters(), lr=1.0, momentum=0.5)
        return {"optimizer": optimizer, "lr_scheduler": torch.optim.lr_scheduler.StepLR(optimizer, 5)}


def test_scheduler_from_configure_optimizers_is_a_clear_conflict(tmp_path: Any) -> None:
    """Both would set the same param_group["lr"] and silently fight; the error names the scheduler and says
    what to do."""
    model = ModelWithScheduler()
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=1), callbacks=[CyclicLR(0.1, 1.0, 3)])
    with pytest.raises(ValueError, match="StepLR") as info:
        trainer.fit(model)
    assert "Return only the optimizer from configure_optimizers" in str(info.value)
    assert "optimizers=[...]" in str(info.value)
    assert model.used == []


# ---------------------------------------------------------------------------------------------- logging
def read_csv_metrics(trainer: pl.Trainer) -> dict[str, dict[int, set[str]]]:
    """``{column: {step: {values as written}}}`` from a CSVLogger's metrics.csv."""
    path = Path(trainer.logger.log_dir) / "metrics.csv"
    columns: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            for name, value in row.items():
                if name != "step" and value != "":
                    columns[name][int(row["step"])].add(value)
    return columns


def logged(columns: dict, name: str) -> dict[int, float]:
    values = {}
    for step, written in columns[name].items():
        assert len(written) == 1, f"{name} at step {step} logged different values: {written}"
        values[step] = float(written.pop())
    return values


def test_csv_logged_rates_equal_applied_rates_in_full_precision(tmp_path: Any) -> None:
    """Logged at the logger step of each optimizer step (with accumulation, every batch of a window logs the
    same step and value), exactly the float64 rate that step applied."""
    model, trainer = fit(tmp_path, [OneCycleLR(1.0)], max_epochs=3, accumulate_grad_batches=2,
                         logger=CSVLogger(tmp_path), log_every_n_steps=1)
    assert len(model.used) == 15
    columns = read_csv_metrics(trainer)
    applied = {step: lrs[0] for step, lrs, _ in model.used}
    momenta = {step: moms[0] for step, _, moms in model.used}
    assert logged(columns, "lr-clr-SGD") == applied  # every step, float64 exact (==)
    assert logged(columns, "lr-clr-SGD-momentum") == momenta
    assert not any("-1" in name or "pg" in name for name in columns)


def test_csv_log_names_for_two_param_groups(tmp_path: Any) -> None:
    model, trainer = fit(tmp_path, [CyclicLR([0.01, 0.1], [0.1, 1.0], 3)], RecordingModel(groups=2),
                         max_epochs=1, logger=CSVLogger(tmp_path), log_every_n_steps=1)
    columns = read_csv_metrics(trainer)
    assert {name for name in columns if name.startswith("lr-clr")} == {
        "lr-clr-SGD/pg1", "lr-clr-SGD/pg2", "lr-clr-SGD/pg1-momentum", "lr-clr-SGD/pg2-momentum"}
    assert logged(columns, "lr-clr-SGD/pg1") == dict(enumerate(used_lrs(model, 0)))
    assert logged(columns, "lr-clr-SGD/pg2") == dict(enumerate(used_lrs(model, 1)))
    assert logged(columns, "lr-clr-SGD/pg2-momentum") == dict(enumerate(used_momenta(model, 1)))


@pytest.mark.parametrize("monitor_first", [True, False], ids=["monitor-before", "monitor-after"])
def test_learning_rate_monitor_alongside(tmp_path: Any, monitor_first: bool, caplog: Any) -> None:
    """LearningRateMonitor logs ``lr-SGD``; ours logs ``lr-clr-SGD``: no collision, in either order, and the
    monitor's values (it reads the param group at batch start) equal the rates the steps applied. The callback
    says once, in one line, that it logs the rate already."""
    monitor = LearningRateMonitor(logging_interval="step", log_momentum=True)
    ours = CyclicLR(0.1, 1.0, 3, mode="triangular2")
    callbacks = [monitor, ours] if monitor_first else [ours, monitor]
    with caplog.at_level(logging.INFO):
        model, trainer = fit(tmp_path, callbacks, max_epochs=2, logger=CSVLogger(tmp_path), log_every_n_steps=1)
        trainer.fit(model)  # a second fit on the same Trainer: no second note
    notes = [r.getMessage() for r in caplog.records if "already logs the rate" in r.getMessage()]
    assert notes == ["CyclicLR already logs the rate it applies (lr-clr-<Optimizer>); the LearningRateMonitor logs "
                     "it again, as lr-<Optimizer>. Remove the LearningRateMonitor unless you want both."]
    columns = read_csv_metrics(trainer)
    applied = dict(enumerate(used_lrs(model)))
    assert {"lr-SGD", "lr-SGD-momentum", "lr-clr-SGD", "lr-clr-SGD-momentum"} <= set(columns)
    assert logged(columns, "lr-SGD") == applied
    assert logged(columns, "lr-clr-SGD") == applied
    assert logged(columns, "lr-SGD-momentum") == dict(enumerate(used_momenta(model)))


def test_no_logger_is_fine(tmp_path: Any) -> None:
    model, trainer = fit(tmp_path, [CyclicLR(0.1, 1.0, 3)], max_epochs=1, logger=False, log_every_n_steps=1)
    assert trainer.loggers == []
    assert used_lrs(model) == CyclicSchedule(0.1, 1.0, 3).values(10)


class _Overwriter(pl.Callback):
    """Sets every group's rate to a bogus value after each batch, after the schedule callback wrote ahead."""

    @override
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        for group in trainer.optimizers[0].param_groups:
            group["lr"] = 123.0


def test_safety_net_rewrites_a_rate_overwritten_after_the_schedule_wrote_it(tmp_path):
    """The write ahead happens at batch end; something that replaces the rate later (here a callback after
    ours) is caught at the next batch start, so every step still applies the schedule's rate. Skipping the
    rewrite when the step is unchanged must not skip this case."""
    model = RecordingModel(num_batches=6)
    callback = CyclicLR(0.1, 1.0, step_size_up=2, cycle_momentum=False)
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=1, accumulate_grad_batches=2),
                         callbacks=[callback, _Overwriter()])
    trainer.fit(model)
    assert used_lrs(model) == CyclicSchedule(0.1, 1.0, 2).values(3)
