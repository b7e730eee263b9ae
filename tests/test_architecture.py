"""docs/architecture.md, the map of the code: it names every module, and every path it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAP = ROOT / "docs" / "architecture.md"


def test_the_map_names_every_module_and_nothing_that_is_not_there():
    text = MAP.read_text()
    named = set(re.findall(r"`(lightning_clr/[\w/]+\.py)`", text))
    modules = {path.relative_to(ROOT).as_posix() for path in (ROOT / "lightning_clr").rglob("*.py")
               if path.name != "__init__.py" or path.parent.name == "lightning_clr"}  # the sub-packages' faces aside
    assert sorted(modules - named) == [], "modules the map does not name"
    assert sorted(named - modules) == [], "paths on the map that do not exist"
    for folder in re.findall(r"`((?:lightning_clr|tests)/[\w/]+/)`", text):
        assert (ROOT / folder).is_dir(), folder


def test_the_map_is_in_the_site_navigation():
    assert "architecture.md" in (ROOT / "mkdocs.yml").read_text()
