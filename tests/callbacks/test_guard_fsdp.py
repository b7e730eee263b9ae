"""DivergenceGuard under FSDP2 on CPU: Lightning's ``ModelParallelStrategy(data_parallel_size=2,
tensor_parallel_size=1)``, 2 ranks over gloo, the module sharded with ``fully_shard``. The fit runs in
``tests/scripts/guard_fsdp_run.py`` (the strategy's launcher re-executes ``sys.argv``); the ranks write what they saw.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from ports import run_distributed_script

from lightning_clr import OneCycleLR

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "guard_fsdp_run.py"


@pytest.mark.multiprocess
@pytest.mark.timeout(300)
def test_fsdp2_ranks_roll_their_own_shards_back_alike(tmp_path: Path) -> None:
    run_distributed_script(SCRIPT, tmp_path, timeout=240)
    ranks = [json.loads((tmp_path / f"guard-rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [r["rank"] for r in ranks] == [0, 1] and all(r["world_size"] == 2 for r in ranks)
    # The NaN of step 13 is caught at the check of step 15, on both ranks, back to the state kept at step 10.
    events = [(e["step"], e["reason"], e["kept_step"], e["rate_scale"]) for e in ranks[0]["events"]]
    assert events == [(15, "non-finite", 10, 0.5)] and ranks[1]["events"] == ranks[0]["events"]
    for record in ranks:
        # each rank's local shards of the weights and of the momentum are bit for bit those it kept
        assert record["kept_equal"], record["rank"]
        assert record["finite"] and record["global_step"] == 32
    # The same rates and (rank-reduced) losses on both ranks; after the rollback, half the schedule's rates.
    assert ranks[0]["lrs"] == ranks[1]["lrs"] and ranks[0]["losses"] == ranks[1]["losses"]
    planned = OneCycleLR(max_lr=0.05).schedules(total_steps=32)[0][0]
    assert ranks[0]["lrs"] == pytest.approx([planned(s) * (0.5 if s >= 15 else 1.0) for s in range(32)], rel=1e-12)
    losses = ranks[0]["losses"]
    assert math.isnan(losses[14]) and all(math.isfinite(v) for v in losses[15:])
