"""The LR range test under FSDP2 on CPU: Lightning's ``ModelParallelStrategy(data_parallel_size=2,
tensor_parallel_size=1)``, 2 ranks over gloo, the module sharded with ``fully_shard`` in ``configure_model``.

The strategy has only a launcher that re-executes ``sys.argv``, so the fits run in
``tests/scripts/fsdp_range_test.py`` with ``subprocess.run`` (a reserved port, a timeout, one retry when the port
was taken), like the ``ddp`` tests of ``tests/test_ddp.py``; the ranks write what they saw to files.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ports import address_in_use, reserve_port

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "fsdp_range_test.py"
DIST_ENV = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK",
            "LOCAL_WORLD_SIZE", "PL_GLOBAL_SEED", "PL_TRAINER_GPUS")


def _text(stream: Any) -> str:
    return stream.decode(errors="replace") if isinstance(stream, bytes) else (stream or "")


def run_fsdp_script(output: Path, timeout: float = 300) -> None:
    for attempt in (1, 2):
        env = {k: v for k, v in os.environ.items() if k not in DIST_ENV}
        env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(reserve_port()), PYTHONWARNINGS="ignore")
        command = [sys.executable, str(SCRIPT), str(output)]
        try:
            result = subprocess.run(command, cwd=output, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as error:
            pytest.fail(f"fsdp_range_test.py did not finish in {timeout:g} s.\n--- stdout (end)\n"
                        f"{_text(error.stdout)[-3000:]}\n--- stderr (end)\n{_text(error.stderr)[-5000:]}")
        if result.returncode == 0:
            return
        if attempt == 1 and address_in_use(result.stderr):
            continue
        pytest.fail(f"fsdp_range_test.py exited with code {result.returncode} (attempt {attempt}).\n"
                    f"--- stdout (end)\n{result.stdout[-3000:]}\n--- stderr (end)\n{result.stderr[-5000:]}")


@pytest.mark.multiprocess
@pytest.mark.timeout(360)
def test_fsdp2_range_test_restores_each_ranks_shards_and_ranks_agree(tmp_path):
    run_fsdp_script(tmp_path)
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
