"""On a CUDA device: what a CPU cannot show. Marked ``cuda``; skipped where torch sees no CUDA device (CI has
none). On a GPU machine: ``bash .ci/gpu_check OUT``, or ``python -m pytest -m cuda tests`` (which also runs
the guard's rollback test of ``tests/callbacks/test_guard.py`` on the device).

* **No host-device synchronisation on the hot path.** Every per-step hook of a callback, and every optimizer
  step hook it registers, runs under ``torch.cuda.set_sync_debug_mode("warn")``, which warns at each CUDA call
  that makes the host wait for the device (``.item()``, ``float(tensor)``, a copy to the host); the warnings
  are counted per call. The scheduling callbacks make none, on logged steps too, with float rates and with a
  fused AdamW's tensor rate; :class:`~lightning_clr.DivergenceGuard` makes one per check window and none on
  the other steps. A probe shows that the counter does count.
* **AMP with the real CUDA GradScaler** (``"16-mixed"``): the steps it skips are the injected ones, and both
  clocks give the rates the CPU tests (``tests/callbacks/test_optimization_modes.py``) expect.
* **The range test on the device**: its copies of the weights and the optimizer state are on the host, and
  the weights, the Adam state and the CUDA random state come back bit for bit.
* **FSDP on one GPU**: the callback drives the torch optimizer inside Lightning's FSDP strategy.
"""

from __future__ import annotations

import copy
import functools
import warnings
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest
import pytorch_lightning as pl
import torch

from lightning_clr import CosineRestartsLR, CyclicLR, DivergenceGuard, LRRangeTest, OneCycleLR
from lightning_clr.schedules import CosineRestartsSchedule, CyclicSchedule, OneCycleSchedule
from lightning_clr.tuner import isolation

from helpers import ON_CUDA_MARKS, InfLossModel, ListLogger, RecordingModel, amp_plugin, trainer_kwargs, used_lrs

pytestmark = ON_CUDA_MARKS

#: What torch warns at a synchronising CUDA call under ``set_sync_debug_mode("warn")``.
SYNC_WARNING = "called a synchronizing CUDA operation"
#: The hooks a scheduling callback runs at every step.
SCHEDULE_HOOKS = ("on_train_batch_start", "on_train_batch_end", "on_before_optimizer_step")


def gpu_kwargs(tmp_path: Any, **overrides: Any) -> dict[str, Any]:
    return trainer_kwargs(tmp_path, **{"accelerator": "cuda", "devices": 1, **overrides})


class SyncCounter:
    """Counts the synchronising CUDA calls made inside the functions it wraps: ``syncs[name]`` holds one count
    per call of the function watched under ``name``."""

    def __init__(self) -> None:
        self.syncs: dict[str, list[int]] = defaultdict(list)

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def counted(*args: Any, **kwargs: Any) -> Any:
            previous = torch.cuda.get_sync_debug_mode()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                torch.cuda.set_sync_debug_mode("warn")
                try:
                    return fn(*args, **kwargs)
                finally:
                    torch.cuda.set_sync_debug_mode(previous)
                    self.syncs[name].append(sum(SYNC_WARNING in str(w.message) for w in caught))

        return counted

    def watch(self, callback: pl.Callback, hooks: tuple[str, ...]) -> None:
        """Wraps the hooks of ``callback`` (Lightning looks each hook up on the instance)."""
        for hook in hooks:
            setattr(callback, hook, self.wrap(f"{type(callback).__name__}.{hook}", getattr(callback, hook)))

    def total(self, prefix: str = "") -> int:
        return sum(sum(counts) for name, counts in self.syncs.items() if name.startswith(prefix))


class WatchStepHooks(pl.Callback):
    """Wraps, at train start (after the callbacks before it registered theirs), every step hook of every
    optimizer: the clock of ``count_skipped_steps=False`` writes the next rate in the post-step hook."""

    def __init__(self, counter: SyncCounter) -> None:
        self.counter = counter
        self.wrapped = 0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for optimizer in trainer.optimizers:
            for kind in ("_optimizer_step_pre_hooks", "_optimizer_step_post_hooks"):
                hooks = getattr(optimizer, kind)
                for key, hook in list(hooks.items()):
                    hooks[key] = self.counter.wrap(kind, hook)
                    self.wrapped += 1


class CudaModel(RecordingModel):
    """``RecordingModel`` with a wider layer, so that the device does real work at each step."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        torch.manual_seed(1)
        self.layer = torch.nn.Linear(4, 64)
        self.head = torch.nn.Linear(64, 1)


def fused_adamw(params: Any) -> torch.optim.Optimizer:
    """A fused AdamW whose rate is a CUDA tensor (the writer fills it in place)."""
    return torch.optim.AdamW(params, lr=torch.tensor(0.01, device="cuda"), fused=True)


def sgd(params: Any) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=0.1, momentum=0.9)


# ---------------------------------------------------------------------------------------------- no syncs
def test_the_counter_counts_a_sync():
    counter = SyncCounter()
    x = torch.ones(3, device="cuda")
    counter.wrap("item", lambda: x.sum().item())()
    counter.wrap("kernel", lambda: x.mul_(2.0))()
    assert counter.syncs == {"item": [1], "kernel": [0]}


CASES = {
    "one_cycle-sgd": (lambda: OneCycleLR(max_lr=0.5), sgd,
                      OneCycleSchedule(0.5 / 25, 0.5, 0.5 / 25 / 1e4, 40, 0.3, "cos")),
    "cyclic-updates-sgd": (lambda: CyclicLR(0.01, 0.1, step_size_up=5, count_skipped_steps=False), sgd,
                           CyclicSchedule(0.01, 0.1, 5, None, "triangular")),
    "cosine_restarts-fused_adamw_tensor_lr": (lambda: CosineRestartsLR(max_lr=0.01, first_cycle=8),
                                              fused_adamw, CosineRestartsSchedule(0.01, 8)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_scheduling_callbacks_never_synchronise(tmp_path, case):
    make_callback, optimizer, schedule = CASES[case]
    counter = SyncCounter()
    callback = make_callback()
    counter.watch(callback, SCHEDULE_HOOKS)
    step_hooks = WatchStepHooks(counter)
    model = CudaModel(optimizer=optimizer, num_batches=20)
    logger = ListLogger()
    trainer = pl.Trainer(**gpu_kwargs(tmp_path, max_epochs=2, logger=logger, log_every_n_steps=1),
                         callbacks=[callback, step_hooks])
    trainer.fit(model)

    assert trainer.global_step == 40
    assert {name: len(counts) for name, counts in counter.syncs.items() if name.startswith(type(callback).__name__)} \
        == {f"{type(callback).__name__}.{hook}": 40 for hook in SCHEDULE_HOOKS}  # every hook watched, every step
    assert step_hooks.wrapped == (2 if "updates" in case else 0)  # the own clock's pre- and post-step hooks
    assert counter.total() == 0, dict(counter.syncs)
    rtol = 1e-6 if "tensor" in case else 1e-12  # a float32 tensor holds the rate
    assert used_lrs(model) == pytest.approx(schedule.values(40), rel=rtol)
    name = f"lr-clr-{type(trainer.optimizers[0]).__name__}"
    logged = [metrics[name] for _, metrics in logger.rows if name in metrics]
    assert logged == pytest.approx(schedule.values(40), rel=1e-12)  # every step logged, and from the schedule
    if "tensor" in case:
        assert isinstance(trainer.optimizers[0].param_groups[0]["lr"], torch.Tensor)


def test_divergence_guard_synchronises_once_a_check_window(tmp_path):
    counter = SyncCounter()
    # A gentle peak and a lax spike rule: no event, hence no rollback (which copies kept state back, and syncs).
    guard = DivergenceGuard(check_every_n_steps=5, keep_every_n_steps=1000, spike_factor=100.0)
    counter.watch(guard, ("on_train_batch_end",))
    callback = OneCycleLR(max_lr=0.05)
    counter.watch(callback, SCHEDULE_HOOKS)
    trainer = pl.Trainer(**gpu_kwargs(tmp_path, max_epochs=2), callbacks=[callback, guard])
    trainer.fit(CudaModel(optimizer=sgd, num_batches=20))

    assert guard.events == []
    per_batch = counter.syncs["DivergenceGuard.on_train_batch_end"]
    # Batch i ends at global_step i + 1; the window is read when that is a multiple of 5.
    assert per_batch == [1 if (i + 1) % 5 == 0 else 0 for i in range(40)]
    assert counter.total("OneCycleLR") == 0


# ---------------------------------------------------------------------------------------------- AMP
@pytest.mark.parametrize("count_skipped_steps", [True, False])
def test_amp_with_the_cuda_grad_scaler(tmp_path, count_skipped_steps):
    schedule = CyclicSchedule(0.01, 0.1, 3, None, "triangular")
    counter = SyncCounter()
    callback = CyclicLR(0.01, 0.1, step_size_up=3, count_skipped_steps=count_skipped_steps)
    counter.watch(callback, SCHEDULE_HOOKS)
    model = InfLossModel(inf_batches=(2, 5), optimizer=sgd, num_batches=8)
    trainer = pl.Trainer(**gpu_kwargs(tmp_path, max_epochs=1, plugins=[amp_plugin("cuda")]), callbacks=[callback])
    trainer.fit(model)

    assert model.updated_at == [0, 1, 3, 4, 6, 7]  # the GradScaler skipped exactly steps 2 and 5
    assert trainer.global_step == 8
    clock = list(range(8)) if count_skipped_steps else [0, 1, 2, 2, 3, 4, 4, 5]
    assert used_lrs(model) == pytest.approx([schedule(s) for s in clock], rel=1e-12)
    assert counter.total() == 0, dict(counter.syncs)


# ---------------------------------------------------------------------------------------------- range test
class StateProbe(pl.Callback):
    """Copies, at train start, the weights, the optimizer state and the CUDA random state."""

    def __init__(self) -> None:
        self.seen: dict[str, Any] = {}

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.seen = {
            "weights": {k: v.detach().clone() for k, v in pl_module.state_dict().items()},
            "optimizer": copy.deepcopy(trainer.optimizers[0].state_dict()),
            "cuda_rng": torch.cuda.get_rng_state(),
        }


class RandomLossModel(CudaModel):
    """Draws from the device's random generator at every step (as dropout on the GPU does)."""

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return super().training_step(batch, batch_idx) + 1e-3 * torch.rand((), device=self.device)


def tensors_in(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, isolation._HostCopy):
        return [value.value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in tensors_in(v)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in tensors_in(v)]
    return []


def test_range_test_keeps_its_copies_on_the_host_and_restores_the_device_state(tmp_path, monkeypatch):
    snapshots: list[isolation.Snapshot] = []
    devices: set[str] = set()
    take = isolation.take_snapshot

    def recording_take(*args: Any) -> isolation.Snapshot:
        snapshots.append(take(*args))
        # Where the live tensors are now: when the fit ends, Lightning moves the module back to the host.
        devices.update(param.device.type for param, _ in snapshots[-1].tensors)
        return snapshots[-1]

    monkeypatch.setattr(isolation, "take_snapshot", recording_take)
    # One step first, so that Adam has state on the device when the test runs at the second fit's start.
    model = RandomLossModel(optimizer=lambda p: torch.optim.Adam(p, lr=1e-3), num_batches=20)
    trainer = pl.Trainer(**gpu_kwargs(tmp_path, max_steps=1))
    trainer.fit(model)
    trainer.save_checkpoint(tmp_path / "one.ckpt")

    before, after = StateProbe(), StateProbe()
    test = LRRangeTest(num_steps=20, divergence_threshold=None, plot=False)
    trainer = pl.Trainer(**gpu_kwargs(tmp_path, max_steps=2), callbacks=[before, test, after])
    torch.cuda.manual_seed(3)
    trainer.fit(model, ckpt_path=tmp_path / "one.ckpt")

    assert len(test.result.lrs) == 20 and len(snapshots) == 1
    snapshot = snapshots[0]
    copies = tensors_in([saved for _, saved in snapshot.tensors]) + tensors_in([s[1] for s in snapshot.optimizers])
    assert copies and all(t.device.type == "cpu" for t in copies)
    assert devices == {"cuda"}
    assert before.seen["optimizer"]["state"], "Adam's state exists before the test"
    for key, value in before.seen["weights"].items():
        assert torch.equal(value, after.seen["weights"][key]), key
    for param, state in before.seen["optimizer"]["state"].items():
        for name, value in state.items():
            assert torch.equal(value, after.seen["optimizer"]["state"][param][name]), (param, name)
    assert torch.equal(before.seen["cuda_rng"], after.seen["cuda_rng"])


# ---------------------------------------------------------------------------------------------- FSDP
def test_fsdp_on_one_gpu(tmp_path):
    callback = OneCycleLR(max_lr=0.5)
    model = CudaModel(optimizer=sgd, num_batches=10)
    trainer = pl.Trainer(**gpu_kwargs(tmp_path, strategy="fsdp", max_epochs=2), callbacks=[callback])
    trainer.fit(model)
    assert trainer.global_step == 20
    assert used_lrs(model) == pytest.approx(OneCycleSchedule(0.02, 0.5, 0.02 / 1e4, 20, 0.3, "cos").values(20),
                                            rel=1e-12)
    assert callback.state_dict()["step_counts"] == {"0": 20}
