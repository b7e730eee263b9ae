"""torch.compile: a tensor learning rate stays the same tensor (written in place), and a compiled optimizer step
under the callback compiles once for a whole cycle.

The pain this covers: recompiles under torch.compile when float LRs are written. Dynamo guards on Python floats
in ``param_groups``, so a schedule that writes a new float ``lr`` each step invalidates the compiled
``optimizer.step()``; PyTorch's advice (tutorial "Running the compiled optimizer with an LR Scheduler") is to
create the optimizer with ``lr=torch.tensor(...)``, which only works if whoever sets the rate updates that
tensor in place instead of replacing it with a float.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytorch_lightning as pl
import torch

from lightning_clr import CyclicLR, OneCycleLR
from lightning_clr.schedules import CyclicSchedule, OneCycleSchedule

from helpers import RecordingModel, trainer_kwargs

dynamo = pytest.importorskip("torch._dynamo")
from torch._dynamo.testing import CompileCounter  # noqa: E402

LR = CyclicSchedule(0.01, 0.1, 3)  # a full cycle is 6 steps
STEPS = 12


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    dynamo.reset()
    yield
    dynamo.reset()


class TensorRateModel(RecordingModel):
    """Records, before every optimizer step, the ``lr`` object and its value (and the momentum's)."""

    def __init__(self, lr: float | torch.Tensor, momentum: float | torch.Tensor = 0.0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.initial_lr = lr
        self.initial_momentum = momentum
        self.seen: list[tuple[Any, float, Any, float]] = []

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.initial_lr, momentum=self.initial_momentum)

    def record(self, optimizer: torch.optim.Optimizer) -> None:
        group = optimizer.param_groups[0]
        self.seen.append((group["lr"], float(group["lr"]), group["momentum"], float(group["momentum"])))

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        self.record(optimizer)


class CompiledStepModel(TensorRateModel):
    """Runs the closure itself, then a ``torch.compile``'d ``opt.step()`` (CompileCounter backend: runs
    eagerly and counts every graph Dynamo compiles, so a recompile shows as a second frame)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.counter = CompileCounter()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        optimizer = super().configure_optimizers()

        @torch.compile(backend=self.counter, fullgraph=False)
        def step() -> None:
            optimizer.step()

        self.compiled_step = step
        return optimizer

    def optimizer_step(self, epoch: int, batch_idx: int, optimizer: Any, optimizer_closure: Any = None) -> None:
        optimizer_closure()  # forward, zero_grad, backward
        self.record(optimizer)
        self.compiled_step()


@pytest.mark.parametrize("count_skipped_steps", [True, False])
def test_tensor_lr_and_momentum_are_written_in_place(tmp_path, count_skipped_steps):
    lr, momentum = torch.tensor(0.5), torch.tensor(0.5)
    model = TensorRateModel(lr=lr, momentum=momentum, num_batches=STEPS)
    callback = CyclicLR(base_lr=0.01, max_lr=0.1, step_size_up=3, count_skipped_steps=count_skipped_steps)
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=1), callbacks=[callback])
    trainer.fit(model)
    assert len(model.seen) == STEPS
    assert all(seen_lr is lr for seen_lr, _, _, _ in model.seen), "the lr tensor was replaced"
    assert all(seen_momentum is momentum for _, _, seen_momentum, _ in model.seen), "the momentum tensor was replaced"
    assert trainer.optimizers[0].param_groups[0]["lr"] is lr
    # float32 tensors: the schedule's values, rounded to float32.
    assert [value for _, value, _, _ in model.seen] == pytest.approx(LR.values(STEPS), rel=1e-6)
    assert [value for _, _, _, value in model.seen] == pytest.approx(CyclicSchedule(0.9, 0.8, 3).values(STEPS),
                                                                     rel=1e-6)
    assert lr.item() == pytest.approx(LR(STEPS), rel=1e-6)


def test_adam_tensor_lr_and_betas_are_written_in_place(tmp_path):
    lr, beta1, beta2 = torch.tensor(0.5), torch.tensor(0.5), torch.tensor(0.999)

    def adam(params: Any) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=lr, betas=(beta1, beta2))

    model = RecordingModel(optimizer=adam, num_batches=6)
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=1), callbacks=[OneCycleLR(max_lr=0.2)])
    trainer.fit(model)
    group = trainer.optimizers[0].param_groups[0]
    assert group["lr"] is lr and group["betas"][0] is beta1 and group["betas"][1] is beta2
    expected = OneCycleSchedule(0.2 / 25, 0.2, 0.2 / 25 / 1e4, 6)
    assert [lrs[0] for _, lrs, _ in model.used] == pytest.approx(expected.values(6), rel=1e-6)
    momentum = OneCycleSchedule(0.95, 0.85, 0.95, 6)
    assert [m[0] for _, _, m in model.used] == pytest.approx(momentum.values(6), rel=1e-6)
    assert beta2.item() == pytest.approx(0.999)


@pytest.mark.parametrize("count_skipped_steps", [True, False], ids=["global-step-clock", "step-hook-clock"])
def test_compiled_optimizer_step_with_tensor_lr_does_not_recompile_across_cycles(tmp_path, count_skipped_steps):
    lr = torch.tensor(0.5)
    model = CompiledStepModel(lr=lr, num_batches=STEPS)
    callback = CyclicLR(base_lr=0.01, max_lr=0.1, step_size_up=3, cycle_momentum=False,
                        count_skipped_steps=count_skipped_steps)
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=1), callbacks=[callback])
    trainer.fit(model)
    assert trainer.global_step == STEPS  # two full cycles
    assert model.counter.frame_count == 1, f"{model.counter.frame_count} graphs compiled: the step recompiled"
    assert all(seen_lr is lr for seen_lr, _, _, _ in model.seen)
    assert [value for _, value, _, _ in model.seen] == pytest.approx(LR.values(STEPS), rel=1e-6)
    # Own clock: the step hooks ran (eagerly) at every compiled step; Lightning's clock: global_step is saved.
    expected_count = STEPS
    assert callback.state_dict()["step_counts"] == {"0": expected_count}


def test_compiled_optimizer_step_with_float_lr_recompiles(tmp_path):
    """The contrast that shows the test above can fail: a float rate written each step recompiles."""
    model = CompiledStepModel(lr=0.5, num_batches=STEPS)
    callback = CyclicLR(base_lr=0.01, max_lr=0.1, step_size_up=3, cycle_momentum=False)
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=1), callbacks=[callback])
    trainer.fit(model)
    assert [value for _, value, _, _ in model.seen] == pytest.approx(LR.values(STEPS), rel=1e-12)
    assert model.counter.frame_count >= 2
