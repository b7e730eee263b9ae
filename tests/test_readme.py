"""The README's self-contained code runs as written, and CI runs the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _python_blocks_under(heading: str) -> list[str]:
    section = README.split(heading, 1)[1]
    section = re.split(r"\n## ", section, maxsplit=1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


@pytest.mark.parametrize("heading", ["### The schedules on their own", "## Migrating from"])
def test_readme_examples_run(heading, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = _python_blocks_under(heading)
    assert blocks, f"no python block under {heading!r}"
    for block in blocks:
        exec(compile(block, f"README.md ({heading})", "exec"), {"__name__": "readme"})


def test_readme_schedule_values_are_what_the_schedules_return():
    from lightning_clr.schedules import CosineRestartsSchedule, CyclicSchedule, OneCycleSchedule

    clr = CyclicSchedule(start=0.001, peak=0.006, step_size_up=2000, mode="triangular2")
    assert (clr(0), clr(2000), clr(4000)) == (0.001, 0.006, 0.001)
    assert CosineRestartsSchedule(peak=0.1, first_cycle=6, t_mul=2).cycle_ends(42) == [6, 18, 42]
    assert OneCycleSchedule(0.004, 0.1, 4e-7, total_steps=1000)(5000) == 4e-07


def test_ci_runs_the_readme_test_command():
    setup = README.split("## Set-up on a fresh machine", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)\n```", setup, flags=re.S)
    assert len(commands) == 2, "set-up is two commands: the main example and the tests"
    example, tests = commands
    assert "torch==2.13.0" in example and "examples/train_digits.py" in example
    test_command = tests.split("&&")[-1].strip()
    assert test_command == "python -m pytest -q"
    assert test_command in (ROOT / ".ci" / "run").read_text()
