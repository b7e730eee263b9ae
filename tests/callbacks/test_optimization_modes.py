"""Every optimization mode: manual optimization with several optimizers, AMP steps the GradScaler skips,
LBFGS's repeated closures, evaluation loops, a second ``fit`` and two callbacks on one Trainer.

The AMP tests are about Lightning issues #5558 and #16228: a step the GradScaler skips (inf/NaN gradients)
still advances ``trainer.global_step`` and Lightning still steps LR schedulers, so an epoch- or step-based
scheduler runs ahead of the updates that really happened. ``count_skipped_steps`` chooses the clock.
On CPU, ``precision="16-mixed"`` silently becomes bfloat16 with no GradScaler, so the tests pass the
plugin with a CPU GradScaler themselves.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from lightning_clr import CosineRestartsLR, CyclicLR, LightningCLRWarning, OneCycleLR
from lightning_clr.schedules import CosineRestartsSchedule, CyclicSchedule, OneCycleSchedule

from helpers import InfLossModel, ListLogger, RecordingModel, amp_plugin, trainer_kwargs, used_lrs, used_momenta

LR = CyclicSchedule(0.01, 0.1, 3)
MOMENTUM = CyclicSchedule(0.9, 0.8, 3)


def cyclic(**kwargs: Any) -> CyclicLR:
    return CyclicLR(base_lr=0.01, max_lr=0.1, step_size_up=3, **kwargs)


# ---------------------------------------------------------------------------------------------------- manual
class GanLike(pl.LightningModule):
    """Manual optimization with two optimizers: A (SGD, the "generator") steps every batch, B (Adam, the
    "discriminator") every ``b_every``-th batch. ``used[i]`` gets ``(lr, momentum or beta1)`` per real
    step of optimizer ``i``, read in ``on_before_optimizer_step`` (what that step applies)."""

    def __init__(self, num_batches: int = 8, b_every: int = 2) -> None:
        super().__init__()
        self.automatic_optimization = False
        torch.manual_seed(0)
        self.gen = torch.nn.Linear(4, 4)
        self.disc = torch.nn.Linear(4, 1)
        self.b_every = b_every
        self.data = torch.randn(num_batches * 2, 4, generator=torch.Generator().manual_seed(0))
        self.used: dict[int, list[tuple[float, float]]] = {0: [], 1: []}

    def training_step(self, batch: Any, batch_idx: int) -> None:
        opt_a, opt_b = self.optimizers()
        x = batch[0]
        loss_a = self.disc(torch.relu(self.gen(x))).pow(2).mean()
        opt_a.zero_grad()
        self.manual_backward(loss_a)
        opt_a.step()
        if batch_idx % self.b_every == self.b_every - 1:
            loss_b = (self.disc(x) - 1).pow(2).mean()
            opt_b.zero_grad()
            self.manual_backward(loss_b)
            opt_b.step()

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        index = [id(o) for o in self.trainer.optimizers].index(id(optimizer))
        group = optimizer.param_groups[0]
        momentum = group["betas"][0] if "betas" in group else group["momentum"]
        self.used[index].append((float(group["lr"]), float(momentum)))

    def configure_optimizers(self) -> Any:
        return [torch.optim.SGD(self.gen.parameters(), lr=1.0, momentum=0.5),
                torch.optim.Adam(self.disc.parameters(), lr=1.0, betas=(0.5, 0.999))]

    def train_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(self.data), batch_size=2)


def lrs(model: GanLike, index: int) -> list[float]:
    return [lr for lr, _ in model.used[index]]


def momenta(model: GanLike, index: int) -> list[float]:
    return [m for _, m in model.used[index]]


def test_manual_two_optimizers_follow_their_own_step_counts(tmp_path):
    model = GanLike()
    callback = cyclic()
    logger = ListLogger()
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=2, logger=logger, log_every_n_steps=1),
                         callbacks=[callback, LearningRateMonitor(logging_interval="step", log_momentum=True)])
    trainer.fit(model)
    # global_step counts the steps of both optimizers: 16 + 8.
    assert trainer.global_step == 24
    assert lrs(model, 0) == pytest.approx(LR.values(16), rel=1e-12)
    assert momenta(model, 0) == pytest.approx(MOMENTUM.values(16), rel=1e-12)
    assert lrs(model, 1) == pytest.approx(LR.values(8), rel=1e-12)  # its own clock, not global_step
    assert momenta(model, 1) == pytest.approx(MOMENTUM.values(8), rel=1e-12)  # Adam's beta1
    assert trainer.optimizers[1].param_groups[0]["betas"][1] == 0.999
    # The counts Lightning does not keep are in the callback's state, hence in checkpoints.
    assert callback.state_dict()["step_counts"] == {"0": 16, "1": 8}
    trainer.save_checkpoint(tmp_path / "end.ckpt")
    checkpoint = torch.load(tmp_path / "end.ckpt", weights_only=False)
    assert checkpoint["callbacks"]["CyclicLR"]["step_counts"] == {"0": 16, "1": 8}

    # Logged at every batch start: the callback's and the LearningRateMonitor's rows (the monitor is after the
    # callback here, before it in the DDP test) show the rate the optimizer's next step applies. A steps at
    # every batch; B at odd batches, with the value logged there.
    for name in ("lr-clr-SGD", "lr-SGD"):
        assert [v for _, v in logger.series(name)] == pytest.approx(lrs(model, 0), rel=1e-12), name
    for name in ("lr-clr-SGD-momentum", "lr-SGD-momentum"):
        assert [v for _, v in logger.series(name)] == pytest.approx(momenta(model, 0), rel=1e-12), name
    for name in ("lr-clr-Adam", "lr-Adam"):
        at_b_steps = [v for _, v in logger.series(name)][1::2]
        assert at_b_steps == pytest.approx(lrs(model, 1), rel=1e-12), name
    assert [v for _, v in logger.series("lr-Adam-momentum")][1::2] == pytest.approx(momenta(model, 1), rel=1e-12)


def test_manual_optimizers_index_drives_only_that_optimizer(tmp_path):
    model = GanLike()
    callback = cyclic(optimizers=[1])
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=1), callbacks=[callback])
    trainer.fit(model)
    assert lrs(model, 0) == [1.0] * 8 and momenta(model, 0) == [0.5] * 8  # A: untouched
    assert lrs(model, 1) == pytest.approx(LR.values(4), rel=1e-12)
    assert momenta(model, 1) == pytest.approx(MOMENTUM.values(4), rel=1e-12)
    assert callback.state_key == "CyclicLR{'optimizers': [1]}"
    assert callback.state_dict()["step_counts"] == {"1": 4}


@pytest.mark.parametrize("optimizers", [None, [1]])
def test_manual_resume_reproduces_the_uninterrupted_run(tmp_path, optimizers):
    reference = GanLike()
    pl.Trainer(**trainer_kwargs(tmp_path / "ref", max_epochs=2), callbacks=[cyclic(optimizers=optimizers)]).fit(
        reference)

    first = GanLike()
    trainer = pl.Trainer(**trainer_kwargs(tmp_path / "a", max_epochs=1), callbacks=[cyclic(optimizers=optimizers)])
    trainer.fit(first)
    trainer.save_checkpoint(tmp_path / "epoch1.ckpt")
    assert first.used == {0: reference.used[0][:8], 1: reference.used[1][:4]}

    resumed = GanLike()
    callback = cyclic(optimizers=optimizers)
    trainer = pl.Trainer(**trainer_kwargs(tmp_path / "b", max_epochs=2), callbacks=[callback])
    trainer.fit(resumed, ckpt_path=tmp_path / "epoch1.ckpt")
    assert trainer.global_step == 24
    assert lrs(resumed, 0) == pytest.approx(lrs(reference, 0)[8:], rel=1e-12)
    assert momenta(resumed, 0) == pytest.approx(momenta(reference, 0)[8:], rel=1e-12)
    assert lrs(resumed, 1) == pytest.approx(lrs(reference, 1)[4:], rel=1e-12)
    assert momenta(resumed, 1) == pytest.approx(momenta(reference, 1)[4:], rel=1e-12)
    expected_counts = {"0": 16, "1": 8} if optimizers is None else {"1": 8}
    assert callback.state_dict()["step_counts"] == expected_counts


# ---------------------------------------------------------------------------------------------------- AMP
@pytest.mark.parametrize("manual", [False, True], ids=["automatic", "manual"])
@pytest.mark.parametrize("count_skipped_steps", [True, False])
def test_amp_skipped_steps(tmp_path, manual, count_skipped_steps):
    model = InfLossModel(inf_batches=(2, 5), manual=manual, num_batches=8)
    callback = cyclic(count_skipped_steps=count_skipped_steps)
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=1, plugins=[amp_plugin()]), callbacks=[callback])
    assert trainer.precision_plugin.scaler is not None
    trainer.fit(model)
    assert model.updated_at == [0, 1, 3, 4, 6, 7]  # the GradScaler skipped exactly steps 2 and 5
    assert trainer.global_step == 8  # which Lightning still counts (#5558, #16228)
    if count_skipped_steps:
        clock = list(range(8))  # follows global_step: a skipped step uses up its rate
        expected_counts = {"0": 8}  # automatic: Lightning's global_step is saved as the count
    else:
        clock = [0, 1, 2, 2, 3, 4, 4, 5]  # only real updates advance: the step after a skip reuses the rate
        expected_counts = {"0": 6}
    assert used_lrs(model) == pytest.approx([LR(s) for s in clock], rel=1e-12)
    assert used_momenta(model) == pytest.approx([MOMENTUM(s) for s in clock], rel=1e-12)
    assert callback.state_dict()["step_counts"] == expected_counts
    next_step = 8 if count_skipped_steps else 6
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(LR(next_step), rel=1e-12)


def test_amp_own_clock_resumes_from_the_checkpoint(tmp_path):
    model = InfLossModel(inf_batches=(2, 5), num_batches=8)
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=1, plugins=[amp_plugin()]),
                         callbacks=[cyclic(count_skipped_steps=False)])
    trainer.fit(model)
    trainer.save_checkpoint(tmp_path / "epoch1.ckpt")

    resumed = InfLossModel(inf_batches=(), num_batches=8)
    callback = cyclic(count_skipped_steps=False)
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=2, plugins=[amp_plugin()]), callbacks=[callback])
    trainer.fit(resumed, ckpt_path=tmp_path / "epoch1.ckpt")
    # 6 real updates before the checkpoint; global_step (16) never enters this clock.
    assert used_lrs(resumed) == pytest.approx(LR.values(14)[6:], rel=1e-12)
    assert callback.state_dict()["step_counts"] == {"0": 14}


# ---------------------------------------------------------------------------------------------------- LBFGS
class LBFGSModel(RecordingModel):
    """LBFGS (``max_iter=3``: up to 3 closure evaluations per step). ``step_lrs`` records ``lr`` in a torch
    pre-step hook, the value LBFGS reads before it first calls the closure; ``closure_calls`` counts them."""

    def __init__(self, manual: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.automatic_optimization = not manual
        self.step_lrs: list[float] = []
        self.closure_calls = 0

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        if self.automatic_optimization:
            self.closure_calls += 1
            return super().training_step(batch, batch_idx)
        optimizer = self.optimizers()

        def closure() -> torch.Tensor:
            self.closure_calls += 1
            optimizer.zero_grad()
            loss = super(LBFGSModel, self).training_step(batch, batch_idx)
            self.manual_backward(loss)
            return loss

        optimizer.step(closure=closure)
        return None

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.LBFGS(self.parameters(), lr=1.0, max_iter=3)
        optimizer.register_step_pre_hook(self._record)
        return optimizer

    def _record(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        self.step_lrs.append(float(optimizer.param_groups[0]["lr"]))


@pytest.mark.parametrize("manual", [False, True], ids=["automatic", "manual"])
@pytest.mark.parametrize("count_skipped_steps", [True, False])
def test_lbfgs_rate_set_before_the_step_and_closures_do_not_advance_the_clock(tmp_path, manual,
                                                                                count_skipped_steps):
    model = LBFGSModel(manual=manual, num_batches=6)
    callback = CyclicLR(base_lr=0.1, max_lr=1.0, step_size_up=2, cycle_momentum=False,
                        count_skipped_steps=count_skipped_steps)
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=1), callbacks=[callback])
    trainer.fit(model)
    assert trainer.global_step == 6
    assert model.closure_calls > 6  # LBFGS really evaluated the closure several times per step
    expected = CyclicSchedule(0.1, 1.0, 2)
    assert model.step_lrs == pytest.approx(expected.values(6), rel=1e-12)
    assert callback.state_dict()["step_counts"] == {"0": 6}  # own clock, or global_step saved as the count
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(expected(6), rel=1e-12)


# ---------------------------------------------------------------------------------------------------- eval loops
class EvalModel(RecordingModel):
    def test_step(self, batch: Any, batch_idx: int) -> None:
        self.log("test_loss", self(batch[0]).pow(2).mean())

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self(batch[0])

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()

    def predict_dataloader(self) -> DataLoader:
        return self.val_dataloader()


def optimizer_snapshot(optimizer: torch.optim.Optimizer) -> tuple[Any, ...]:
    group = optimizer.param_groups[0]
    return (group["lr"], group["momentum"], len(optimizer._optimizer_step_pre_hooks),
            len(optimizer._optimizer_step_post_hooks))


@pytest.mark.parametrize("count_skipped_steps", [True, False])
def test_validate_test_predict_change_nothing(tmp_path, count_skipped_steps):
    model = EvalModel(num_batches=5)
    callback = cyclic(count_skipped_steps=count_skipped_steps)
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=1), callbacks=[callback])
    # Before any fit: nothing to drive, nothing raised, nothing written.
    trainer.validate(model, verbose=False)
    assert callback.state_dict()["step_counts"] == {}
    trainer.fit(model)
    optimizer = trainer.optimizers[0]
    before = (optimizer_snapshot(optimizer), callback.state_dict(), trainer.global_step)
    assert before[0] == (LR(5), MOMENTUM(5), 0, 0)  # fit end removed the step hooks
    trainer.validate(model, verbose=False)
    trainer.test(model, verbose=False)
    trainer.predict(model)
    assert (optimizer_snapshot(optimizer), callback.state_dict(), trainer.global_step) == before
    assert len(model.used) == 5


class HookCountingModel(RecordingModel):
    """Records, at every batch, how many step hooks the optimizer has."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hook_counts: list[tuple[int, int]] = []
        self.optimizer_ids: list[int] = []

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        optimizer = self.trainer.optimizers[0]
        self.optimizer_ids.append(id(optimizer))
        self.hook_counts.append((len(optimizer._optimizer_step_pre_hooks), len(optimizer._optimizer_step_post_hooks)))


@pytest.mark.parametrize("count_skipped_steps", [True, False])
def test_fit_twice_registers_nothing_twice_and_continues_the_clock(tmp_path, count_skipped_steps):
    model = HookCountingModel(num_batches=5)
    callback = cyclic(count_skipped_steps=count_skipped_steps)
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=1), callbacks=[callback])
    trainer.fit(model)
    first_optimizer = trainer.optimizers[0]
    trainer.fit_loop.max_epochs = 2
    trainer.fit(model)
    assert trainer.global_step == 10
    assert trainer.optimizers[0] is not first_optimizer  # configure_optimizers ran again
    assert len(set(model.optimizer_ids)) == 2
    hooks = (1, 1) if not count_skipped_steps else (0, 0)
    assert model.hook_counts == [hooks] * 10
    assert optimizer_snapshot(first_optimizer)[2:] == (0, 0)
    assert optimizer_snapshot(trainer.optimizers[0])[2:] == (0, 0)
    # The second fit continues the clock: steps 5..9, not 0..4 again.
    assert used_lrs(model) == pytest.approx(LR.values(10), rel=1e-12)
    assert used_momenta(model) == pytest.approx(MOMENTUM.values(10), rel=1e-12)
    assert callback.state_dict()["step_counts"] == {"0": 10}


# ---------------------------------------------------------------------------------------------------- two callbacks
def test_two_callbacks_on_different_optimizers_get_distinct_checkpoint_keys(tmp_path):
    model = GanLike()
    first = cyclic(optimizers=[0])
    second = CosineRestartsLR(max_lr=0.5, first_cycle=3, optimizers=[1])
    third_key_check = CyclicLR(base_lr=0.01, max_lr=0.1, optimizers=[1])
    assert first.state_key != third_key_check.state_key  # same class, other optimizer: another key
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=1), callbacks=[first, second])
    trainer.fit(model)
    assert lrs(model, 0) == pytest.approx(LR.values(8), rel=1e-12)
    assert lrs(model, 1) == pytest.approx(CosineRestartsSchedule(0.5, 3).values(4), rel=1e-12)
    assert momenta(model, 1) == [0.5] * 4  # CosineRestartsLR does not cycle the momentum
    trainer.save_checkpoint(tmp_path / "both.ckpt")
    states = torch.load(tmp_path / "both.ckpt", weights_only=False)["callbacks"]
    assert states["CyclicLR{'optimizers': [0]}"]["step_counts"] == {"0": 8}
    assert states["CosineRestartsLR{'optimizers': [1]}"]["step_counts"] == {"1": 4}

    # Resuming restores each callback's own state.
    resumed = GanLike()
    callbacks = [cyclic(optimizers=[0]), CosineRestartsLR(max_lr=0.5, first_cycle=3, optimizers=[1])]
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=2), callbacks=callbacks)
    trainer.fit(resumed, ckpt_path=tmp_path / "both.ckpt")
    assert lrs(resumed, 0) == pytest.approx(LR.values(16)[8:], rel=1e-12)
    assert lrs(resumed, 1) == pytest.approx(CosineRestartsSchedule(0.5, 3).values(8)[4:], rel=1e-12)


@pytest.mark.parametrize(
    "callbacks",
    [
        lambda: [cyclic(optimizers=[0, 1]), OneCycleLR(max_lr=0.1, optimizers=[1])],
        lambda: [cyclic(), OneCycleLR(max_lr=0.1, optimizers=[0])],
        lambda: [cyclic(), OneCycleLR(max_lr=0.1)],
    ],
    ids=["overlap", "all-and-one", "all-and-all"],
)
def test_two_callbacks_driving_the_same_optimizer_is_a_clear_error(tmp_path, callbacks):
    model = GanLike()
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=1), callbacks=callbacks())
    message = r"would both set the learning rate of the same optimizer.*optimizers=\[\.\.\.\]"
    with pytest.raises(ValueError, match=message):
        trainer.fit(model)
    assert model.used == {0: [], 1: []}


def test_two_identical_callbacks_fail_at_trainer_init(tmp_path):
    with pytest.raises(RuntimeError, match=r"more than one stateful callback of type `CyclicLR`.*state_key"):
        pl.Trainer(**trainer_kwargs(tmp_path), callbacks=[cyclic(), cyclic()])


def test_one_cycle_under_manual_optimization_ends_where_each_optimizer_ends(tmp_path):
    """OneCycleLR(total_steps=None) takes the fit's length; under manual optimization give each optimizer its
    own length when they step at different rates (here A: 8 steps, B: 4)."""
    model = GanLike()
    callbacks = [OneCycleLR(max_lr=0.4, total_steps=8, optimizers=[0]),
                 OneCycleLR(max_lr=0.4, total_steps=4, optimizers=[1])]
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=1), callbacks=callbacks)
    trainer.fit(model)
    assert lrs(model, 0) == pytest.approx(OneCycleSchedule(0.016, 0.4, 0.016 / 1e4, 8).values(8), rel=1e-12)
    assert lrs(model, 1) == pytest.approx(OneCycleSchedule(0.016, 0.4, 0.016 / 1e4, 4).values(4), rel=1e-12)


def test_resume_that_switches_to_the_own_clock_continues_from_the_saved_step(tmp_path):
    """A checkpoint saved under Lightning's clock (count_skipped_steps=True) holds global_step as the count, so a
    resume with count_skipped_steps=False continues at that step instead of restarting the schedule at 0."""
    schedule = CyclicSchedule(0.1, 1.0, 3)
    first = RecordingModel(num_batches=5)
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, every_n_epochs=1)
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=1, enable_checkpointing=True),
                         callbacks=[CyclicLR(0.1, 1.0, step_size_up=3, cycle_momentum=False), checkpoint])
    trainer.fit(first)
    assert used_lrs(first) == pytest.approx(schedule.values(5), rel=1e-12)

    resumed = RecordingModel(num_batches=5)
    callback = CyclicLR(0.1, 1.0, step_size_up=3, cycle_momentum=False, count_skipped_steps=False)
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=2), callbacks=[callback])
    with pytest.warns(LightningCLRWarning, match="other arguments"):
        trainer.fit(resumed, ckpt_path=str(tmp_path / "ckpt" / "last.ckpt"))
    assert used_lrs(resumed) == pytest.approx([schedule(s) for s in range(5, 10)], rel=1e-12)
    assert callback.state_dict()["step_counts"] == {"0": 10}
