"""DivergenceGuard: a NaN or a spike injected at a given step is caught at the next check, the fit goes back to
exactly the kept weights and optimizer state, the schedule goes on at ``rate_factor`` times its values, and the
fit ends finite; AMP-skipped steps are no divergence; resume after a rollback is exact; no sync between checks;
with no event a guarded run is bit-identical to an unguarded one; two DDP ranks decide alike.

The model learns a fixed batch (every batch is the same), so its loss falls smoothly and the spike rule never
fires by itself: every event here is an injected one.
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from lightning_clr import CosineRestartsLR, CyclicLR, DivergenceGuard, OneCycleLR, WarmupStableDecayLR
from lightning_clr.callbacks.guard import DivergenceError

from helpers import ON_CUDA_MARKS, ListLogger, RecordingModel, amp_plugin, trainer_kwargs, used_lrs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from guard_ddp_run import STEPS, InjectingModel

PEAK = 0.05
GUARD = dict(check_every_n_steps=5, keep_every_n_steps=10)


def schedule() -> Any:
    return OneCycleLR(max_lr=PEAK).schedules(total_steps=STEPS)[0][0]


class Snapshots(pl.Callback):
    """Copies the weights and the optimizer state at the end of the given steps (after the guard's hook)."""

    def __init__(self, steps: list[int]) -> None:
        self.steps = steps
        self.weights: dict[int, dict[str, torch.Tensor]] = {}
        self.buffers: dict[int, list[torch.Tensor]] = {}

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        if step in self.steps:
            self.weights[step] = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
            state = trainer.optimizers[0].state
            self.buffers[step] = [state[p]["momentum_buffer"].clone() for p in pl_module.parameters() if state[p]]


def fit(tmp_path: Path, model: InjectingModel, guard: DivergenceGuard | None, *extra: Any,
        ckpt_path: str | None = None, **trainer: Any) -> pl.Trainer:
    callbacks = [OneCycleLR(max_lr=PEAK), *([guard] if guard else []), *extra]
    result = pl.Trainer(**trainer_kwargs(tmp_path, max_steps=STEPS, **trainer), callbacks=callbacks)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*DivergenceGuard: at step.*")
        warnings.filterwarnings("ignore", message=".*callbacks used to create the checkpoint need to be provided")
        result.fit(model, ckpt_path=ckpt_path)
    return result


def finite(model: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


@pytest.mark.parametrize("accelerator", ["cpu", pytest.param("cuda", marks=ON_CUDA_MARKS)])
def test_a_nan_rolls_back_to_exactly_the_kept_state_and_halves_the_rates(tmp_path: Path, accelerator: str) -> None:
    # On a GPU the kept state travels to host memory and back to the device.
    model = InjectingModel(inject={23: math.nan})
    snapshots, logger = Snapshots([20, 25]), ListLogger()
    guard = DivergenceGuard(**GUARD)
    fit(tmp_path, model, guard, snapshots, logger=logger, log_every_n_steps=1, accelerator=accelerator)
    assert all(p.device.type == accelerator for p in snapshots.weights[25].values())
    assert [(e["step"], e["reason"], e["kept_step"], e["rate_scale"]) for e in guard.events] == [
        (25, "non-finite", 20, 0.5)]
    for name, value in snapshots.weights[20].items():
        assert torch.equal(snapshots.weights[25][name], value), name
    for before, after in zip(snapshots.buffers[20], snapshots.buffers[25], strict=True):
        assert torch.equal(before, after)
    expected = [schedule()(s) * (0.5 if s >= 25 else 1.0) for s in range(STEPS)]
    assert used_lrs(model) == expected  # the written param_group["lr"]: the peak and all after it halved
    assert finite(model) and math.isfinite(model.losses[-1])
    logged = [(step, row) for step, row in logger.rows if "guard/rollbacks" in row]
    assert logged == [(25, {"guard/rollbacks": 1.0, "guard/rate_scale": 0.5, "guard/kept_step": 20.0,
                            "guard/event_step": 25.0})]


class MonitorStates(pl.Callback):
    """The guard's rule state at the end of the given steps (after the guard's hook, so after a rollback)."""

    def __init__(self, guard: DivergenceGuard, steps: list[int]) -> None:
        self.guard, self.steps, self.states = guard, steps, {}

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if trainer.global_step in self.steps:
            self.states[trainer.global_step] = self.guard._monitor.state_dict()


def test_a_rollback_puts_the_rule_back_as_it_was_at_the_kept_step(tmp_path: Path) -> None:
    # Between the keep (20) and the event (30) the clean window ending at 25 lowers the level; after the
    # rollback the level and the recent levels must be those of step 20 again, so the restored weights are
    # judged against their own past.
    guard = DivergenceGuard(**GUARD)
    states = MonitorStates(guard, [20, 25, 30])
    fit(tmp_path, InjectingModel(inject={28: math.nan}), guard, states)
    assert [(e["step"], e["kept_step"]) for e in guard.events] == [(30, 20)]
    assert states.states[25] != states.states[20]
    # the previous check and the rate of the last new low are the run's, not the keep's
    run_only = ("prev_rate", "prev_mean", "low_rate", "seen", "windows")  # a retry counts its own windows
    assert {k: v for k, v in states.states[30].items() if k not in run_only} == \
        {k: v for k, v in states.states[20].items() if k not in run_only} and states.states[20]["recent"]


@pytest.mark.filterwarnings("ignore:You're resuming from a checkpoint that ended before the epoch ended")  # on purpose
@pytest.mark.parametrize("version", [1, 2])
def test_a_version_1_or_2_checkpoint_still_loads_and_rolls_back(tmp_path: Path, version: int) -> None:
    # Versions 1 and 2 held one copy, its step beside it; version 1 kept no rule state with the copy (the
    # rollback then keeps the current level, as it did).
    inject = {23: math.nan, 36: math.nan}
    saver = ModelCheckpoint(dirpath=str(tmp_path / "ckpt"), every_n_train_steps=17, save_top_k=-1)
    fit(tmp_path / "whole", InjectingModel(inject=inject), DivergenceGuard(**GUARD), saver, enable_checkpointing=True)
    path = tmp_path / "ckpt" / "epoch=0-step=34.ckpt"
    checkpoint = torch.load(path, weights_only=False)
    (key,) = [k for k in checkpoint["callbacks"] if k.startswith("DivergenceGuard")]
    state = checkpoint["callbacks"][key]
    assert state["version"] == 3 and [k["step"] for k in state["kept"]] == [30] and "monitor" in state["kept"][0]
    (kept,) = state["kept"]
    state.update(version=version, kept_step=kept.pop("step"), kept=kept)
    if version == 1:
        del kept["monitor"]
    torch.save(checkpoint, path)
    resumed, again = InjectingModel(inject=inject), DivergenceGuard(**GUARD)
    fit(tmp_path / "resumed", resumed, again, ckpt_path=str(path))
    assert [(e["step"], e["kept_step"]) for e in again.events] == [(25, 20), (40, 30)]
    assert finite(resumed) and math.isfinite(resumed.losses[-1])


def test_a_spike_is_caught_after_patience_checks(tmp_path: Path) -> None:
    # Steps 20-29 report ten times their loss (the gradients are the true ones): the windows ending at 25 and
    # 30 are high, the second one (patience=2) is the event.
    # The rate-blind spike rule (rate_aware=False, relapse_share=0): a loss that rises with the warm-up counts.
    model = InjectingModel(inject={s: 10.0 for s in range(20, 30)})
    guard = DivergenceGuard(**GUARD, spike_factor=1.2, rate_aware=False, relapse_share=0.0)
    with pytest.warns(UserWarning, match="stayed above 1.2x its recent level"):
        pl.Trainer(**trainer_kwargs(tmp_path, max_steps=STEPS),
                   callbacks=[OneCycleLR(max_lr=PEAK), guard]).fit(model)
    assert [(e["step"], e["reason"], e["kept_step"]) for e in guard.events] == [(30, "spike", 20)]
    assert used_lrs(model)[30:] == [schedule()(s) * 0.5 for s in range(30, STEPS)]


def held_over_a_warm_up(tmp_path: Path) -> dict[int, float]:
    """Multipliers that hold the reported loss (not the gradients) over batches 20-29 just above the smoothed
    level (smoothing 0.8, windows of 5) of the window that ended at step 20, while ``OneCycleLR(pct_start=0.7)``
    climbs to step 35: read off an unguarded run of the same model."""
    plain = InjectingModel()
    pl.Trainer(**trainer_kwargs(tmp_path / "plain", max_steps=STEPS),
               callbacks=[OneCycleLR(max_lr=PEAK, pct_start=0.7)]).fit(plain)
    means = [sum(plain.losses[i: i + 5]) / 5 for i in range(0, 20, 5)]
    level = means[0]
    for mean in means[1:]:
        level = 0.8 * level + 0.2 * mean
    assert level < 0.9 * means[0]  # the loss has fallen: the stall rule is awake
    return {i: 1.01 * level / plain.losses[i] for i in range(20, 30)}


def test_a_loss_that_stops_falling_while_the_warm_up_climbs_is_a_stall(tmp_path: Path) -> None:
    # The reported loss is held over batches 20-29 (held_over_a_warm_up): the windows ending at 25 and 30 make no
    # new low, so stall_patience=2 rolls back at 30 to the state kept at 20 and cuts the rates so that the peak
    # ahead becomes stall_fraction (0.65) x the rate at step 20, where the loss last fell (a deeper cut than
    # rate_factor's 0.5), or by 0.5 with stall_fraction=0. With stall_patience=0 the same run has no event.
    one_cycle = OneCycleLR(max_lr=PEAK, pct_start=0.7).schedules(total_steps=STEPS)[0][0]
    held = held_over_a_warm_up(tmp_path)  # until the event
    deeper = 0.65 * one_cycle(20) / PEAK
    assert deeper < 0.5
    for arguments, cut in (({"stall_patience": 2}, deeper), ({"stall_patience": 2, "stall_fraction": 0.0}, 0.5),
                           ({"stall_patience": 0}, None)):
        model, guard = InjectingModel(inject=held), DivergenceGuard(**GUARD, **arguments)
        trainer = pl.Trainer(**trainer_kwargs(tmp_path / str(len(arguments)), max_steps=STEPS),
                             callbacks=[OneCycleLR(max_lr=PEAK, pct_start=0.7), guard])
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*DivergenceGuard: at step.*")
            trainer.fit(model)
        events = [(e["step"], e["reason"], e["kept_step"], e["rate_scale"]) for e in guard.events]
        assert events == ([] if cut is None else [(30, "stall", 20, cut)])
        assert used_lrs(model)[30:] == [one_cycle(s) * (cut or 1.0) for s in range(30, STEPS)]


def test_without_an_event_the_run_is_bit_identical_to_one_without_the_guard(tmp_path: Path) -> None:
    guarded, plain = InjectingModel(), InjectingModel()
    guard = DivergenceGuard(**GUARD)
    fit(tmp_path / "a", guarded, guard)
    fit(tmp_path / "b", plain, None)
    assert guard.events == [] and guard.kept_step == 50
    assert guarded.used == plain.used
    for (name, a), (_, b) in zip(guarded.state_dict().items(), plain.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_no_sync_between_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inside: list[int] = []
    synced: set[int] = set()

    def counting(name: str) -> None:
        original = getattr(torch.Tensor, name)

        def wrapper(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            if inside:
                synced.add(inside[-1])
            return original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, wrapper)

    for name in ("item", "tolist", "__bool__", "__float__", "__int__", "__index__", "numpy", "cpu"):
        counting(name)

    class Watched(DivergenceGuard):
        def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
            inside.append(trainer.global_step)
            try:
                super().on_train_batch_end(trainer, *args)
            finally:
                inside.pop()

    fit(tmp_path, InjectingModel(), Watched(**GUARD))
    assert synced == set(range(5, STEPS + 1, 5))  # the checks, and nothing else


def test_amp_skipped_steps_are_not_a_divergence(tmp_path: Path) -> None:
    model = InjectingModel(inject={13: math.inf, 27: math.inf})
    guard = DivergenceGuard(**GUARD)
    fit(tmp_path, model, guard, plugins=[amp_plugin()])
    assert model.updates == STEPS - 2  # the GradScaler skipped the two inf steps
    assert guard.events == [] and finite(model)


def test_amp_skipping_every_step_is_a_divergence_and_max_rollbacks_gives_up(tmp_path: Path) -> None:
    model = InjectingModel(inject={s: math.inf for s in range(22, STEPS)})
    guard = DivergenceGuard(**GUARD, patience=2, max_rollbacks=1)
    with pytest.raises(DivergenceError, match=r"after 1 rollback\(s\) \(max_rollbacks=1\)") as raised:
        fit(tmp_path, model, guard, plugins=[amp_plugin()])
    assert [(e["step"], e["reason"]) for e in guard.events] == [(35, "skipped"), (45, "skipped")]
    message = str(raised.value)
    assert "skipped every step" in message and f"peak {PEAK:.4g} ran at {PEAK / 2:.4g}; try max_lr=0.0125" in message


def test_max_rollbacks_exceeded_stops_the_fit_saying_which_peak_to_try(tmp_path: Path) -> None:
    model = InjectingModel(inject={23: math.nan, 33: math.nan})
    guard = DivergenceGuard(**GUARD, max_rollbacks=1)
    with pytest.raises(DivergenceError) as raised:
        fit(tmp_path, model, guard)
    message = str(raised.value)
    assert "at step 35 the loss diverged again (non-finite" in message
    assert "rolled back to the state kept at step 20" in message and "try max_lr=0.0125" in message


@pytest.mark.filterwarnings("ignore:You're resuming from a checkpoint that ended before the epoch ended")  # on purpose
@pytest.mark.parametrize(("keep_count", "kept_steps"), [(1, [20, 30]), (3, [0, 30])])
def test_resume_after_a_rollback_is_exact(tmp_path: Path, keep_count: int, kept_steps: list[int]) -> None:
    # Event 1 (NaN at 23) is before the checkpoint at step 34, event 2 (NaN at 36) after it: the resumed run
    # must roll back to the state kept at step 30 (keep_count=1), which only the checkpoint holds, or (three
    # copies held) to the train-start copy, then to the copy of 30 (both rate-aware choices), with the scale
    # 0.5 restored.
    inject = {23: math.nan, 36: math.nan}
    saver = ModelCheckpoint(dirpath=str(tmp_path / "ckpt"), every_n_train_steps=17, save_top_k=-1)
    whole, guard = InjectingModel(inject=inject), DivergenceGuard(**GUARD, keep_count=keep_count)
    fit(tmp_path / "whole", whole, guard, saver, enable_checkpointing=True)
    assert [(e["step"], e["kept_step"]) for e in guard.events] == [(25, kept_steps[0]), (40, kept_steps[1])]

    resumed, again = InjectingModel(inject=inject), DivergenceGuard(**GUARD, keep_count=keep_count)
    path = tmp_path / "ckpt" / "epoch=0-step=34.ckpt"
    fit(tmp_path / "resumed", resumed, again, ckpt_path=str(path))
    assert resumed.used == whole.used[34:]  # the rate of every step after the resume, exactly
    assert list(map(repr, resumed.losses)) == list(map(repr, whole.losses[34:]))  # NaN too
    assert [(e["step"], e["kept_step"]) for e in again.events] == [(25, kept_steps[0]), (40, kept_steps[1])]
    for (name, a), (_, b) in zip(resumed.state_dict().items(), whole.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


@pytest.mark.filterwarnings("ignore:You're resuming from a checkpoint that ended before the epoch ended")  # on purpose
def test_resume_after_a_stall_is_exact(tmp_path: Path) -> None:
    # A stall at 30 (the loss held over batches 20-29 while the warm-up climbs) before the checkpoint at 34, a NaN
    # at 41 after it: the resumed run needs the rule's stall state (the highest rate seen, so the cut schedule is
    # no new climb) and the deeper cut from the checkpoint to give the same rates, events and weights.
    inject = {**held_over_a_warm_up(tmp_path), 41: math.nan}

    def run(name: str, ckpt_path: str | None = None) -> tuple[InjectingModel, DivergenceGuard]:
        model, guard = InjectingModel(inject=inject), DivergenceGuard(**GUARD, stall_patience=2)
        saver = ModelCheckpoint(dirpath=str(tmp_path / "ckpt"), every_n_train_steps=17, save_top_k=-1)
        trainer = pl.Trainer(**trainer_kwargs(tmp_path / name, max_steps=STEPS, enable_checkpointing=True),
                             callbacks=[OneCycleLR(max_lr=PEAK, pct_start=0.7), guard, saver])
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*DivergenceGuard: at step.*")
            warnings.filterwarnings("ignore", message=".*callbacks used to create the checkpoint need to be provided")
            trainer.fit(model, ckpt_path=ckpt_path)
        return model, guard

    whole, guard = run("whole")
    assert [(e["step"], e["reason"]) for e in guard.events] == [(30, "stall"), (45, "non-finite")]
    resumed, again = run("resumed", str(tmp_path / "ckpt" / "epoch=0-step=34.ckpt"))
    assert resumed.used == whole.used[34:]
    assert repr(again.events) == repr(guard.events)  # the loss of the NaN event is nan
    for (name, a), (_, b) in zip(resumed.state_dict().items(), whole.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_with_auto_bounds_the_range_test_is_not_watched_and_the_found_peak_is_scaled(tmp_path: Path) -> None:
    # The guard comes first, so its train-start copy is taken before the range test runs: the test puts the
    # state back exactly, so that copy is the state training starts from.
    from lightning_clr import LRRangeTest

    model = InjectingModel(inject={23: math.nan})
    guard, one_cycle = DivergenceGuard(**GUARD, spike_factor=1e6), OneCycleLR(max_lr="auto")  # NaN only
    test = LRRangeTest(min_lr=1e-4, max_lr=0.1, num_steps=20, verbose=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*DivergenceGuard: at step.*")
        warnings.filterwarnings("ignore", message="LRRangeTest: the loss was still falling")  # a narrow sweep
        pl.Trainer(**trainer_kwargs(tmp_path, max_steps=STEPS), callbacks=[guard, test, one_cycle]).fit(model)
    found = one_cycle.step_schedule(0)
    assert [(e["step"], e["reason"], e["kept_step"]) for e in guard.events] == [(25, "non-finite", 20)], found
    assert used_lrs(model) == [found(s) * (0.5 if s >= 25 else 1.0) for s in range(STEPS)]
    assert finite(model)


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="keep_every_n_steps to be a multiple of check_every_n_steps"):
        DivergenceGuard(check_every_n_steps=10, keep_every_n_steps=25)
    with pytest.raises(ValueError, match="Expected rate_factor to be a number in \\(0, 1\\), but got 1"):
        DivergenceGuard(rate_factor=1)
    with pytest.raises(ValueError, match="Expected spike_factor"):
        DivergenceGuard(spike_factor=0.9)
    with pytest.raises(ValueError, match="Expected stall_patience"):
        DivergenceGuard(stall_patience=-1)
    with pytest.raises(ValueError, match="Expected stall_fraction"):
        DivergenceGuard(stall_fraction=1.5)
    for bad in (-0.01, 1.0, math.nan):
        with pytest.raises(ValueError, match="Expected stall_min_delta"):
            DivergenceGuard(stall_min_delta=bad)
    with pytest.raises(ValueError, match="Expected check_every_n_steps"):
        DivergenceGuard(check_every_n_steps=True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Expected keep_count to be a positive int number of kept states"):
        DivergenceGuard(keep_count=0)
    with pytest.raises(ValueError, match="Expected on_failure to be 'raise' or 'warn'"):
        DivergenceGuard(on_failure="ignore")  # type: ignore[arg-type]
    for name, bad in (("fall_ratio", 0.0), ("relapse_share", 1.0), ("learned_fraction", 1.0)):
        with pytest.raises(ValueError, match=f"Expected {name}"):
            DivergenceGuard(**{name: bad})


def test_lightning_cli_configures_the_guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("jsonargparse")
    monkeypatch.setattr("sys.argv", ["lightning-cli"])  # the CLI gets args=[...]; pytest's own argv is no input
    from pytorch_lightning.cli import LightningCLI

    cli = LightningCLI(InjectingModel, run=False, save_config_callback=None, seed_everything_default=0,
                       args=[
        f"--trainer.default_root_dir={tmp_path}", "--trainer.logger=false",
        "--trainer.callbacks+=lightning_clr.DivergenceGuard", "--trainer.callbacks.check_every_n_steps=5",
        "--trainer.callbacks.rate_factor=0.25", "--trainer.callbacks.on_failure=warn",
        "--trainer.callbacks.rate_aware=false"])
    (guard,) = [cb for cb in cli.trainer.callbacks if isinstance(cb, DivergenceGuard)]
    assert (guard.check_every_n_steps, guard.keep_every_n_steps, guard.rate_factor) == (5, 100, 0.25)
    assert type(guard.check_every_n_steps) is int and (guard.on_failure, guard.rate_aware) == ("warn", False)
    with pytest.raises(SystemExit):  # on_failure is a Literal: other values are refused
        LightningCLI(InjectingModel, run=False, save_config_callback=None, args=[
            f"--trainer.default_root_dir={tmp_path}", "--trainer.callbacks+=lightning_clr.DivergenceGuard",
            "--trainer.callbacks.on_failure=ignore"])


@pytest.mark.multiprocess
def test_two_ddp_ranks_roll_back_alike(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A NaN on rank 1 only: the reduced check makes rank 0 roll back at the same step to the same state.
    import guard_ddp_run

    for name in ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_RANK", "NODE_RANK", "PL_GLOBAL_SEED"):
        monkeypatch.setenv(name, "")  # recorded, so that what the launcher sets is undone after the test
        monkeypatch.delenv(name)
    guard_ddp_run.run(str(tmp_path))
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["events"] == ranks[1]["events"] == [
        {"step": 15, "reason": "non-finite", "kept_step": 10, "rate_scale": 0.5}]
    assert ranks[0]["used"] == ranks[1]["used"]
    assert ranks[0]["weights"] == ranks[1]["weights"]
    assert all(math.isfinite(w) for w in ranks[0]["weights"])


@pytest.mark.multiprocess
def test_two_ddp_ranks_resumed_after_a_rollback_equal_the_uninterrupted_run(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # NaNs on rank 1 at 13 (event at 15, before the checkpoint at step 17, taken inside the window 16-20) and at
    # 23 (event at 25, after it); at 16 and 17 rank 1 reports 1.05 times its loss, so the two ranks' open windows
    # differ. The resumed ranks need the scale, the events, the kept copy and each rank's own open window from the
    # checkpoint to give the same rates, events, weights and levels as the uninterrupted run.
    import guard_ddp_run

    for name in ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_RANK", "NODE_RANK", "PL_GLOBAL_SEED"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    inject = {13: math.nan, 16: 1.05, 17: 1.05, 23: math.nan}
    guard_ddp_run.run(str(whole), inject, save_every=17)
    guard_ddp_run.run(str(resumed), inject, ckpt_path=str(whole / "ckpt" / "epoch=0-step=17.ckpt"))
    for rank in (0, 1):
        a, b = (json.loads((d / f"rank{rank}.json").read_text()) for d in (whole, resumed))
        assert [(e["step"], e["kept_step"]) for e in a["events"]] == [(15, 10), (25, 20)]
        assert b["events"] == a["events"]
        assert b["used"] == a["used"][17:]
        assert b["weights"] == a["weights"]
        assert b["monitor"] == a["monitor"]  # the levels: each rank's restored open window was its own


def test_a_bump_the_patience_lets_pass_spoils_the_next_keep(tmp_path: Path) -> None:
    # Steps 10-14 report ten times their loss: the window ending at 15 is high, the next one is clean (no
    # event), but the keep at 20 is refused, so the NaN at 23 rolls back to the state of step 10.
    model = InjectingModel(inject={**{s: 10.0 for s in range(10, 15)}, 23: math.nan})
    guard = DivergenceGuard(**GUARD)
    fit(tmp_path, model, guard)
    assert [(e["step"], e["reason"], e["kept_step"]) for e in guard.events] == [(25, "non-finite", 10)]
    assert finite(model) and guard.kept_step == 50


@pytest.mark.parametrize(("keep_count", "kept_step"), [(3, 0), (2, 20), (1, 20)])
def test_with_copies_held_a_rollback_goes_to_the_newest_kept_at_a_rate_the_cut_schedule_stays_above(
        tmp_path: Path, keep_count: int, kept_step: int) -> None:
    # Copies are kept at 0, 10 and 20. After the NaN at 23 the halved schedule stays below 0.5 * rate(25): the
    # copies of 10 and 20 were kept at higher rates, the one of 0 was not. With three held the rollback goes
    # to 0; with two (10, 20) none fits and it goes to the newest, as with one.
    rate = schedule()
    assert rate(0) <= 0.5 * rate(25) < min(rate(10), rate(20))
    model, snapshots = InjectingModel(inject={23: math.nan}), Snapshots([20, 25])
    start = {k: v.detach().clone() for k, v in model.state_dict().items()}
    guard = DivergenceGuard(**GUARD, keep_count=keep_count)
    fit(tmp_path, model, guard, snapshots)
    assert [(e["step"], e["kept_step"], e["rate_scale"]) for e in guard.events] == [(25, kept_step, 0.5)]
    for name, value in (start if kept_step == 0 else snapshots.weights[20]).items():
        assert torch.equal(snapshots.weights[25][name], value), name
    assert (snapshots.buffers[25] == []) == (kept_step == 0)  # the train-start copy has no momentum yet
    assert finite(model) and used_lrs(model)[25:] == [rate(s) * 0.5 for s in range(25, STEPS)]


# ---------------------------------------------------------------------------------------------- cycles and deaths
class CyclingModel(RecordingModel):
    """A small regression on shuffled batches (SGD, momentum 0.9): its loss is noisy and rises with a cyclical
    rate, as a real run's does."""

    def __init__(self) -> None:
        super().__init__(optimizer=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), num_batches=16)
        generator = torch.Generator().manual_seed(3)
        self.x = torch.randn(64, 4, generator=generator)
        self.y = torch.tanh(self.x @ torch.randn(4, 1, generator=generator))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return (self(x) - y).pow(2).mean()

    def train_dataloader(self) -> Any:
        return DataLoader(TensorDataset(self.x, self.y), batch_size=4, shuffle=True,
                          generator=torch.Generator().manual_seed(0))


HEALTHY = {  # each policy at a peak where the run trains (its loss rises at every peak and comes back down)
    "triangular": lambda: CyclicLR(0.002, 0.1, step_size_up=10),
    "triangular2": lambda: CyclicLR(0.002, 0.1, step_size_up=10, mode="triangular2"),
    "exp_range": lambda: CyclicLR(0.002, 0.1, step_size_up=10, mode="exp_range", gamma=0.995),
    "1cycle": lambda: OneCycleLR(max_lr=0.03),
    "sgdr": lambda: CosineRestartsLR(max_lr=0.05, first_cycle="20 steps"),
    "wsd": lambda: WarmupStableDecayLR(max_lr=0.05, warmup="10%", decay="20%"),
}


@pytest.mark.parametrize("policy", list(HEALTHY))
def test_a_healthy_cyclical_run_is_bit_identical_to_one_without_the_guard(tmp_path: Path, policy: str) -> None:
    runs = []
    for guard in (None, DivergenceGuard(**GUARD)):
        model = CyclingModel()
        pl.Trainer(**trainer_kwargs(tmp_path, max_steps=160),
                   callbacks=[HEALTHY[policy](), *([guard] if guard else [])]).fit(model)
        runs.append(model)
        assert guard is None or guard.events == []
    assert runs[0].used == runs[1].used
    for (name, a), (_, b) in zip(runs[0].state_dict().items(), runs[1].state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_the_rate_blind_rule_takes_the_triangular_cycle_for_a_divergence(tmp_path: Path) -> None:
    # What the rate-aware rule avoids: the same healthy triangular run, judged without the rates, is rolled back.
    guard = DivergenceGuard(**GUARD, spike_factor=1.2, rate_aware=False, relapse_share=0.0)
    with pytest.warns(UserWarning, match="DivergenceGuard: at step"):
        pl.Trainer(**trainer_kwargs(tmp_path, max_steps=160),
                   callbacks=[HEALTHY["triangular"](), guard]).fit(CyclingModel())
    assert guard.events


def test_a_run_that_breaks_in_its_first_windows_goes_back_to_its_initial_state_and_recovers(tmp_path: Path) -> None:
    # The initial state is kept at train start: a NaN in the first window rolls back to it exactly.
    model, snapshots = InjectingModel(inject={2: math.nan}), Snapshots([5])
    initial = {k: v.detach().clone() for k, v in InjectingModel().state_dict().items()}
    guard = DivergenceGuard(**GUARD)
    fit(tmp_path, model, guard, snapshots)
    assert [(e["step"], e["reason"], e["kept_step"]) for e in guard.events] == [(5, "non-finite", 0)]
    for name, value in initial.items():
        assert torch.equal(snapshots.weights[5][name], value), name
    assert snapshots.buffers[5] == []  # the optimizer state of step 0: no momentum yet
    assert finite(model) and model.losses[-1] < 0.5 * model.losses[6]  # it learns again from there


def test_a_run_that_ends_back_at_its_untrained_loss_raises_or_warns(tmp_path: Path) -> None:
    # The model learns (its loss falls far below the first window's), then the last window reports its first loss
    # again: one relapse window (patience 2 makes no event in the run), and the fit ends there.
    plain = InjectingModel()
    fit(tmp_path / "plain", plain, None)
    back = {s: plain.losses[0] / plain.losses[s] for s in range(STEPS - 5, STEPS)}
    with pytest.raises(DivergenceError, match=r"ended at step 50 with no rollback .* \(relapse\).*Lower the peak"):
        fit(tmp_path / "raise", InjectingModel(inject=back), DivergenceGuard(**GUARD))
    with pytest.warns(UserWarning, match=r"ended at step 50 .* it had learned and then broke.*try max_lr="):
        fit(tmp_path / "warn", InjectingModel(inject=back), DivergenceGuard(**GUARD, on_failure="warn"))


def test_on_failure_warn_gives_up_at_the_last_kept_state_and_stops_the_fit(tmp_path: Path) -> None:
    model = InjectingModel(inject={23: math.nan, 33: math.nan})
    guard = DivergenceGuard(**GUARD, max_rollbacks=1, on_failure="warn")
    with pytest.warns(UserWarning, match=r"gives up: at step 35 .*try max_lr="):
        trainer = fit(tmp_path, model, guard)
    assert trainer.global_step < STEPS and finite(model)  # stopped, at the kept weights (finite)


def test_a_second_rollback_aims_below_the_rate_where_the_loss_last_fell(tmp_path: Path) -> None:
    model = InjectingModel(inject={23: math.nan, 33: math.nan})
    guard = DivergenceGuard(**GUARD)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit(tmp_path, model, guard)
    first, second = guard.events
    assert first["rate_scale"] == 0.5  # the first cut: rate_factor
    assert second["rate_scale"] <= 0.25  # the second: rate_factor again at least, or below the last low's rate


class Converged(pl.LightningModule):
    """A linear model already at the true weights of noisy data (a fine-tune of a trained model): its training loss
    sits at the noise and has no room to fall. Records the rate each optimizer step used."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        weights = torch.randn(8, 1, generator=generator)
        self.layer = torch.nn.Linear(8, 1)
        with torch.no_grad():
            self.layer.weight.copy_(weights.T)
            self.layer.bias.zero_()
        x = torch.randn(1024, 8, generator=generator)
        self.data = TensorDataset(x, x @ weights + 0.5 * torch.randn(1024, 1, generator=generator))
        self.lrs: list[float] = []

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        self.lrs.append(optimizer.param_groups[0]["lr"])

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.01, momentum=0.9)

    def train_dataloader(self) -> Any:
        return DataLoader(self.data, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(1))


def test_a_fine_tune_whose_loss_cannot_fall_is_rolled_back_once_then_left_alone_with_its_rates(tmp_path: Path) -> None:
    # A loss that never falls looks the same for a dead network and a trained one. The guard retries once from the
    # initial state at a lower rate; when the loss falls there neither, it warns, stops judging progress and puts
    # the rates back: the fit ends normally, with no DivergenceError.
    model, guard = Converged(), DivergenceGuard()
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=10), callbacks=[OneCycleLR(max_lr=0.01), guard])
    with pytest.warns(UserWarning) as caught:
        trainer.fit(model)
    messages = [str(w.message) for w in caught if "DivergenceGuard" in str(w.message)]
    assert [e["reason"] for e in guard.events] == ["no progress"] and len(messages) == 2
    assert "rolled back to the state kept at step 0" in messages[0]
    assert "falls at no rate tried" in messages[1] and "relapse_share=0" in messages[1]
    assert trainer.global_step == 320 and guard.rate_scale == 1.0
    planned = OneCycleLR(max_lr=0.01).schedules(total_steps=320)[0][0]
    assert model.lrs[100:200] == pytest.approx([planned(s) * guard.events[0]["rate_scale"] for s in range(100, 200)])
    assert model.lrs[200:] == [planned(s) for s in range(200, 320)]  # bit for bit: the cut is undone


class BrokenAtStep3(Converged):
    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return super().training_step(batch, batch_idx) * (math.nan if self.global_step == 3 else 1.0)


def test_a_fit_that_never_learned_warns_unless_the_guard_saw_it_break(tmp_path: Path) -> None:
    # One "no progress" rollback, then the fit ends before the next verdict: a warning, not an error (the model
    # may have been trained before the fit). A run that broke first (a NaN) and then never learns raises.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pl.Trainer(**trainer_kwargs(tmp_path / "warn", max_steps=150),
                   callbacks=[OneCycleLR(max_lr=0.01), DivergenceGuard()]).fit(Converged())
    ends = [str(w.message) for w in caught if "the fit ended" in str(w.message)]
    assert len(ends) == 1 and "never learned: either the network died" in ends[0]
    assert "or it was trained before this fit began" in ends[0]
    broken = BrokenAtStep3()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*DivergenceGuard: at step.*")
        with pytest.raises(DivergenceError, match=r"\(no progress\).*it never learned, so its weights are not"):
            pl.Trainer(**trainer_kwargs(tmp_path / "raise", max_steps=150),
                       callbacks=[OneCycleLR(max_lr=0.01), DivergenceGuard()]).fit(broken)


def test_a_fit_whose_first_window_blew_up_and_that_ends_at_its_first_steps_loss_is_not_silent(tmp_path: Path) -> None:
    # Steps 1-4 report twice their loss, so the first window (the rule's untrained reference) is already high; the
    # run then learns and its last window reports the first step's loss again. Against that first window the last
    # one is no relapse; against the first step's loss (read with the first check) it is back where it began.
    plain = InjectingModel()
    fit(tmp_path / "plain", plain, None)
    inject = {s: 2.0 for s in range(1, 5)}
    inject.update({s: plain.losses[0] / plain.losses[s] for s in range(STEPS - 5, STEPS)})
    guard = DivergenceGuard(**GUARD)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(tmp_path / "guarded", InjectingModel(inject=inject), guard)
    ends = [str(w.message) for w in caught if "the fit ended" in str(w.message)]
    assert guard.events == [] and len(ends) == 1, ends
    assert "(no progress)" in ends[0] and "never learned: either the network died" in ends[0]
