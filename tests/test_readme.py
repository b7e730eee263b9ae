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


DOCS = ROOT / "docs"


def test_readme_is_a_first_visit_and_links_only_to_what_exists():
    assert README.count("\n") < 250, "the reference material belongs in docs/, the README stays short"
    links = re.findall(r"\]\(((?:docs/|CHANGELOG|LICENSE)[^)#]*)", README)
    assert "docs/lengths-and-clock.md" in links
    missing = [link for link in links if not (ROOT / link).exists()]
    assert missing == []
    assert "mkdocs serve" in README and "site/" in README  # where the docs are built
    assert "## Known limitations" in README and "## Install" in README


def test_every_docs_page_is_in_the_nav_and_every_nav_entry_exists():
    nav = re.findall(r":\s*([\w/.-]+\.md)\s*$|^\s*-\s*([\w/.-]+\.md)\s*$",
                     (ROOT / "mkdocs.yml").read_text(), flags=re.M)
    entries = {a or b for a, b in nav}
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert entries == pages
    for placeholder in ("benchmarks/overhead.md", "benchmarks/auto_bounds.md", "benchmarks/time_to_accuracy.md",
                        "guard.md"):
        assert placeholder in entries


def test_api_reference_uses_only_public_top_level_names():
    import lightning_clr
    import lightning_clr.schedules  # a submodule: an attribute of the package once imported

    targets = re.findall(r"^::: (\S+)$", (DOCS / "reference.md").read_text(), flags=re.M)
    assert len(targets) >= 20
    for target in targets:
        module, _, name = target.rpartition(".")
        assert module in ("lightning_clr", "lightning_clr.schedules"), target
        owner = lightning_clr if module == "lightning_clr" else lightning_clr.schedules
        assert name in owner.__all__, target
    assert set(lightning_clr.__all__) <= {t.rpartition(".")[2] for t in targets}


@pytest.mark.parametrize("page", ["migrating.md", "schedules/custom.md"])
def test_docs_code_blocks_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), flags=re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, f"docs/{page}", "exec"), {"__name__": "docs"})


def test_every_figure_names_the_command_that_made_it():
    for page in [ROOT / "README.md", *DOCS.rglob("*.md")]:
        text = page.read_text()
        for match in re.finditer(r"!\[[^\]]*\]\(([^)]+\.png)\)", text):
            after = text[match.end():match.end() + 600]
            assert re.search(r"`python [^`]+`", after), f"{page.name}: {match.group(1)} names no command"
            assert (page.parent / match.group(1)).exists(), f"{page.name}: {match.group(1)} does not exist"


def test_ci_builds_the_docs_strictly_checks_the_wheel_and_lints_last():
    ci = (ROOT / ".ci" / "run").read_text()
    for command in ("mkdocs build --strict", "python -m build", "twine check", ".ci/smoke.py", 'lightning-clr" preview',
                    "OLDEST_LIGHTNING", "ruff check lightning_clr", "mypy lightning_clr"):
        assert command in ci, command
    assert ci.index("mypy lightning_clr") > ci.index("python -m pytest -q")
    assert "-e " not in ci[ci.index("python -m build"):ci.index("smoke.py")]  # the wheel, not an editable install
