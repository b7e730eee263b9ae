"""Light imports: the pure modules load neither torch nor Lightning, ``import lightning_clr`` is lazy, and
``lightning-clr --help`` answers fast. Each check runs in a fresh interpreter (this one has torch loaded)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "pytorch_lightning", "lightning", "lightning_fabric", "lightning_utilities", "matplotlib")
#: Every module of the schedules package, each imported first and alone in a fresh interpreter: each must load
#: on its own (no import circle that the package's import order hides) and stay light.
SCHEDULE_MODULES = sorted(f"lightning_clr.schedules.{path.stem}"
                          for path in (ROOT / "lightning_clr" / "schedules").glob("*.py") if path.stem != "__init__")
PURE = ["lightning_clr.schedules", *SCHEDULE_MODULES, "lightning_clr.lengths", "lightning_clr._checks",
        "lightning_clr.preview"]
#: The range test's suggestion rules (the tuner engineer's module): pure once it exists.
SUGGEST = "lightning_clr.tuner.suggest"


def _run(code: str) -> dict:
    """Runs ``code`` in a fresh interpreter on this checkout; it prints one JSON line, returned here."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def _loaded_after(statement: str) -> list[str]:
    code = (f"import json, sys\n{statement}\n"
            f"print(json.dumps(sorted(n for n in {HEAVY!r} if n in sys.modules)))")
    return _run(code)  # type: ignore[return-value]


def test_the_schedules_package_has_its_modules() -> None:
    assert {"lightning_clr.schedules._base", "lightning_clr.schedules.cyclic", "lightning_clr.schedules.one_cycle",
            "lightning_clr.schedules.cosine_restarts", "lightning_clr.schedules.ramps"} <= set(SCHEDULE_MODULES)


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_import_neither_torch_nor_lightning(module: str) -> None:
    assert _loaded_after(f"import {module}") == []


def test_suggestion_module_imports_neither_torch_nor_lightning() -> None:
    if not (ROOT / "lightning_clr" / "tuner" / "suggest.py").exists():
        pytest.skip(f"{SUGGEST} is not in this checkout yet")
    assert _loaded_after(f"import {SUGGEST}") == []


def test_the_package_is_lazy_and_its_names_still_work() -> None:
    result = _run(
        "import json, sys\n"
        "import lightning_clr\n"
        f"before = sorted(n for n in {HEAVY!r} if n in sys.modules)\n"
        "callback = lightning_clr.CyclicLR(base_lr=0.01, max_lr=0.1)\n"
        "print(json.dumps({'before': before, 'torch_after': 'torch' in sys.modules, 'repr': repr(callback),\n"
        "                  'names': sorted(lightning_clr.__all__)}))"
    )
    assert result["before"] == []
    assert result["torch_after"]  # the callback needed it, and got it on first use
    assert result["repr"] == "CyclicLR(base_lr=0.01, max_lr=0.1)"
    assert {"CyclicLR", "OneCycleLR", "CosineRestartsLR", "ScheduledLR", "SnapshotCheckpoint"} <= set(result["names"])


def test_cli_help_is_fast_and_imports_no_torch() -> None:
    code = (
        "import json, sys, time\n"
        "start = time.perf_counter()\n"
        "from lightning_clr.cli import main\n"
        "sys.argv = ['lightning-clr', '--help']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exit:\n"
        "    assert exit.code in (0, None), exit.code\n"
        f"print(json.dumps(sorted(n for n in {HEAVY!r} if n in sys.modules)))"
    )
    times, loaded = [], []
    for _ in range(3):
        start = time.perf_counter()
        loaded = _run(code)  # type: ignore[assignment]
        times.append(time.perf_counter() - start)  # the whole command: interpreter start-up included
    assert loaded == []
    assert statistics.median(times) < 1.0, f"lightning-clr --help took {times} s"


def test_every_public_name_is_in_all_and_loads_from_its_module() -> None:
    import lightning_clr

    assert sorted(lightning_clr.__all__) == sorted(lightning_clr._EXPORTS)
    for name in lightning_clr.__all__:
        value = getattr(lightning_clr, name)
        assert getattr(value, "__name__", name) == name


def _facade_homes() -> dict[str, dict[str, str]]:
    """Per package ``__init__`` (a facade), the module each name it hands on comes from: its ``from m import n``
    lines and its lazy ``_EXPORTS`` table (``{"name": "module"}``)."""
    import ast

    homes: dict[str, dict[str, str]] = {}
    for path in (ROOT / "lightning_clr").rglob("__init__.py"):
        table: dict[str, str] = {}
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                table.update((alias.asname or alias.name, node.module) for alias in node.names)
            elif isinstance(node, ast.Dict):
                table.update((k.value, v.value) for k, v in zip(node.keys, node.values, strict=True)
                             if isinstance(k, ast.Constant) and isinstance(v, ast.Constant))
        homes[".".join(path.parent.relative_to(ROOT).parts)] = table
    return homes


def _imported_modules(path: Path, package: str) -> set[str]:
    """The ``lightning_clr`` modules that the file at ``path`` (module ``package``) names in an import anywhere:
    at the top, inside a function, under ``TYPE_CHECKING``. ``from a import b`` counts ``a.b`` where it is a module,
    and a name taken from a package's facade counts the module it comes from (``from lightning_clr import CyclicLR``
    counts ``lightning_clr.callbacks.cyclic``)."""
    import ast

    homes = _facade_homes()

    def home(module: str, name: str) -> str:
        seen = set()
        while module in homes and name in homes[module] and module not in seen:  # follow facade to facade
            seen.add(module)
            module = homes[module][name]
        return module

    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package
                base = ".".join(package.split(".")[: -node.level] + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
            names.update(home(base, alias.name) for alias in node.names)
    return {name for name in names if name.startswith("lightning_clr")}


def test_no_module_of_the_package_takes_part_in_an_import_circle() -> None:
    # The packages' __init__ files are facades (lazy re-exports of everything), so they are left out of the graph,
    # as a reader would: a circle is two modules of code that need each other, however late or only for typing.
    files = {".".join(path.relative_to(ROOT).with_suffix("").parts): path
             for path in (ROOT / "lightning_clr").rglob("*.py") if path.name != "__init__.py"}
    graph = {module: sorted(_imported_modules(path, module) & set(files) - {module}) for module, path in files.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []
    circles: list[list[str]] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for other in graph[module]:
            if state.get(other) == 1:
                circles.append([*path[path.index(other):], other])
            elif other not in state:
                visit(other)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert circles == []
    assert len(graph) > 30 and graph["lightning_clr.tuner.result"]  # the walk saw the package and its imports


@pytest.mark.parametrize("package", ["tuner", "schedules"])
def test_the_tuner_and_the_schedules_stand_below_the_callbacks(package: str) -> None:
    # As in Lightning (callbacks/lr_finder.py over tuner/lr_finder.py): the callbacks use the range test and the
    # schedules, never the other way round; what both need (writing a param group) lies below both.
    files = sorted((ROOT / "lightning_clr" / package).glob("*.py"))
    imported = {name for path in files
                for name in _imported_modules(path, ".".join(path.relative_to(ROOT).with_suffix("").parts))}
    assert files and not {name for name in imported if name.startswith("lightning_clr.callbacks")}
