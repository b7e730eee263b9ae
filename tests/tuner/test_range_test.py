"""The LR range test: its sweep, the suggestion rule on literal curves, exact restoration (weights, optimizer
state, global_step, random states, data order), "auto" bounds of the schedule callbacks from Python and from
LightningCLI YAML, divergence and NaN, DDP, the standalone function and the figure.

The integration tests run on scikit-learn's bundled digits (examples/digits.py): 1,078 training samples, 17
batches of 64 per epoch.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import math
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader
from torchmetrics.classification import MulticlassAccuracy

from lightning_clr import LightningCLRWarning

from helpers import EndsDistributedCleanly, trainer_kwargs

pytest.importorskip("sklearn")

from lightning_clr import (
    CosineRestartsLR,
    CyclicLR,
    CyclicSchedule,
    LRRangeTest,
    OneCycleLR,
    RangeTestError,
    RangeTestResult,
    lr_range_test,
)
from lightning_clr.tuner.curve import analysis_curve, smooth_losses, zero_phase_smooth
from lightning_clr.tuner.range_test import describe
from lightning_clr.tuner.result import build_result

# Most tests here sweep a few steps over seven decades, where the loss is often still falling at the end: the
# note's warning is expected (test_a_note_is_warned_once checks it is given).
pytestmark = pytest.mark.filterwarnings("ignore:LRRangeTest. the loss was still falling:UserWarning")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
sys.path.insert(0, str(EXAMPLES))
from digits import DigitsClassifier, DigitsDataModule  # noqa: E402

STEPS_PER_EPOCH = 17  # ceil(1078 / 64)


# ---------------------------------------------------------------------------------------------- models and probes
class Digits(DigitsClassifier):
    """The example classifier that also counts its training_step calls (the range test's and the training's),
    records the batches and the rate each real optimizer step used, and optionally has dropout."""

    def __init__(self, hidden: int = 32, dropout: float = 0.0, optimizer: str = "sgd") -> None:
        super().__init__(hidden=hidden)
        if dropout:
            self.net = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 10))
        self.optimizer_name = optimizer
        self.calls = 0
        self.first_loss: float | None = None
        self.seen: list[tuple[list[int], float]] = []
        self.used_lr: list[tuple[int, float]] = []
        self.train_acc = MulticlassAccuracy(num_classes=10, average="micro")

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        self.calls += 1
        self.train_acc(self(batch[0]), batch[1])
        loss = super().training_step(batch, batch_idx)
        if self.first_loss is None:
            self.first_loss = float(loss.detach())
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.seen.append((batch[1].tolist(), float(outputs["loss"])))

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        self.used_lr.append((self.trainer.global_step, float(optimizer.param_groups[0]["lr"])))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        if self.optimizer_name == "adam":
            return torch.optim.Adam(self.parameters(), lr=1e-3)
        return super().configure_optimizers()


class GlobalShuffleDigits(DigitsDataModule):
    """Shuffles with the global torch RNG (no generator of its own)."""

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)


class Probe(Callback):
    """Copies, at train start, everything the range test must leave as it found it."""

    def __init__(self) -> None:
        self.seen: dict[str, Any] = {}

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        optimizer = trainer.optimizers[0]
        self.seen = {
            "tensors": {k: v.detach().clone() for k, v in pl_module.state_dict().items()},
            "optimizer": copy.deepcopy(optimizer.state_dict()),
            "group_ids": [id(g) for g in optimizer.param_groups],
            "state_ids": id(optimizer.state),
            "global_step": trainer.global_step,
            "torch_rng": torch.get_rng_state(),
            "calls": pl_module.calls,
            "training": pl_module.training,
            "metric": (pl_module.train_acc._update_count,
                       {k: v.clone() for k, v in pl_module.train_acc.metric_state.items()}),
        }


class ResultWriter(Callback):
    """Writes this rank's range test result and its first local loss to a file (for ddp_spawn)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        test = next(cb for cb in trainer.callbacks if isinstance(cb, LRRangeTest))
        with open(Path(self.directory) / f"rank{trainer.global_rank}.json", "w") as file:
            json.dump({"result": test.result.to_dict(), "first_loss": pl_module.first_loss,
                       "world_size": trainer.world_size}, file)


def quiet(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    return trainer_kwargs(tmp_path, **{"limit_val_batches": 0, **overrides})


def fit(tmp_path: Path, callbacks: list, model: Callable[[], Digits] = Digits, datamodule: Any = None,
        seed: int = 0, **overrides: Any) -> tuple[pl.Trainer, Digits]:
    """Seeds, builds the model (``model`` is a class or factory) and fits it on digits."""
    pl.seed_everything(seed, verbose=False)
    model = model()
    trainer = pl.Trainer(callbacks=callbacks, **quiet(tmp_path, **overrides))
    trainer.fit(model, datamodule=datamodule or DigitsDataModule(batch_size=64))
    return trainer, model


def assert_same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def assert_same_optimizer_state(a: dict, b: dict) -> None:
    assert a["param_groups"] == b["param_groups"]
    assert a["state"].keys() == b["state"].keys()
    for index in a["state"]:
        assert a["state"][index].keys() == b["state"][index].keys()
        for key, value in a["state"][index].items():
            other = b["state"][index][key]
            assert torch.equal(value, other) if isinstance(value, torch.Tensor) else value == other


# ---------------------------------------------------------------------------------------------- arguments
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_lr": 0.0}, r"min_lr to be a number in \(0, inf\)"),
        ({"max_lr": math.inf}, r"max_lr to be a number in \(0, inf\)"),
        ({"min_lr": 1.0, "max_lr": 0.5}, "max_lr > min_lr"),
        ({"num_steps": 5}, "num_steps to be an int of at least 10 steps"),
        ({"num_steps": 50.0}, "num_steps to be an int of at least 10 steps"),
        ({"mode": "cosine"}, r"mode to be one of \('exponential', 'linear'\)"),
        ({"smoothing": 0.0}, r"smoothing to be a number in \(0, 1\]"),
        ({"smoothing": 1.5}, r"smoothing to be a number in \(0, 1\]"),
        ({"divergence_threshold": 1.0}, r"divergence_threshold to be a number in \(1, inf\) \(or None\)"),
        ({"step_size_epochs": 0}, "step_size_epochs to be a number in"),
        ({"plot": "yes"}, "plot to be True or False"),
        ({"steps_per_decade": 0.5}, "steps_per_decade to be a number in"),
        ({"rules": {"onecycle": min}}, "a key of rules to be one of"),
        ({"rules": {"one_cycle": 0.1}}, r"rules\['one_cycle'\] to be a callable"),
    ],
)
def test_invalid_arguments_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=f"Expected {match}.*but got"):
        LRRangeTest(**kwargs)


def test_sweep_rates_exponential_and_linear():
    exponential = LRRangeTest(min_lr=1e-4, max_lr=1e2, num_steps=13)
    assert [exponential.lr_at(k) for k in (0, 2, 6, 12)] == pytest.approx([1e-4, 1e-3, 1e-1, 1e2], rel=1e-12)
    linear = LRRangeTest(min_lr=0.1, max_lr=1.0, num_steps=10, mode="linear")
    assert [linear.lr_at(k) for k in (0, 1, 9)] == pytest.approx([0.1, 0.2, 1.0], rel=1e-12)


# ---------------------------------------------------------------------------------------------- the analysis
def test_smooth_losses_is_fastais_bias_corrected_average():
    # avg: 0.5, 1.25, 2.125; divided by 1 - 0.5 ** k: 0.5, 0.75, 0.875.
    assert smooth_losses([1.0, 2.0, 3.0], 0.5) == pytest.approx([1.0, 1.25 / 0.75, 2.125 / 0.875], rel=1e-12)
    assert smooth_losses([3.0, 1.0], 1.0) == [3.0, 1.0]


def test_zero_phase_smoothing_is_centred():
    impulse = [0.0] * 201
    impulse[100] = 1.0
    causal, centred = smooth_losses(impulse, 0.2), zero_phase_smooth(impulse, 0.2)
    assert max(range(201), key=causal.__getitem__) == 100 and causal[99] == 0.0  # one-sided: all weight after
    assert max(range(201), key=centred.__getitem__) == 100
    assert centred[95] == pytest.approx(centred[105], rel=1e-6)  # symmetric around the impulse


def test_analysis_curve_drops_spikes_and_clips_the_explosion():
    losses = [2.0] * 10 + [1.0] * 10 + [50.0] * 3
    losses[5] = 9.0  # a single-step spike
    curve = analysis_curve(losses, smoothing=0.25)  # weight 1.0: no averaging, only median and clipping
    assert curve[5] == 2.0
    assert curve[-1] == 2.0  # clipped to the starting level


def _piecewise_curve() -> tuple[list[float], list[float]]:
    # 80 rates, a tenth of a decade apart from 1e-4; the loss is 2.0 up to step 20, falls linearly by 1/45 per
    # step to 1.0 at step 65, stays there to step 72, then explodes.
    lrs = [1e-4 * 10 ** (k / 10) for k in range(80)]
    losses = [2.0 - max(0, min(k, 65) - 20) / 45 for k in range(73)] + [3.0, 5.0, 9.0, 17.0, 33.0, 65.0, 99.0]
    return lrs, losses


def test_result_round_trips_through_a_dict_and_json():
    lrs, losses = _piecewise_curve()
    result = RangeTestResult(lrs=lrs, losses=losses, smoothed_losses=smooth_losses(losses, 0.05),
                             base_lr=lrs[61] / 10, max_lr=lrs[61], step_size_up=68, steps_per_epoch=17,
                             stopped_early=False, reason="completed num_steps=80")
    assert RangeTestResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    with pytest.raises(AttributeError):
        result.base_lr = 1.0  # frozen



def test_a_result_prints_as_a_summary_not_as_its_curve():
    lrs, losses = _piecewise_curve()
    kwargs = dict(smoothing=0.05, stopped_early=False, reason="completed num_steps=80", steps_per_epoch=17,
                  step_size_epochs=4.0, mode="exponential", total_steps=320)
    result = build_result(lrs, losses, **kwargs)
    text = repr(result)
    assert len(text) < 400, text  # print(result) once showed the whole curve (7,287 characters)
    assert text.startswith(f"RangeTestResult(80 steps; lr 0.0001..{lrs[-1]:.3g}; one_cycle: max_lr=")
    for policy in ("one_cycle", "cyclic", "cosine_restarts"):
        assert f"{policy}: " in text and f"max_lr={result.suggest(policy).max_lr:.3g}" in text
    assert f"base_lr={result.suggest('cyclic').base_lr:.3g}" in text
    assert f"step_size_up={result.step_size_up}" in text and "ended: completed num_steps=80" in text
    failed = repr(build_result(lrs[:3], losses[:3], **kwargs))
    assert failed.startswith("RangeTestResult(3 steps; lr 0.0001..0.000158; no suggestion: ") and "ended: " in failed
    assert str(result) == text


def test_the_range_test_repr_shows_only_the_arguments_given():
    assert repr(LRRangeTest()) == "LRRangeTest()"
    assert LRRangeTest().sweep_steps == 113  # 7 decades x 16 steps + 1, resolved but not shown as an argument
    assert repr(LRRangeTest(num_steps=50, plot=False)) == "LRRangeTest(num_steps=50, plot=False)"
    assert LRRangeTest(mode="linear").sweep_steps == 100
    assert LRRangeTest(min_lr=1e-3, max_lr=1.0, steps_per_decade=2).sweep_steps == 10  # at least MIN_POINTS


def test_the_printed_line_reports_the_cost_and_its_share_of_the_run():
    lrs, losses = _piecewise_curve()
    kwargs = dict(smoothing=0.05, stopped_early=False, reason="completed num_steps=80", steps_per_epoch=17,
                  step_size_epochs=4.0, mode="exponential", seconds=1.26)
    result = build_result(lrs, losses, total_steps=320, **kwargs)
    line = describe(result)
    assert line.startswith(f"LRRangeTest ({len(lrs)} steps ({len(lrs) / 320:.0%} of the run's 320) in 1.3 s, "
                           "completed num_steps=80; sgd rules): OneCycleLR max_lr=")
    assert f"max_lr={result.max_lr:.3g};" in line and f"step_size_up={result.step_size_up};" in line
    unknown = describe(build_result(lrs, losses, total_steps=None, **kwargs))  # lr_range_test(): no run to share
    assert unknown.startswith(f"LRRangeTest ({len(lrs)} steps in 1.3 s, completed")
    failed = describe(build_result(lrs[:3], losses[:3], total_steps=320, **kwargs))
    assert failed.startswith("LRRangeTest (3 steps (1% of the run's 320) in 1.3 s") and "no suggestion" in failed


# ---------------------------------------------------------------------------------------------- exact restoration
def test_restores_weights_optimizer_state_and_global_step(tmp_path):
    # One epoch first, so that the optimizer has momentum buffers and global_step is 17 when the test runs.
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    fit(tmp_path, [checkpoint], max_epochs=1, enable_checkpointing=True)
    before, after = Probe(), Probe()
    test = LRRangeTest(num_steps=30, divergence_threshold=None, plot=False)
    model = Digits()
    trainer = pl.Trainer(callbacks=[before, test, after], **quiet(tmp_path, max_epochs=2))
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=64), ckpt_path=str(tmp_path / "ckpt" / "last.ckpt"))

    assert len(test.result.lrs) == 30 and after.seen["calls"] - before.seen["calls"] == 30  # the test did run
    assert before.seen["global_step"] == after.seen["global_step"] == STEPS_PER_EPOCH
    assert_same_tensors(before.seen["tensors"], after.seen["tensors"])
    assert before.seen["optimizer"]["state"], "the momentum buffers exist"
    assert_same_optimizer_state(before.seen["optimizer"], after.seen["optimizer"])
    # In place: Lightning's LightningOptimizer shares these very objects.
    assert before.seen["group_ids"] == after.seen["group_ids"] and before.seen["state_ids"] == after.seen["state_ids"]
    assert torch.equal(before.seen["torch_rng"], after.seen["torch_rng"])
    assert after.seen["training"] is True
    assert after.seen["metric"][0] == before.seen["metric"][0] == 0  # the sweep's batches left no metric state
    assert_same_tensors(before.seen["metric"][1], after.seen["metric"][1])
    assert trainer.global_step == 2 * STEPS_PER_EPOCH


def test_restores_adam_state_exactly(tmp_path):
    before, after = Probe(), Probe()
    test = LRRangeTest(num_steps=20, plot=False)
    fit(tmp_path, [before, test, after], model=partial(Digits, optimizer="adam"), max_steps=1)
    assert before.seen["optimizer"]["state"] == {}  # a fresh Adam: its state (step, exp_avg...) is created...
    assert_same_optimizer_state(before.seen["optimizer"], after.seen["optimizer"])  # ...and removed again
    assert_same_tensors(before.seen["tensors"], after.seen["tensors"])


@pytest.mark.parametrize("datamodule", [DigitsDataModule, GlobalShuffleDigits], ids=["own-generator", "global-rng"])
def test_training_after_the_test_equals_training_without_it(tmp_path, datamodule):
    # Dropout draws from the global RNG in every step; the loader shuffles with its own generator or the
    # global RNG. Two epochs with the test must see the same batches, losses and final weights as without.
    runs = []
    for callbacks in ([], [LRRangeTest(num_steps=30, divergence_threshold=None, plot=False)]):
        _, model = fit(tmp_path, callbacks, model=partial(Digits, dropout=0.3), datamodule=datamodule(batch_size=64),
                       max_epochs=2)
        runs.append(model)
    without, with_test = runs
    assert with_test.calls == without.calls + 30
    assert len(without.seen) == 2 * STEPS_PER_EPOCH
    assert with_test.seen == without.seen  # same batches in the same order, same losses (float equality)
    assert_same_tensors(without.state_dict(), with_test.state_dict())


def test_callback_order_does_not_matter(tmp_path):
    models, results = [], []
    for order in (0, 1):
        test = LRRangeTest(num_steps=40, plot=False)
        cyclic = CyclicLR(base_lr="auto", max_lr="auto", step_size_up="auto")
        _, model = fit(tmp_path, [test, cyclic] if order == 0 else [cyclic, test], max_epochs=1)
        models.append(model)
        results.append(test.result)
    assert results[0] == results[1]
    assert models[0].used_lr == models[1].used_lr
    assert_same_tensors(models[0].state_dict(), models[1].state_dict())


def test_gradient_accumulation_counts_optimizer_steps(tmp_path):
    before, after = Probe(), Probe()
    test = LRRangeTest(num_steps=20, plot=False)
    fit(tmp_path, [before, test, after], max_steps=1, accumulate_grad_batches=2)
    assert after.seen["calls"] - before.seen["calls"] == 40  # two batches per optimizer step
    assert len(test.result.lrs) == 20
    assert test.result.steps_per_epoch == 9  # ceil(17 / 2)
    assert test.result.step_size_up == 1  # a run of one step: one cycle of two steps at most (4 epochs = 36 apart)


# ---------------------------------------------------------------------------------------------- the suggestion
def test_suggestion_on_digits_lies_inside_the_swept_range(tmp_path):
    test = LRRangeTest(plot=False)  # the defaults: 1e-6 to 10, 16 steps a decade (113 at most)
    fit(tmp_path, [test], max_steps=1)
    result = test.result
    assert result.lrs[0] == pytest.approx(1e-6) and len(result.lrs) == len(result.losses) == len(
        result.smoothed_losses)
    assert result.lrs[0] < result.base_lr < result.max_lr < result.lrs[-1]
    assert 3 <= result.max_lr / result.base_lr <= 10
    assert result.min_loss_lr > result.max_lr
    assert result.step_size_up == 1 and result.steps_per_epoch == STEPS_PER_EPOCH  # fitted to the 1-step run
    assert result.stopped_early and "diverged" in result.reason  # SGD with momentum explodes near lr=2
    assert all(math.isfinite(v) for v in result.losses)


class AdamWDigits(DigitsClassifier):
    """A two-layer MLP (128 units) on digits with AdamW (weight decay 0.01), for the Adam-family rule."""

    def __init__(self) -> None:
        super().__init__(hidden=128)
        self.net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=1e-3, weight_decay=0.01)


@pytest.mark.parametrize(
    ("make_model", "tuned_peak", "optimizer"),
    [
        # 10 epochs of OneCycleLR(max_lr=peak), test accuracy in %, seeds 0 / 1 (measured on this CPU):
        #   SGD momentum, 64 hidden:  0.03: 90.0 92.2  0.1: 95.8 95.3  0.3: 97.2 96.9  1.0: 91.6 93.3  3.0: 18.7 11.1
        (partial(DigitsClassifier, hidden=64), 0.3, "sgd"),
        #   AdamW, 128-128:          1e-3: 91.6 93.3  3e-3: 95.8 95.8  1e-2: 97.5 97.2  3e-2: 97.2 97.8  0.1: 98.1 94.7
        (AdamWDigits, 0.03, "adam"),
    ],
    ids=["sgd", "adamw"],
)
def test_default_range_test_suggests_a_peak_near_the_tuned_one(tmp_path, make_model, tuned_peak, optimizer):
    # The grid points a half decade either side of the tuned peak trained 1.5-5 points worse (SGD) and 1.5-2 (AdamW):
    # "auto" must land within a factor of 2 of the tuned peak, for 1cycle and CLR.
    for seed in (0, 1):
        test = LRRangeTest(plot=False)
        fit(tmp_path, [test], model=make_model, seed=seed, max_steps=1)
        result = test.result
        assert result.optimizer == optimizer and len(result.lrs) <= 113 and result.seconds > 0
        for policy in ("one_cycle", "cyclic"):
            assert tuned_peak / 2 <= result.suggest(policy).max_lr <= tuned_peak * 2, (seed, policy)


def test_auto_bounds_train_as_well_as_hand_tuned_bounds(tmp_path):
    # 10 epochs of a 64-unit MLP, test accuracy in % for seeds 0, 1, 2 (measured on this CPU with lightning_clr
    # 0.1's rule; the current one reads the knee of the same curves, 0.37 on seed 0):
    #   CyclicLR   auto (0.0351..0.351, step_size_up 68 = 4 epochs)  97.21 96.94 97.77  mean 97.31
    #              hand: best mean of 3 ranges x 2 step sizes        98.61 96.38 98.05  mean 97.68
    #              (0.1..1.0, 4 epochs; then 0.03..0.3, 4 epochs: 97.21; 0.01..0.1, 2 epochs: 95.45)
    #   OneCycleLR auto (max_lr 0.351)                               97.21 96.94 97.21  mean 97.12
    #              hand: best of max_lr 0.1 / 0.3 / 1.0 (0.3)        97.21 96.94 97.21  mean 97.12
    #              (0.1: 95.54, 1.0: 93.50)
    #   constant SGD lr 0.05 (the model's own optimizer): 95.45
    def mean_accuracy(make_callbacks: Callable[[], list]) -> float:
        accuracies = []
        for seed in (0, 1, 2):
            callbacks = make_callbacks()
            trainer, model = fit(tmp_path, callbacks, max_epochs=10, model=partial(Digits, hidden=64), seed=seed)
            result = trainer.test(model, datamodule=DigitsDataModule(batch_size=64), verbose=False)[0]
            accuracies.append(100 * result["test_acc"])
            tests = [cb for cb in callbacks if isinstance(cb, LRRangeTest)]
            if tests:
                r = tests[0].result  # the SGD rule: the knee, CLR's base a quarter of it
                assert r.max_lr == pytest.approx(r.knee_lr, rel=1e-12) and 0.15 <= r.max_lr <= 0.6
                assert r.base_lr == pytest.approx(r.max_lr / 4, rel=1e-12)
        return sum(accuracies) / len(accuracies)

    hand_cyclic = mean_accuracy(lambda: [CyclicLR(base_lr=0.1, max_lr=1.0, step_size_up="4 epochs")])
    auto_cyclic = mean_accuracy(lambda: [LRRangeTest(plot=False),
                                         CyclicLR(base_lr="auto", max_lr="auto", step_size_up="auto")])
    hand_one_cycle = mean_accuracy(lambda: [OneCycleLR(max_lr=0.3)])
    auto_one_cycle = mean_accuracy(lambda: [LRRangeTest(plot=False), OneCycleLR(max_lr="auto")])
    assert hand_cyclic > 96 and hand_one_cycle > 96
    assert auto_cyclic >= hand_cyclic - 1.0
    assert auto_one_cycle >= hand_one_cycle - 1.0


@pytest.mark.parametrize("count_skipped_steps", [True, False])
def test_auto_bounds_reach_the_schedules(tmp_path, count_skipped_steps):
    # count_skipped_steps=False counts steps with optimizer step hooks: the sweep's steps must not count.
    test = LRRangeTest(num_steps=60, plot=False)
    cyclic = CyclicLR(base_lr="auto", max_lr="auto", step_size_up="auto", count_skipped_steps=count_skipped_steps)
    _, model = fit(tmp_path, [test, cyclic], max_steps=3)
    result = test.result
    up = result.step_size_up
    expected = [CyclicSchedule(result.base_lr, result.max_lr, up)(k) for k in range(3)]
    assert [lr for _, lr in model.used_lr] == pytest.approx(expected, rel=1e-12)
    # the repr shows the values "auto" resolved to, beside the arguments given
    assert repr(cyclic) == (f"CyclicLR(base_lr='auto', max_lr='auto', step_size_up='auto'"
                            f"{'' if count_skipped_steps else ', count_skipped_steps=False'}; resolved: "
                            f"base_lr={result.base_lr!r}, max_lr={result.max_lr!r}, step_size_up={up!r})")
    test = LRRangeTest(num_steps=60, plot=False)
    _, model = fit(tmp_path, [test, CosineRestartsLR(max_lr="auto", first_cycle=1)], max_steps=1)
    expected = test.result.for_policy("cosine_restarts").max_lr  # SGDR's own peak
    assert model.used_lr[0][1] == pytest.approx(expected, rel=1e-12)


def test_auto_without_range_test_is_an_error_at_fit_start(tmp_path):
    for callback in (CyclicLR(base_lr="auto", max_lr=0.1), OneCycleLR(max_lr="auto")):
        model = Digits()
        with pytest.raises(ValueError, match=r"no lightning_clr\.LRRangeTest"):
            fit(tmp_path, [callback], model=lambda m=model: m, max_steps=2)
        assert model.calls == 0


def test_auto_with_a_curve_without_suggestion_is_an_error(tmp_path):
    # From 1e3 on, the very first step blows the loss up: no curve to read bounds from.
    model = Digits()
    with pytest.raises(RangeTestError, match="no suggestion"):
        fit(tmp_path, [LRRangeTest(min_lr=1e3, max_lr=1e6, num_steps=20, plot=False), OneCycleLR(max_lr="auto")],
            model=lambda: model, max_steps=2)
    assert model.seen == []  # no training step ran


class DigitsStream(torch.utils.data.IterableDataset):
    """The digits training samples as a stream without a length."""

    def __init__(self) -> None:
        datamodule = DigitsDataModule()
        datamodule.setup()
        self.samples = datamodule.train_set

    def __iter__(self):
        return iter(self.samples)


def test_auto_step_size_needs_an_epoch_length(tmp_path):
    loader = DataLoader(DigitsStream(), batch_size=64)
    test = LRRangeTest(num_steps=40, divergence_threshold=None, plot=False)
    pl.seed_everything(0, verbose=False)
    trainer = pl.Trainer(callbacks=[test, CyclicLR(base_lr="auto", max_lr="auto", step_size_up="auto")],
                         **quiet(tmp_path, max_steps=3))
    with pytest.raises(ValueError, match="epoch length is unknown"):
        trainer.fit(Digits(), train_dataloaders=loader)
    assert test.result.steps_per_epoch is None and test.result.step_size_up is None
    assert test.result.has_suggestion and len(test.result.lrs) == 40  # the stream was cycled for 40 steps
    # With the step size given, the same stream trains with auto bounds.
    trainer = pl.Trainer(callbacks=[LRRangeTest(num_steps=40, plot=False),
                                    CyclicLR(base_lr="auto", max_lr="auto", step_size_up=2)],
                         **quiet(tmp_path, max_steps=3))
    trainer.fit(Digits(), train_dataloaders=loader)
    assert trainer.global_step == 3


# ---------------------------------------------------------------------------------------------- divergence
def test_huge_max_lr_stops_on_nan_and_nan_never_reaches_the_model(tmp_path):
    before, after = Probe(), Probe()
    test = LRRangeTest(min_lr=1e-3, max_lr=1e40, num_steps=50, divergence_threshold=None, plot=False)
    with pytest.warns(LightningCLRWarning, match="fell only .* before it diverged"):  # degrades to the fallback rule
        _trainer, model = fit(tmp_path, [before, test, after], max_epochs=1)
    result = test.result
    assert result.stopped_early and ("nan" in result.reason or "inf" in result.reason)
    assert 0 < len(result.lrs) < 50 and all(math.isfinite(v) for v in result.losses)
    assert_same_tensors(before.seen["tensors"], after.seen["tensors"])
    assert all(torch.isfinite(p).all() for p in model.parameters())  # and the real epoch trained normally
    assert all(math.isfinite(loss) for _, loss in model.seen) and len(model.seen) == STEPS_PER_EPOCH


@pytest.mark.filterwarnings("error:LRRangeTest. the loss was still falling:UserWarning")
def test_a_note_is_warned_once(tmp_path):
    test = LRRangeTest(max_lr=0.05, plot=False)  # stops before the loss turns
    with pytest.warns(LightningCLRWarning, match="LRRangeTest: the loss was still falling") as record:
        fit(tmp_path, [test, OneCycleLR(max_lr="auto")], max_steps=2)
    assert sum("still falling" in str(w.message) for w in record) == 1
    assert test.result.has_suggestion and len(test.result.lrs) == 77  # 4.7 decades at 16 a decade


def test_divergence_threshold_stops_early(tmp_path):
    test = LRRangeTest(min_lr=1e-3, max_lr=1e4, num_steps=60, plot=False)
    fit(tmp_path, [test], max_steps=1)
    result = test.result
    assert result.stopped_early and "diverged" in result.reason and len(result.lrs) < 60
    # Stopped at the first smoothed loss above 4 x the best one before it, or back above the starting level (the
    # median of the first three losses) after a fall of 10%.
    smoothed, start = result.smoothed_losses, sorted(result.losses[:3])[1]

    def diverged(i: int) -> bool:
        best = min(smoothed[: i + 1])
        return smoothed[i] > 4 * best or (best < 0.9 * start and smoothed[i] > start)

    assert diverged(len(smoothed) - 1)
    assert not any(diverged(i) for i in range(3, len(smoothed) - 1))


# ---------------------------------------------------------------------------------------------- lifecycle
def test_resume_keeps_the_first_result_instead_of_testing_again(tmp_path):
    test = LRRangeTest(num_steps=40, plot=False)
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    fit(tmp_path, [test, CyclicLR(base_lr="auto", max_lr="auto", step_size_up="auto"), checkpoint],
        max_epochs=1, enable_checkpointing=True)
    resumed_test, before = LRRangeTest(num_steps=40, plot=False), Probe()
    model = Digits()
    trainer = pl.Trainer(callbacks=[before, resumed_test, CyclicLR(base_lr="auto", max_lr="auto",
                                                                     step_size_up="auto")],
                         **quiet(tmp_path, max_epochs=2))
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=64), ckpt_path=str(tmp_path / "ckpt" / "last.ckpt"))
    assert resumed_test.result == test.result
    assert model.calls == STEPS_PER_EPOCH  # only the second epoch: no range test
    # The schedule continues: step 17 of a triangle from base_lr up over step_size_up steps.
    r = test.result
    assert r.step_size_up == 8  # fitted to the first fit's run of 17 steps, and kept
    assert model.used_lr[0] == (17, pytest.approx(CyclicSchedule(r.base_lr, r.max_lr, r.step_size_up)(17)))


class ManualDigits(Digits):
    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False

    def training_step(self, batch: Any, batch_idx: int) -> None:
        optimizer = self.optimizers()
        optimizer.zero_grad()
        self.manual_backward(super().training_step(batch, batch_idx))
        optimizer.step()


def test_manual_optimization_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="needs automatic optimization"):
        fit(tmp_path, [LRRangeTest(plot=False)], model=ManualDigits, max_steps=1)


def test_result_before_train_start_is_an_error(tmp_path):
    class Early(Callback):
        def on_fit_start(self, trainer, pl_module):
            test.ensure_result(trainer, pl_module)

    test = LRRangeTest(plot=False)
    with pytest.raises(RuntimeError, match="runs at train start"):
        fit(tmp_path, [Early(), test], max_steps=1)


# ---------------------------------------------------------------------------------------------- standalone
def test_lr_range_test_alone_trains_nothing_and_restores_the_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pl.seed_everything(0, verbose=False)
    model = Digits()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    result = lr_range_test(model, datamodule=DigitsDataModule(batch_size=64), num_steps=60, divergence_threshold=None)
    assert isinstance(result, RangeTestResult) and result.has_suggestion
    assert model.calls == 60 and model.seen == []  # the sweep only, no training batch
    assert_same_tensors(weights, model.state_dict())
    assert torch.equal(rng, torch.get_rng_state())
    assert list(tmp_path.iterdir()) == []  # a quiet Trainer: no logs, checkpoints or figures
    # The training to come has no known length: CLR's half cycle is step_size_epochs (4) epochs, not fitted
    # to the quiet Trainer's one epoch (it was 8 steps, half of that epoch).
    assert result.total_steps is None and result.step_size_up == 4 * STEPS_PER_EPOCH
    # A loader instead of a datamodule, and the same Trainer afterwards for the real training.
    datamodule = DigitsDataModule(batch_size=64)
    datamodule.setup()
    trainer = pl.Trainer(**quiet(tmp_path, max_epochs=1))
    result = lr_range_test(model, train_dataloaders=datamodule.train_dataloader(), trainer=trainer, num_steps=20,
                           min_lr=1e-2, max_lr=3.0, divergence_threshold=None)
    assert len(result.lrs) == 20 and result.lrs[-1] == pytest.approx(3.0)
    assert result.total_steps == STEPS_PER_EPOCH  # one's own Trainer: its run is the one to come
    assert not any(isinstance(cb, LRRangeTest) for cb in trainer.callbacks)
    assert trainer.global_step == 0 and model.seen == []
    trainer.fit(model, train_dataloaders=datamodule.train_dataloader())
    assert len(model.seen) == STEPS_PER_EPOCH and trainer.global_step == STEPS_PER_EPOCH


def test_lr_range_test_without_suggestion_raises_with_the_curve(tmp_path):
    with pytest.raises(RangeTestError) as error:
        lr_range_test(Digits(), datamodule=DigitsDataModule(batch_size=64), trainer=pl.Trainer(**quiet(tmp_path)),
                      min_lr=1e3, max_lr=1e6, num_steps=20)
    assert error.value.result is not None and error.value.result.stopped_early


# ---------------------------------------------------------------------------------------------- the figure
def test_plot_is_saved_next_to_the_logs_and_sent_to_tensorboard(tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("tensorboard")
    from pytorch_lightning.loggers import TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = TensorBoardLogger(save_dir=str(tmp_path), name="tb")
    test = LRRangeTest(num_steps=60)
    trainer, _ = fit(tmp_path, [test], max_steps=1, logger=logger)
    log_dir = Path(trainer.log_dir)
    assert (log_dir / "lr_range_test.png").read_bytes()[:4] == b"\x89PNG"
    assert RangeTestResult.from_dict(json.loads((log_dir / "lr_range_test.json").read_text())) == test.result
    events = EventAccumulator(str(log_dir), size_guidance={"images": 0}).Reload()
    assert "lr_range_test" in events.Tags()["images"]
    figure = test.result.plot()
    ax = figure.axes[0]
    assert ax.get_xscale() == "log"
    r = test.result
    labels = {t.get_text() for t in ax.get_legend().get_texts()}
    cyclic = r.suggest("cyclic")
    assert f"CyclicLR base_lr..max_lr = {cyclic.base_lr:.3g}..{cyclic.max_lr:.3g}" in labels
    # Each mark is named in a label that ends with its rate (marks at the same rate share one line and label).
    for name, rate in [("OneCycleLR max_lr", r.suggest("one_cycle").max_lr), ("CyclicLR max_lr", cyclic.max_lr),
                       ("CosineRestartsLR max_lr", r.suggest("cosine_restarts").max_lr),
                       ("lowest smoothed loss", r.min_loss_lr)]:
        assert any(name in label and label.endswith(f" = {rate:.3g}") for label in labels), (name, labels)
    assert ax.get_title().startswith(f"LR range test: {len(r.lrs)} steps")  # the suggestions are in the legend


def test_marks_at_the_same_rate_are_one_line_with_one_label():
    """1cycle's and CLR's peaks often are the knee itself: one line, one label naming the three, not three lines
    drawn over each other."""
    pytest.importorskip("matplotlib")
    from dataclasses import replace

    lrs, losses = _piecewise_curve()
    result = build_result(lrs, losses, 0.05, False, "completed num_steps=80", 17, 4.0, "exponential")
    knee = result.knee_lr
    suggestions = {**result.suggestions, "one_cycle": {**result.suggestions["one_cycle"], "max_lr": knee},
                   "cyclic": {**result.suggestions["cyclic"], "max_lr": knee}}
    result = replace(result, suggestions=suggestions, max_lr=knee)
    sgdr, lowest = result.suggest("cosine_restarts").max_lr, result.min_loss_lr
    assert len({knee, sgdr, lowest}) == 3, "the curve puts the other marks elsewhere"
    ax = result.plot().axes[0]
    vertical = [line for line in ax.get_lines() if len(set(line.get_xdata())) == 1]
    assert sorted(float(line.get_xdata()[0]) for line in vertical) == sorted([knee, sgdr, lowest])
    labels = [line.get_label() for line in vertical]
    assert f"OneCycleLR max_lr = CyclicLR max_lr = knee (90% of the fall) = {knee:.3g}" in labels
    assert f"CosineRestartsLR max_lr = {sgdr:.3g}" in labels and f"lowest smoothed loss at lr = {lowest:.3g}" in labels
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert len(legend) == len(set(legend)) == 2 + 1 + 3  # the two curves, CLR's band, three lines


def test_missing_matplotlib_fails_only_when_plotting(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    test = LRRangeTest(num_steps=20)  # plot=None: the figure is skipped, the JSON still written
    fit(tmp_path, [test], max_steps=1)
    assert (tmp_path / "lr_range_test.json").exists() and not (tmp_path / "lr_range_test.png").exists()
    with pytest.raises(ImportError, match="needs matplotlib"):
        test.result.plot()
    with pytest.raises(ImportError, match="needs matplotlib"):
        fit(tmp_path, [LRRangeTest(num_steps=20, plot=True)], max_steps=1)


# ---------------------------------------------------------------------------------------------- DDP and the CLI
@pytest.mark.timeout(120)
def test_ddp_spawn_ranks_average_the_loss_and_agree(tmp_path):
    test = LRRangeTest(num_steps=20, plot=False)
    fit(tmp_path, [test, ResultWriter(str(tmp_path)), EndsDistributedCleanly()], max_steps=1, strategy="ddp_spawn",
        devices=2)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world_size"] == 2
    assert ranks[0]["result"] == ranks[1]["result"]
    first_losses = [r["first_loss"] for r in ranks]
    assert first_losses[0] != first_losses[1]  # each rank saw its own half of the data...
    assert ranks[0]["result"]["losses"][0] == pytest.approx(sum(first_losses) / 2, rel=1e-6)  # ...averaged
    assert ranks[0]["result"]["base_lr"] is not None and ranks[0]["result"]["step_size_up"] == 1  # a 1-step run


def test_auto_bounds_from_lightning_cli_yaml(tmp_path, monkeypatch):
    pytest.importorskip("jsonargparse")
    from pytorch_lightning.cli import LightningCLI

    monkeypatch.setattr(sys, "argv", ["cli.py"])
    config = tmp_path / "config.yaml"
    config.write_text(
        "trainer:\n"
        "  max_steps: 2\n  accelerator: cpu\n  devices: 1\n  logger: false\n  enable_checkpointing: false\n"
        "  enable_progress_bar: false\n  enable_model_summary: false\n  limit_val_batches: 0\n"
        f"  default_root_dir: {tmp_path}\n"
        "  callbacks:\n"
        "    - class_path: lightning_clr.LRRangeTest\n"
        "      init_args: {num_steps: 50, plot: false}\n"
        "    - class_path: lightning_clr.CyclicLR\n"
        "      init_args: {base_lr: auto, max_lr: auto, step_size_up: auto}\n"
        "model:\n  hidden: 32\n"
    )
    cli = LightningCLI(Digits, DigitsDataModule, args=["--config", str(config)], run=False,
                       save_config_callback=None, seed_everything_default=0)
    test = next(cb for cb in cli.trainer.callbacks if isinstance(cb, LRRangeTest))
    cyclic = next(cb for cb in cli.trainer.callbacks if isinstance(cb, CyclicLR))
    assert (test.num_steps, cyclic.base_lr, cyclic.max_lr, cyclic.step_size_up) == (50, "auto", "auto", "auto")
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    result = test.result
    assert cli.model.used_lr[0] == (0, pytest.approx(result.base_lr, rel=1e-12))
    assert cli.model.used_lr[1][1] == pytest.approx(
        result.base_lr + (result.max_lr - result.base_lr) / result.step_size_up, rel=1e-12)


def test_example_script_runs(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("range_test_example", EXAMPLES / "range_test.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    metrics = example.main(["--epochs", "1", "--output", str(tmp_path), "--schedule", "one_cycle"])
    assert metrics["max_lr"] == pytest.approx(0.3652, rel=1e-3)  # the knee of the SGD curve
    assert metrics["auto_test_acc"] > 0.5
    assert (tmp_path / "lr_range_test.png").exists()
