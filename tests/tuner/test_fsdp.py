"""The LR range test under FSDP2 on CPU: Lightning's ``ModelParallelStrategy(data_parallel_size=2,
tensor_parallel_size=1)``, 2 ranks over gloo, the module sharded with ``fully_shard`` in ``configure_model``.

The strategy has only a launcher that re-executes ``sys.argv``, so the fits run in
``tests/scripts/fsdp_range_test.py`` with ``subprocess.run`` (a reserved port, a timeout, one retry when the port
was taken), like the ``ddp`` tests of ``tests/test_ddp.py``; the ranks write what they saw to files.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from ports import run_distributed_script

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "fsdp_range_test.py"
@pytest.mark.multiprocess
@pytest.mark.timeout(360)
def test_fsdp2_range_test_restores_each_ranks_shards_and_ranks_agree(tmp_path):
    run_distributed_script(SCRIPT, tmp_path, timeout=300)
    for phase in ("cyclic", "one_cycle"):
        ranks = [json.loads((tmp_path / f"{phase}-rank{rank}.json").read_text()) for rank in (0, 1)]
        assert [r["rank"] for r in ranks] == [0, 1] and all(r["world_size"] == 2 for r in ranks)
        # The ranks hold different shards (the last layer's single row lies on rank 0 only) ...
        assert ranks[0]["shards_before"] != ranks[1]["shards_before"]
        assert ranks[0]["shard_sizes"][-1] == 1 and ranks[1]["shard_sizes"][-1] == 0
        for record in ranks:
            # ... and each rank's local shards of the parameters, the gradients and the optimizer's state, and
            # the random state, are bit for bit those before the test.
            assert record["shards_equal"], (phase, record["rank"])
            assert record["grads_equal"], (phase, record["rank"])
            assert record["state_equal"], (phase, record["rank"])
            assert record["rng_equal"], (phase, record["rank"])
        # The same curve (the loss is averaged over the ranks) and the same result on every rank.
        result = ranks[0]["result"]
        assert ranks[1]["result"] == result
        assert result["suggestion_error"] is None and result["suggestions"]["one_cycle"]["max_lr"] > 0
        assert len(result["lrs"]) >= 10
        # The training after the test: same rates and losses on both ranks, from the "auto" bounds.
        assert ranks[0]["lrs"] == ranks[1]["lrs"] and ranks[0]["losses"] == ranks[1]["losses"]
        losses = ranks[0]["losses"]
        assert ranks[0]["global_step"] == len(ranks[0]["lrs"]) == len(losses) == 32
        # Its first step saw the weights and the batch of the sweep's first step: all was put back.
        assert losses[0] == pytest.approx(result["losses"][0], rel=1e-6)
        assert all(math.isfinite(loss) for loss in losses)
        assert sum(losses[-16:]) / 16 < losses[0]  # it trains
        suggestion = result["suggestions"][phase]
        if phase == "cyclic":
            assert max(ranks[0]["lrs"]) <= suggestion["max_lr"] * (1 + 1e-9)
            assert min(ranks[0]["lrs"]) == pytest.approx(suggestion["base_lr"], rel=1e-9)
        else:
            assert max(ranks[0]["lrs"]) == pytest.approx(suggestion["max_lr"], rel=0.05)
