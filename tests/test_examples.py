"""The README's main example runs end to end and learns; its logs hold the scheduled rate."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))

import train_digits  # noqa: E402


@pytest.mark.parametrize("schedule", ["cyclic", "one_cycle", "cosine_restarts"])
def test_main_example_trains_and_logs_the_rate(tmp_path, schedule):
    result = train_digits.main(["--schedule", schedule, "--epochs", "3", "--output", str(tmp_path)])

    assert result["test_acc"] > 0.85  # 3 epochs of a small MLP on digits: a broken schedule would not get here
    assert result["steps"] == 3 * 17  # 1,079 training digits / batch 64 = 17 optimizer steps per epoch
    (metrics,) = tmp_path.glob("csv/version_*/metrics.csv")
    with metrics.open() as handle:
        rows = list(csv.DictReader(handle))
    rates = [float(r["lr-clr-SGD"]) for r in rows if r.get("lr-clr-SGD")]
    momenta = [float(r["lr-clr-SGD-momentum"]) for r in rows if r.get("lr-clr-SGD-momentum")]
    assert len(rates) == 51 and len(set(rates)) > 10  # one value per step, and it moves
    if schedule == "cosine_restarts":
        assert rates[0] == pytest.approx(0.3) and not momenta
    else:
        assert len(momenta) == 51
    assert list(tmp_path.glob("tensorboard/version_*/events.out.tfevents.*"))
