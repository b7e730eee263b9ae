"""What a user reads: reprs that show the arguments, errors that name the param group, warnings for a length
longer than the run, and the hint for two callbacks of one class."""

from __future__ import annotations

import pickle
import warnings
from dataclasses import fields
from typing import Any

import pytest
import pytorch_lightning as pl

from lightning_clr import (
    CosineRestartsLR,
    CyclicLR,
    LightningCLRWarning,
    OneCycleLR,
    ScheduledLR,
    SchedulePreviewLogger,
    SnapshotCheckpoint,
)
from lightning_clr.schedules import (
    ConstantSchedule,
    CosineRestartsSchedule,
    CyclicSchedule,
    ExponentialRamp,
    LinearRamp,
    OneCycleSchedule,
)

from helpers import RecordingModel, trainer_kwargs, used_lrs


# ---------------------------------------------------------------------------------------------------- repr
@pytest.mark.parametrize("make,text", [
    (lambda: CyclicLR(base_lr=0.001, max_lr=0.1, step_size_up="2 epochs", mode="triangular2"),
     "CyclicLR(base_lr=0.001, max_lr=0.1, step_size_up='2 epochs', mode='triangular2')"),
    (lambda: CyclicLR(0.01, [0.1, 0.2], optimizers=1, cycle_momentum=False),
     "CyclicLR(base_lr=0.01, max_lr=[0.1, 0.2], cycle_momentum=False, optimizers=[1])"),
    (lambda: OneCycleLR(max_lr=0.1), "OneCycleLR(max_lr=0.1)"),
    (lambda: OneCycleLR(0.1, total_steps="50%", three_phase=True),
     "OneCycleLR(max_lr=0.1, total_steps='50%', three_phase=True)"),
    (lambda: CosineRestartsLR(max_lr="auto", first_cycle=500, t_mul=2),
     "CosineRestartsLR(max_lr='auto', first_cycle=500, t_mul=2.0)"),
    (lambda: ScheduledLR(ConstantSchedule(0.1), logging_name="lr"),
     "ScheduledLR(lr=ConstantSchedule(value=0.1), logging_name='lr')"),
    (lambda: SnapshotCheckpoint(dirpath="snaps", keep_last=3), "SnapshotCheckpoint(dirpath='snaps', keep_last=3)"),
    (lambda: SchedulePreviewLogger(steps=100), "SchedulePreviewLogger(steps=100)"),
])
def test_callbacks_repr_shows_the_arguments_given(make: Any, text: str) -> None:
    assert repr(make()) == text


@pytest.mark.parametrize("schedule", [
    CyclicSchedule(0.1, 1.0, 3, mode="triangular2"),
    OneCycleSchedule(0.04, 1.0, 4e-6, 10),
    CosineRestartsSchedule(1.0, 10, t_mul=2.0),
    ConstantSchedule(0.5),
    LinearRamp(0.0, 1.0, 5),
    ExponentialRamp(1e-3, 1.0, 5),
], ids=lambda s: type(s).__name__)
def test_schedules_repr_equality_and_pickle_show_only_their_fields(schedule: Any) -> None:
    """The constants a schedule works out once are no fields: not in repr, not compared, not pickled."""
    text = repr(schedule)
    shown = ", ".join(f"{f.name}={getattr(schedule, f.name)!r}" for f in fields(schedule))
    assert text == f"{type(schedule).__name__}({shown})"
    values = schedule.values(30)
    copy = pickle.loads(pickle.dumps(schedule))
    assert copy == schedule and repr(copy) == text and hash(copy) == hash(schedule)
    assert copy.values(30) == values
    assert len(pickle.dumps(schedule)) < 400  # the fields only


# ---------------------------------------------------------------------------------------------------- errors
def test_per_group_bound_violation_names_the_group() -> None:
    with pytest.raises(ValueError, match=r"max_lr > base_lr in param group 1, but got base_lr=0\.2, max_lr=0\.15"):
        CyclicLR(base_lr=[0.1, 0.2], max_lr=[1.0, 0.15])
    with pytest.raises(ValueError, match=r"max_lr > base_lr in param group 0, but got base_lr=0\.5, max_lr=0\.3"):
        CyclicLR(base_lr=0.5, max_lr=[0.3, 1.0])
    with pytest.raises(ValueError, match=r"param group 1: -0\.1"):
        CyclicLR(base_lr=[0.1, -0.1], max_lr=1.0)


def test_two_callbacks_of_one_class_point_to_optimizers(tmp_path: Any) -> None:
    """Lightning refuses two callbacks with one state key when the Trainer is built, before any callback code
    runs, and tells the user to consult the callback's documentation: that documentation names the fix."""
    with pytest.raises(RuntimeError, match=r"documentation of `CyclicLR`"):
        pl.Trainer(**trainer_kwargs(tmp_path), callbacks=[CyclicLR(0.1, 1.0), CyclicLR(0.1, 1.0)])
    for cls in (CyclicLR, OneCycleLR, CosineRestartsLR, ScheduledLR):
        assert "optimizers=[...]" in (cls.__doc__ or ""), cls
    assert CyclicLR(0.1, 1.0, optimizers=[0]).state_key != CyclicLR(0.1, 1.0, optimizers=[1]).state_key


# ---------------------------------------------------------------------------------------------------- warnings
@pytest.mark.parametrize("callback,argument,shown", [
    (lambda: CyclicLR(0.1, 1.0, step_size_up="5000 steps", cycle_momentum=False), "step_size_up", "'5000 steps'"),
    (lambda: CyclicLR(0.1, 1.0, step_size_up=3, step_size_down=50, cycle_momentum=False), "step_size_down", "50"),
    (lambda: OneCycleLR(1.0, total_steps="3 epochs", cycle_momentum=False), "total_steps", "'3 epochs'"),
    (lambda: CosineRestartsLR(1.0, first_cycle=11), "first_cycle", "11"),
], ids=["step_size_up", "step_size_down", "total_steps", "first_cycle"])
def test_a_length_longer_than_the_run_warns_at_fit_start(tmp_path: Any, callback: Any, argument: str,
                                                          shown: str) -> None:
    model = RecordingModel(num_batches=10)
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=1), callbacks=[callback()])
    with pytest.warns(LightningCLRWarning,
                      match=rf"{argument}={shown} resolves to \d+ optimizer steps, longer than the "
                            r"whole fit \(10 steps\)"):
        trainer.fit(model)
    assert len(used_lrs(model)) == 10  # a warning, not an error


def test_lengths_within_the_run_do_not_warn(tmp_path: Any) -> None:
    callback = CyclicLR(0.1, 1.0, step_size_up="1 epochs", step_size_down=5, cycle_momentum=False)
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=1), callbacks=[callback])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(RecordingModel(num_batches=10))
    assert not [w for w in caught if "longer than the whole fit" in str(w.message)]
