"""The README's main example runs end to end, learns, logs the scheduled rate and prints the README's numbers."""

from __future__ import annotations

import csv
import os
import re
import subprocess
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


ROOT = EXAMPLES.parent
FOREIGN_NOISE = ("LeafSpec", "💡 Tip", "litlogger", "does not have many workers", "GPU available but not used",
                 "Warning", "warn(")


def _readme_main_example_output() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("The main example's output", 1)[1]
    block = section.split("```\n", 2)[1]
    return [line for line in block.splitlines() if line.strip()]


def test_the_main_example_prints_the_numbers_the_readme_shows_and_nothing_foreign(tmp_path):
    """The README's command, run as a user runs it: the printed lines (accuracy included) are the README's,
    and no foreign deprecation warning or tip reaches the terminal."""
    expected = _readme_main_example_output()
    assert any(line.startswith("test accuracy: ") for line in expected)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, str(EXAMPLES / "train_digits.py"), "--output", str(tmp_path)],
                         capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert run.returncode == 0, f"exit code {run.returncode}\n--- stdout\n{run.stdout}\n--- stderr\n{run.stderr}"
    printed = run.stdout.splitlines()
    for line in expected:
        assert line in printed, f"the README shows {line!r}, the example printed:\n{run.stdout}"
    noise = [line for line in (run.stdout + run.stderr).splitlines() if any(n in line for n in FOREIGN_NOISE)]
    assert noise == [], "foreign warnings or tips printed:\n" + "\n".join(noise)


def test_the_snapshot_ensemble_example_runs_end_to_end(tmp_path):
    """A small run of the script (2 one-epoch cycles on the bundled digits): it trains, snapshots, ensembles
    and prints its table, quietly."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, str(EXAMPLES / "snapshot_ensemble.py"), "--dataset", "digits", "--seeds", "1",
               "--cycles", "2", "--cycle-epochs", "1", "--hidden", "16", "--no-baseline"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert run.returncode == 0, f"exit code {run.returncode}\n--- stdout\n{run.stdout}\n--- stderr\n{run.stderr}"
    rows = [line.split() for line in run.stdout.splitlines() if line.strip().startswith(("0 ", "mean"))]
    assert [row[0] for row in rows] == ["0", "mean"]
    assert all(10 < float(value) <= 100 for value in rows[0][1:])  # percentages, above chance
    noise = [line for line in (run.stdout + run.stderr).splitlines() if any(n in line for n in FOREIGN_NOISE)]
    assert noise == []


def _snapshot_table() -> tuple[str, dict[str, list[str]]]:
    """docs/snapshots.md: the environment line its table was measured in, and the table's rows by seed."""
    page = (ROOT / "docs" / "snapshots.md").read_text()
    environment = re.search(r"`(environment: [^`]+)`", page)
    assert environment, "docs/snapshots.md names the environment line its numbers come from"
    rows = {}
    for line in page.splitlines():
        cells = [cell.strip().strip("*") for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and (cells[0].isdigit() or cells[0] == "mean"):
            rows[cells[0]] = cells[1:]
    return " ".join(environment[1].split()), rows


def test_the_snapshot_table_reproduces_for_seed_0(tmp_path):
    """The documented command for seed 0 (full size, about 20 s on one thread) prints the page's row 0, where the
    environment line it prints first is the page's (another CPU's kernels or other versions round differently,
    and the page says so). The script's docstring quotes the same row and means."""
    environment, rows = _snapshot_table()
    assert sorted(rows) == ["0", "1", "2", "3", "4", "mean"]
    docstring = (EXAMPLES / "snapshot_ensemble.py").read_text()
    assert f"seed 0: {' / '.join(rows['0'])}" in docstring
    assert f"means {' / '.join(rows['mean'])}" in " ".join(docstring.split())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, str(EXAMPLES / "snapshot_ensemble.py"), "--seeds", "1"],
                         capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert run.returncode == 0, f"exit code {run.returncode}\n--- stdout\n{run.stdout}\n--- stderr\n{run.stderr}"
    printed = run.stdout.splitlines()
    assert printed[0].startswith("environment: ")
    if printed[0] != environment:
        pytest.skip(f"docs/snapshots.md's numbers are for {environment!r}; this machine prints {printed[0]!r}")
    (row,) = [line.split()[1:] for line in printed if line.split()[:1] == ["0"]]
    assert row == rows["0"], f"seed 0 printed {row}, docs/snapshots.md shows {rows['0']}\n{run.stdout}"
