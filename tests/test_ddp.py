"""Distributed training on CPU (2 ranks, gloo): every rank applies the single-process schedule of the per-rank
step count, resume restores the same step on every rank, the callback adds no collective communication and
logs once; optimizers wrapped by a strategy are unwrapped; FSDP where Lightning allows it on CPU.

``ddp_spawn`` runs in-process (its ranks are fresh processes that unpickle the Trainer, so the objects here
are not the ones that trained: the ranks write what they saw to files). ``ddp`` re-executes ``sys.argv``,
so it runs ``tests/scripts/ddp_run.py`` in a subprocess with a reserved MASTER_PORT and a timeout.

These tests are marked ``multiprocess`` (``-m "not multiprocess"`` deselects them). What made them flaky on a
loaded 2-core machine, and what is done about it:

* the port: a port found by binding to port 0 lies in the kernel's ephemeral range, which it also hands out
  to outgoing connections; in the seconds before rank 0 binds it, another process can get it. The ports now
  come from below that range (``tests/ports.py``), and a subprocess run that still meets "address already in
  use" retries once with another port;
* the exit: Lightning never destroys a gloo process group, so the ranks tore it down at interpreter exit in
  no particular order, and a rank whose peer (or the TCPStore on rank 0) was already gone could abort
  (SIGABRT). ``ddp_run.py`` now ends with a barrier, destroys the group, and rank 0 waits for its child rank
  and reports that rank's exit code; the ``ddp_spawn`` fits (here, in the snapshot, guard and range-test
  tests) end the same way through ``helpers.EndsDistributedCleanly`` (a spawned rank aborted at exit once in
  CI, with Lightning 2.5.1, before they did);
* the time: five DDP fits in one subprocess took more than the old 240 s limit under load; the limits are
  now generous (they only bound a hang), and a failure shows the exit code and both output streams.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from ports import DIST_ENV, restored_environ, run_distributed_script
from pytorch_lightning.strategies import SingleDeviceStrategy

from lightning_clr import CyclicLR, OneCycleLR, WarmupStableDecayLR
from lightning_clr._trainer import unwrap_optimizer as _unwrap
from lightning_clr.schedules import CyclicSchedule, OneCycleSchedule, WarmupStableDecaySchedule

from helpers import EndsDistributedCleanly, RecordingModel, trainer_kwargs, used_lrs

SCRIPTS = Path(__file__).resolve().parent / "scripts"
sys.path.insert(0, str(SCRIPTS))
import ddp_run  # noqa: E402

# The single-process maths for the per-rank step count: 20 batches / 2 ranks = 10 steps per epoch.
STEPS = 2 * ddp_run.STEPS_PER_RANK_EPOCH
SCHEDULE = CyclicSchedule(0.01, 0.1, ddp_run.STEPS_PER_RANK_EPOCH, None, "triangular2")
EXPECTED_LR = SCHEDULE.values(STEPS)
EXPECTED_MOMENTUM = CyclicSchedule(0.9, 0.8, ddp_run.STEPS_PER_RANK_EPOCH, None, "triangular2").values(STEPS)
#: Hooks that run at every step: the callback must make no collective call in them.
PER_STEP = {"on_train_batch_start", "on_train_batch_end", "on_before_optimizer_step", "_write", "_log"}



@pytest.fixture
def clean_dist_env():
    """Launchers leave distributed variables in os.environ; keep them out of the other tests."""
    with restored_environ(DIST_ENV):
        yield


def run_script(tmp_path: Path, *args: str, timeout: float = 420) -> None:
    """Runs ``tests/scripts/ddp_run.py`` in its own processes (see ``ports.run_distributed_script``)."""
    run_distributed_script(SCRIPTS / "ddp_run.py", tmp_path, *args, timeout=timeout)


def read_ranks(output: Path, phase: str) -> list[dict[str, Any]]:
    records = [json.loads((output / f"{phase}-rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [r["rank"] for r in records] == [0, 1]
    assert all(r["world_size"] == 2 for r in records)
    return records


def read_metrics(output: Path, phase: str, rank: int) -> list[dict[str, float]]:
    path = output / f"{phase}-metrics-rank{rank}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def check_full_run(output: Path, phase: str) -> list[dict[str, Any]]:
    """The checks every uninterrupted 2-epoch DDP run must pass; returns the rank records."""
    ranks = read_ranks(output, phase)
    for record in ranks:
        # "1 epochs" is one epoch of per-rank optimizer steps (after the distributed sampler): 10, not 20.
        assert record["step_size_up"] == ddp_run.STEPS_PER_RANK_EPOCH
        assert record["estimated_stepping_batches"] == STEPS
        steps = [step for step, _, _ in record["used"]]
        assert steps == list(range(STEPS))
        # Every step of every rank applies the single-process schedule.
        assert [lrs[0] for _, lrs, _ in record["used"]] == pytest.approx(EXPECTED_LR, rel=1e-12)
        assert [moms[0] for _, _, moms in record["used"]] == pytest.approx(EXPECTED_MOMENTUM, rel=1e-12)
        # After the last step the optimizer holds the value of the step that would come next.
        assert record["final_lr"] == pytest.approx(SCHEDULE(STEPS), rel=1e-12)
        check_no_collectives(record)
    assert ranks[0]["used"] == ranks[1]["used"]  # bit-identical on both ranks

    # Logged once, by rank zero, with the rates applied; the LearningRateMonitor (placed before the callback)
    # logs the same rates.
    rank0, rank1 = read_metrics(output, phase, 0), read_metrics(output, phase, 1)
    clr_rows = [row for row in rank0 if "lr-clr-SGD" in row]
    assert [row["step"] for row in clr_rows] == list(range(STEPS))
    assert [row["lr-clr-SGD"] for row in clr_rows] == pytest.approx(EXPECTED_LR, rel=1e-12)
    assert [row["lr-clr-SGD-momentum"] for row in clr_rows] == pytest.approx(EXPECTED_MOMENTUM, rel=1e-12)
    monitor_rows = [row for row in rank0 if "lr-SGD" in row]
    assert [row["step"] for row in monitor_rows] == list(range(STEPS))
    assert [row["lr-SGD"] for row in monitor_rows] == pytest.approx(EXPECTED_LR, rel=1e-12)
    assert [row["lr-SGD-momentum"] for row in monitor_rows] == pytest.approx(EXPECTED_MOMENTUM, rel=1e-12)
    assert rank1, "rank 1's logger was called (by Lightning and the LearningRateMonitor)"
    clr_on_rank1 = [row for row in rank1 if any(key.startswith("lr-clr") for key in row)]
    assert clr_on_rank1 == [], "the callback logs on rank 0 only"
    return ranks


def check_no_collectives(record: dict[str, Any]) -> None:
    """No collective call from the callback at any step. The only ones made while it runs are at fit start:
    Lightning's own train-loader set-up (reached through ``trainer.estimated_stepping_batches``), which fit
    would run anyway (see the baseline comparison in the ``ddp`` test)."""
    in_clr = record["collectives_in_clr"]
    assert not PER_STEP & set(in_clr), f"collective calls in per-step hooks: {in_clr}"
    assert set(in_clr) <= {"on_fit_start"}, in_clr
    # The counter works: a barrier made as if from a hook is counted.
    assert record["probe"].get("torch.distributed.barrier", 0) >= 1
    assert record["probe"].get("strategy.barrier", 0) == 1


# ---------------------------------------------------------------------------------------------------- ddp_spawn
@pytest.mark.multiprocess
@pytest.mark.timeout(420)
def test_ddp_spawn_every_rank_applies_the_per_rank_schedule(tmp_path, clean_dist_env):
    # conftest.py sets MASTER_PORT to a reserved port for every multiprocess test (see tests/ports.py).
    trainer = ddp_run.make_trainer(str(tmp_path), "full", "ddp_spawn", checkpoint=True)
    model = RecordingModel(num_batches=ddp_run.NUM_BATCHES)
    trainer.fit(model)
    check_full_run(tmp_path, "full")
    # The launching process's objects did not train: the ranks' copies did.
    assert model.used == []
    clr = next(cb for cb in trainer.callbacks if isinstance(cb, CyclicLR))
    assert clr.step_schedule() is None  # built in the ranks only
    # The ranks saved the step count into the checkpoints (every 7 steps).
    checkpoint = torch.load(tmp_path / "full-ckpt" / "step=7.ckpt", weights_only=False)
    assert checkpoint["global_step"] == 7
    state = checkpoint["callbacks"][clr.state_key]
    assert state["fingerprint"] == clr.fingerprint()


# ---------------------------------------------------------------------------------------------------- ddp
@pytest.mark.multiprocess
@pytest.mark.timeout(900)
def test_ddp_subprocess_schedule_resume_own_clock_and_no_added_collectives(tmp_path):
    run_script(tmp_path, "--strategy", "ddp", timeout=840)

    full = check_full_run(tmp_path, "full")
    own_clock = check_full_run(tmp_path, "own_clock")
    assert all(r["strategy"] == "DDPStrategy" for r in full)
    # count_skipped_steps=True saves global_step as the count; False counts real updates: 20 per rank either way.
    assert [r["state"]["step_counts"] for r in full] == [{"0": STEPS}, {"0": STEPS}]
    assert [r["state"]["step_counts"] for r in own_clock] == [{"0": STEPS}, {"0": STEPS}]

    # Resume from the step-7 checkpoint: every rank continues at step 7 with the schedule's rate.
    for phase in ("resume", "own_clock_resume"):
        ranks = read_ranks(tmp_path, phase)
        for record in ranks:
            steps = [step for step, _, _ in record["used"]]
            assert steps == list(range(ddp_run.CHECKPOINT_STEP, STEPS)), phase
            assert [lrs[0] for _, lrs, _ in record["used"]] == pytest.approx(
                EXPECTED_LR[ddp_run.CHECKPOINT_STEP:], rel=1e-12)
            assert [moms[0] for _, _, moms in record["used"]] == pytest.approx(
                EXPECTED_MOMENTUM[ddp_run.CHECKPOINT_STEP:], rel=1e-12)
            check_no_collectives(record)
        assert ranks[0]["used"] == ranks[1]["used"]
    own_resumed = read_ranks(tmp_path, "own_clock_resume")
    assert [r["state"]["step_counts"] for r in own_resumed] == [{"0": STEPS}, {"0": STEPS}]

    # Compared with the same fits without the callback, it adds no collective call at all.
    baseline = read_ranks(tmp_path, "baseline")
    for rank in (0, 1):
        assert baseline[rank]["collectives_in_clr"] == {}
        assert full[rank]["collectives_total"] == baseline[rank]["collectives_total"]
        assert own_clock[rank]["collectives_total"] == baseline[rank]["collectives_total"]
        assert sum(baseline[rank]["collectives_total"].values()) > 0  # the counter saw Lightning's own calls


# ---------------------------------------------------------------------------------------------------- wrappers
class FakeStrategyWrapper:
    """A DeepSpeed-like wrapper: not a torch Optimizer, holds it in ``.optimizer`` and delegates."""

    def __init__(self, optimizer: Any) -> None:
        self.optimizer = optimizer

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    @property
    def state(self) -> Any:
        return self.optimizer.state

    @property
    def defaults(self) -> dict[str, Any]:
        return self.optimizer.defaults

    def step(self, closure: Any = None) -> Any:
        return self.optimizer.step(closure)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return self.optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state_dict)


class WrappingStrategy(SingleDeviceStrategy):
    """A strategy that wraps every optimizer twice, as some strategies do."""

    def setup_optimizers(self, trainer: Any) -> None:
        super().setup_optimizers(trainer)
        self.optimizers = [FakeStrategyWrapper(FakeStrategyWrapper(o)) for o in self.optimizers]


def test_restored_environ_puts_back_set_and_unset_variables(monkeypatch):
    monkeypatch.setenv("LIGHTNING_CLR_T1", "before")
    monkeypatch.delenv("LIGHTNING_CLR_T2", raising=False)
    with restored_environ(("LIGHTNING_CLR_T1", "LIGHTNING_CLR_T2")):
        os.environ.update(LIGHTNING_CLR_T1="launcher", LIGHTNING_CLR_T2="launcher")
    assert os.environ["LIGHTNING_CLR_T1"] == "before" and "LIGHTNING_CLR_T2" not in os.environ
    with pytest.raises(RuntimeError), restored_environ(("LIGHTNING_CLR_T1",)):
        os.environ["LIGHTNING_CLR_T1"] = "launcher"
        raise RuntimeError("a failed launch")
    assert os.environ["LIGHTNING_CLR_T1"] == "before"


def test_unwrap_follows_optimizer_chains():
    sgd = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    assert _unwrap(sgd) is sgd
    assert _unwrap(FakeStrategyWrapper(FakeStrategyWrapper(sgd))) is sgd


@pytest.mark.parametrize("count_skipped_steps", [True, False])
def test_optimizer_wrapped_by_the_strategy_is_driven(tmp_path, count_skipped_steps):
    model = RecordingModel(num_batches=6)
    callback = OneCycleLR(max_lr=0.5, count_skipped_steps=count_skipped_steps)
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=1,
                                          strategy=WrappingStrategy(device=torch.device("cpu"))),
                         callbacks=[callback])
    trainer.fit(model)
    assert isinstance(trainer.strategy.optimizers[0], FakeStrategyWrapper)
    inner = trainer.strategy.optimizers[0].optimizer.optimizer
    expected = OneCycleSchedule(0.02, 0.5, 0.02 / 1e4, 6, 0.3, "cos")
    assert inner.param_groups[0]["lr"] == expected(6)  # the inner optimizer is the one written
    assert used_lrs(model) == pytest.approx(expected.values(6), rel=1e-12)
    assert callback.state_dict()["step_counts"] == {"0": 6}


# ---------------------------------------------------------------------------------------------------- fsdp
@pytest.mark.multiprocess
def test_fsdp_on_cpu(tmp_path, clean_dist_env):
    try:
        pl.Trainer(strategy="fsdp", accelerator="cpu", devices=2, logger=False, default_root_dir=str(tmp_path))
    except ValueError as error:
        if "requires a GPU accelerator" not in str(error):
            raise
        pytest.skip(f"pytorch_lightning {pl.__version__} refuses strategy='fsdp' on CPU ({error}); "
                    "on a CUDA machine tests/test_cuda.py::test_fsdp_on_one_gpu runs FSDP instead.")
    run_script(tmp_path, "--strategy", "fsdp", "--phases", "full")
    check_full_run(tmp_path, "full")


@pytest.mark.multiprocess
@pytest.mark.timeout(420)
def test_ddp_spawn_ranks_agree_on_the_plan_of_their_per_rank_run(tmp_path, clean_dist_env):
    """20 batches over 2 ranks: 10 steps an epoch per rank, 20 in the fit; both ranks apply the same rates."""
    callbacks = [WarmupStableDecayLR(max_lr=0.2, warmup="1 epochs", decay="25%"),
                 ddp_run.RankRecorder(str(tmp_path), "wsd"), EndsDistributedCleanly()]
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=2, strategy="ddp_spawn", devices=2),
                         callbacks=callbacks)
    trainer.fit(RecordingModel(num_batches=ddp_run.NUM_BATCHES))
    expected = WarmupStableDecaySchedule(0.2, 10, 5, 5)
    for rank in (0, 1):
        record = json.loads((tmp_path / f"wsd-rank{rank}.json").read_text())
        assert [lrs[0] for _, lrs, _ in record["used"]] == [expected(step) for step in range(20)], rank
