"""Does ``DivergenceGuard()`` make 1cycle "auto" as good as the tuned peak where the suggested peak is too high?

``auto_bounds.py`` runs every "auto" policy without a guard, as a new user would. Where 1cycle "auto" misses the
tuned peak (on ConvBase, a network without normalisation, its peak kills seeds), the README's advice is to add
``DivergenceGuard()``. This script measures that advice on the same five families, seeds and tuned peaks (test
accuracy, one torch thread a run): tuned 1cycle, 1cycle "auto", and 1cycle "auto" with a default
``DivergenceGuard()``, with the guard's rollbacks per seed. It shares ``auto_bounds.py``'s cache, so with that
cache in ``--output`` only the guarded runs are new::

    python benchmarks/auto_guard.py --workers 1 --output benchmarks/results     # ~2 min with the cache
    python benchmarks/auto_guard.py --families mlp --seeds 1 --workers 1          # a smoke test
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Sequence
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from auto_report import goal_misses, median_range  # noqa: E402
from auto_runs import CACHE, GUARDED, compare, tune  # noqa: E402
from bench_pool import worker_init  # noqa: E402
from families import FAMILIES  # noqa: E402
from reporting import finish_report, markdown_table  # noqa: E402

METHODS = ("1cycle", "1cycle-auto", GUARDED)


def _median(outcomes: Sequence[Any]) -> float:
    return statistics.median(o.accuracy or 0.0 for o in outcomes)


def goal(tuned: float, outcomes: Sequence[Any]) -> str:
    """The goal's part against tuned 1cycle: median within 1 point, no seed more than 3 under, no error (the part
    against Prodigy and schedule-free is in ``auto_bounds.py``'s table)."""
    misses = goal_misses([o.accuracy for o in outcomes], tuned)
    return "met" if not misses else "missed: " + "; ".join(misses)


def table(results: dict[str, dict[str, Any]], seeds: int) -> str:
    rows = []
    for family, entry in results.items():
        runs = entry["runs"]
        tuned = _median(runs["1cycle"])
        auto, guarded = runs["1cycle-auto"], runs[GUARDED]
        rollbacks = " ".join(str(o.bounds.get("rollbacks", "-")) for o in guarded)
        rows.append([family, f"{entry['peak']:.3g}", median_range([o.accuracy for o in runs["1cycle"]]),
                     median_range([o.accuracy for o in auto]), median_range([o.accuracy for o in guarded]),
                     f"{_median(guarded) - _median(auto):+.1f}", rollbacks, goal(tuned, auto), goal(tuned, guarded)])
    headers = ["family", "tuned peak", "tuned 1cycle", "1cycle auto", "1cycle auto + guard", "guard - auto",
               "rollbacks by seed", "vs tuned, auto", "vs tuned, auto + guard"]
    return f"Test accuracy (%), median [min, max] over {seeds} seeds:\n\n" + markdown_table(headers, rows)


def main(argv: Sequence[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--tune-seeds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--output", default=None, help="folder for the cache (auto_bounds.py's) and auto_guard.md")
    args = parser.parse_args(argv)
    worker_init()
    cache = None
    if args.output:
        os.makedirs(args.output, exist_ok=True)
        cache = os.path.join(args.output, CACHE)
    results = {}
    for family in [f for f in args.families.split(",") if f]:
        peak, _ = tune(family, args.tune_seeds, args.workers, cache)
        results[family] = {"peak": peak, "runs": compare(family, peak, args.seeds, args.workers, cache, METHODS)}
    return finish_report(table(results, args.seeds), "auto_guard.py", argv, args.output, "auto_guard.md")


if __name__ == "__main__":
    main()
