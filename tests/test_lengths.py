"""Lengths in steps, epochs and percent: parsing, resolution, and what an epoch means on a real Trainer.

An epoch counts OPTIMIZER steps, not batches: with ``accumulate_grad_batches`` and ``limit_train_batches``
the number of steps per epoch is ``ceil(batches / accumulate)``, which is what a schedule advances on.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, IterableDataset

from lightning_clr import CyclicLR, Length, LightningCLRWarning, OneCycleLR, parse_length
from lightning_clr.schedules import CyclicSchedule, OneCycleSchedule

from helpers import RecordingModel, trainer_kwargs, used_lrs


# ---------------------------------------------------------------------------------------------- parsing
@pytest.mark.parametrize(
    "spec,expected",
    [
        (5, Length(5.0, "steps")),
        (500.0, Length(500.0, "steps")),  # a whole float, as YAML may give it
        ("5", Length(5.0, "steps")),
        ("5 steps", Length(5.0, "steps")),
        ("1 step", Length(1.0, "steps")),
        ("  7 Steps ", Length(7.0, "steps")),
        ("1e3 steps", Length(1000.0, "steps")),
        ("2 epochs", Length(2.0, "epochs")),
        ("1 epoch", Length(1.0, "epochs")),
        ("2.5 epochs", Length(2.5, "epochs")),
        (".5 epochs", Length(0.5, "epochs")),
        ("30%", Length(30.0, "percent")),
        ("12.5 %", Length(12.5, "percent")),
        (Length(3.0, "epochs"), Length(3.0, "epochs")),
    ],
)
def test_parse_length(spec: Any, expected: Length) -> None:
    assert parse_length(spec, "step_size_up") == expected


@pytest.mark.parametrize(
    "spec",
    ["3 fortnights", 0, -1, True, False, 2.5, "0 epochs", "0%", "0", "-1 steps", "2.5 steps", "", "epochs",
     "1 epochs 2", None, float("nan"), float("inf"), [3], "5 stepz"],
)
def test_bad_lengths_raise_value_error_naming_argument_and_value(spec: Any) -> None:
    with pytest.raises(ValueError, match="step_size_up") as info:
        parse_length(spec, "step_size_up")
    assert repr(spec) in str(info.value)


@pytest.mark.parametrize(
    "length,per_epoch,total,steps",
    [
        (Length(7.0, "steps"), None, None, 7),  # steps need no run size
        (Length(1.0, "epochs"), 4, None, 4),
        (Length(2.5, "epochs"), 4, None, 10),
        (Length(0.5, "epochs"), 5, None, 3),  # 2.5 steps: halves round up (Python's round() would give 2)
        (Length(1.5, "epochs"), 3, None, 5),  # 4.5 -> 5
        (Length(0.01, "epochs"), 10, None, 1),  # never below one step
        (Length(50.0, "percent"), None, 30, 15),
        (Length(35.0, "percent"), None, 10, 4),  # 3.5 -> 4
        (Length(1.0, "percent"), None, 10, 1),
        (Length(100.0, "percent"), None, 12, 12),
    ],
)
def test_resolve(length: Length, per_epoch: Any, total: Any, steps: int) -> None:
    assert length.resolve(steps_per_epoch=per_epoch, total_steps=total) == steps


@pytest.mark.parametrize("count", [None, math.inf, -1, 0])
def test_resolve_with_unknown_run_size_raises(count: Any) -> None:
    with pytest.raises(ValueError, match=r"Cannot resolve the length 2 epochs.*unknown"):
        Length(2.0, "epochs").resolve(steps_per_epoch=count, total_steps=100)
    with pytest.raises(ValueError, match=r"Cannot resolve the length 30%.*unknown"):
        Length(30.0, "percent").resolve(steps_per_epoch=10, total_steps=count)


def test_str() -> None:
    assert [str(Length(2.5, "epochs")), str(Length(30.0, "percent")), str(Length(5.0, "steps"))] == [
        "2.5 epochs", "30%", "5 steps"]


# ---------------------------------------------------------------------------------------------- on a real Trainer
def _fit(tmp_path: Any, callback: Any, model: Any = None, **trainer: Any) -> RecordingModel:
    model = model or RecordingModel(num_batches=10)
    pl.Trainer(**trainer_kwargs(tmp_path, **trainer), callbacks=[callback]).fit(model)
    return model


def test_an_epoch_counts_optimizer_steps_under_accumulation(tmp_path: Any) -> None:
    """10 batches with accumulate_grad_batches=3 step the optimizer 4 times per epoch (the last, partial
    window steps too), so step_size_up="1 epochs" is 4 steps: the peak comes at step 4, not batch 10."""
    model = _fit(tmp_path, CyclicLR(0.1, 1.0, step_size_up="1 epochs"), max_epochs=3, accumulate_grad_batches=3)
    assert [step for step, _, _ in model.used] == list(range(12))
    assert used_lrs(model) == CyclicSchedule(0.1, 1.0, 4).values(12)
    assert used_lrs(model)[4] == 1.0 and used_lrs(model)[8] == 0.1


def test_an_epoch_counts_limit_train_batches(tmp_path: Any) -> None:
    """limit_train_batches=0.5 keeps 5 of 10 batches; with accumulate 2 that is 3 optimizer steps per epoch."""
    model = _fit(tmp_path, CyclicLR(0.1, 1.0, step_size_up="1 epochs"), max_epochs=2, limit_train_batches=0.5,
                 accumulate_grad_batches=2)
    assert used_lrs(model) == CyclicSchedule(0.1, 1.0, 3).values(6)


def test_fractional_epochs(tmp_path: Any) -> None:
    """'2.5 epochs' of 4 optimizer steps is 10 steps; step_size_down '0.5 epochs' is 2."""
    callback = CyclicLR(0.1, 1.0, step_size_up="2.5 epochs", step_size_down="0.5 epochs")
    model = _fit(tmp_path, callback, max_epochs=4, accumulate_grad_batches=3)
    assert used_lrs(model) == CyclicSchedule(0.1, 1.0, 10, 2).values(16)


def test_percent_of_the_fit(tmp_path: Any) -> None:
    """total_steps="50%" of a 3-epoch fit of 10 steps each is 15 steps; the rest holds the final rate."""
    with pytest.warns(LightningCLRWarning, match="past the schedule's end"):
        model = _fit(tmp_path, OneCycleLR(1.0, total_steps="50%", cycle_momentum=False), max_epochs=3)
    expected = OneCycleSchedule(0.04, 1.0, 0.04 / 1e4, 15)
    assert used_lrs(model) == expected.values(30)
    assert used_lrs(model)[14:] == [expected(14)] * 16


def test_percent_follows_max_steps(tmp_path: Any) -> None:
    """The fit's length is estimated_stepping_batches: max_steps=8 caps it, so "50%" is 4 steps."""
    model = _fit(tmp_path, CyclicLR(0.1, 1.0, step_size_up="50%", cycle_momentum=False), max_epochs=5, max_steps=8)
    assert used_lrs(model) == CyclicSchedule(0.1, 1.0, 4).values(8)


def test_steps_as_strings_and_whole_floats(tmp_path: Any) -> None:
    model = _fit(tmp_path, CyclicLR(0.1, 1.0, step_size_up="3 steps", step_size_down=2.0), max_epochs=1)
    assert used_lrs(model) == CyclicSchedule(0.1, 1.0, 3, 2).values(10)


@pytest.mark.parametrize("run", [dict(max_epochs=-1), dict(max_epochs=None, max_time={"seconds": 60})],
                         ids=["max_epochs=-1", "max_time"])
def test_epoch_lengths_work_in_an_endless_run(tmp_path: Any, run: dict) -> None:
    """An endless run (stopped by a callback here) has no total, but its epochs have a length: Lightning skips
    setting up the train loader when estimating an endless run, and the callback sets it up itself."""
    model = RecordingModel(num_batches=10)
    callbacks = [CyclicLR(0.1, 1.0, step_size_up="1 epochs"), _StopAt(12)]
    pl.Trainer(**trainer_kwargs(tmp_path, **run), callbacks=callbacks).fit(model)
    assert used_lrs(model) == CyclicSchedule(0.1, 1.0, 10).values(12)


class _StopAt(pl.Callback):
    def __init__(self, steps: int) -> None:
        self.steps = steps

    def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
        if trainer.global_step >= self.steps:
            trainer.should_stop = True


class _Stream(IterableDataset):
    """A stream with no ``__len__``: Lightning cannot know an epoch's length in advance."""

    def __iter__(self) -> Any:
        generator = torch.Generator().manual_seed(0)
        for _ in range(20):
            yield (torch.randn(4, generator=generator),)


class StreamModel(RecordingModel):
    def train_dataloader(self) -> DataLoader:
        return DataLoader(_Stream(), batch_size=2)


@pytest.mark.parametrize(
    "callback",
    [
        lambda: CyclicLR(0.1, 1.0, step_size_up="1 epochs"),
        lambda: CyclicLR(0.1, 1.0, step_size_up=4, step_size_down="20%"),
        lambda: OneCycleLR(1.0, total_steps="50%"),
        lambda: OneCycleLR(1.0),  # total_steps=None: the whole fit
    ],
    ids=["epochs", "percent", "one-cycle-percent", "one-cycle-whole-fit"],
)
@pytest.mark.parametrize(
    "run", [dict(max_epochs=1, max_steps=-1), dict(max_epochs=None, max_time={"seconds": 30})],
    ids=["max_steps=-1", "max_time"],
)
def test_unknown_run_length_is_a_clear_error_at_fit_start(tmp_path: Any, callback: Any, run: dict) -> None:
    """An IterableDataset without __len__ and no max_steps: neither an epoch nor the fit has a known number of
    steps. A length in epochs or percent raises ValueError at fit start, before any optimizer step."""
    model = StreamModel()
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, **run), callbacks=[callback()])
    with pytest.raises(ValueError, match="unknown"):
        trainer.fit(model)
    assert model.used == []


def test_unknown_epoch_length_with_max_steps(tmp_path: Any) -> None:
    """With max_steps the fit's length is known ("50%" works) but an epoch's still is not."""
    model = StreamModel()
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_steps=6), callbacks=[CyclicLR(0.1, 1.0, "1 epochs")])
    with pytest.raises(ValueError, match=r"Cannot resolve step_size_up='1 epochs'.*steps in an epoch is unknown") as e:
        trainer.fit(model)
    # The user already set max_steps: the message offers what works with it (a share of its 6 steps), not max_steps.
    assert "max_steps" not in str(e.value) and "'P%' of its 6 steps" in str(e.value)
    model = StreamModel()
    pl.Trainer(**trainer_kwargs(tmp_path, max_steps=6), callbacks=[CyclicLR(0.1, 1.0, "50%")]).fit(model)
    assert used_lrs(model) == CyclicSchedule(0.1, 1.0, 3).values(6)


def test_step_lengths_need_no_run_length(tmp_path: Any) -> None:
    model = StreamModel()
    pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=1, max_steps=-1), callbacks=[CyclicLR(0.1, 1.0, 3)]).fit(model)
    assert used_lrs(model) == CyclicSchedule(0.1, 1.0, 3).values(10)


def test_unknown_sizes_name_the_argument_and_offer_what_works() -> None:
    epochs = parse_length("1 epochs", "first_cycle")
    with pytest.raises(ValueError, match=r"Cannot resolve first_cycle='1 epochs'") as err:
        epochs.resolve(steps_per_epoch=None, total_steps=None)
    assert "max_steps=N" in str(err.value)  # neither size known: a finite run is one way out
    with pytest.raises(ValueError, match=r"Cannot resolve total_steps='30%'.*total number of optimizer steps"):
        parse_length("30%", "total_steps").resolve(steps_per_epoch=10, total_steps=math.inf)


def test_an_epoch_length_without_a_dataloader_names_steps_per_epoch() -> None:
    """In a preview there is no dataloader to give a __len__: the message names steps_per_epoch= instead."""
    callback = CyclicLR(base_lr=0.01, max_lr=0.1, step_size_up="2 epochs")
    with pytest.raises(ValueError, match=r"Cannot resolve step_size_up='2 epochs'") as err:
        callback.schedules(total_steps=100)
    message = str(err.value)
    assert "In a preview, pass steps_per_epoch=N" in message
    assert "__len__" not in message and "(got None)" not in message
    assert "'P%' of its 100 steps" in message
    assert callback.schedules(steps_per_epoch=5, total_steps=100)[0][0](10) == pytest.approx(0.1)  # 2 x 5 steps up
    epochs = parse_length("2 epochs", "first_cycle")
    with pytest.raises(ValueError) as fit_error:
        epochs.resolve(None, 60, where="fit")
    with pytest.raises(ValueError) as preview_error:
        epochs.resolve(None, 60, where="preview")
    in_fit, in_preview = str(fit_error.value), str(preview_error.value)
    assert "__len__" in in_fit and "steps_per_epoch" not in in_fit
    assert "steps_per_epoch=N" in in_preview and "__len__" not in in_preview


def test_plotting_an_epoch_length_without_steps_per_epoch_says_to_pass_it() -> None:
    pytest.importorskip("matplotlib")
    with pytest.raises(ValueError, match=r"In a preview, pass steps_per_epoch=N, the optimizer steps in an epoch"):
        CyclicLR(base_lr=0.01, max_lr=0.1, step_size_up="2 epochs").plot(100)


def test_the_argument_name_takes_no_part_in_equality() -> None:
    assert parse_length("2 epochs", "step_size_up") == Length(2.0, "epochs") == parse_length("2 epochs", "first_cycle")
    assert repr(parse_length("2 epochs", "x")) == "Length(value=2.0, unit='epochs')"
    assert parse_length(Length(2.0, "epochs"), "step_size_down").name == "step_size_down"


@pytest.mark.parametrize("spec", ["150%", "100.5 %", "1e3%"])
def test_a_share_over_the_whole_run_is_rejected_at_parse_time(spec: str) -> None:
    expected = rf"Expected step_size_up .* at most 100%, but got '{re.escape(spec)}'.*\(0, 100\]"
    with pytest.raises(ValueError, match=expected):
        parse_length(spec, "step_size_up")
    with pytest.raises(ValueError, match="step_size_up"):
        CyclicLR(0.1, 1.0, step_size_up=spec)
    assert parse_length("100%", "total_steps").resolve(total_steps=37) == 37


def test_an_optional_length_is_none_for_zero_and_otherwise_a_length() -> None:
    from lightning_clr.lengths import parse_optional_length

    assert parse_optional_length(0, "warmup") is None and parse_optional_length(0.0, "warmup") is None
    assert parse_optional_length("5%", "warmup") == parse_length("5%", "warmup")
    assert parse_optional_length(12, "warmup") == parse_length(12, "warmup")
    for bad, match in ((-3, "0 \\(none\\) or a positive length, but got -3"), (True, "warmup"),
                       ("0 steps", "positive"), ("2 weeks", "'2 weeks'")):
        with pytest.raises(ValueError, match=match):
            parse_optional_length(bad, "warmup")
