"""Do "auto" bounds from a default ``LRRangeTest()`` train as well as a grid-tuned 1cycle peak, on five families?

For each family of :mod:`families` (a CNN without normalisation + SGD, a residual CNN with BatchNorm + Nesterov,
an MLP + AdamW, a character transformer + AdamW, a GRU + Adam) the script

1. tunes the 1cycle peak on the VALIDATION split over the family's grid (a half decade apart, refined by two
   points a quarter decade either side of the best), ``--tune-seeds`` seeds per point;
2. trains ``--seeds`` seeds of each method and reports the TEST accuracy: ``1cycle`` at the tuned peak;
   ``1cycle-auto`` (``OneCycleLR(max_lr="auto")``), ``triangular2-auto`` (``CyclicLR("auto", "auto",
   mode="triangular2", step_size_up="auto")``) and ``cosine-auto`` (``CosineRestartsLR(max_lr="auto")``, three
   cycles of 1, 2 and 4 sevenths of the run), each after a default ``LRRangeTest()``; ``prodigy``
   (``prodigyopt.Prodigy(lr=1.0)``, cosine decay over the run as its authors advise) and ``schedulefree``
   (``SGDScheduleFree`` / ``AdamWScheduleFree`` at their default rate, 5% warm-up, ``train()``/``eval()`` around
   training and evaluation, BatchNorm statistics recomputed at the evaluated weights).

    python benchmarks/auto_bounds.py --output benchmarks/results           # all families (~2 h, 2 busy cores)
    python benchmarks/auto_bounds.py --families mlp --seeds 1 --tune-seeds 1 --workers 1   # a smoke test
    python benchmarks/auto_bounds.py --output benchmarks/results --rerun convbase/cosine-auto   # after a rule change

Runs are cached in ``auto_bounds.jsonl`` next to the report: a rerun resumes, and ``--rerun
convbase/cosine-auto,...`` drops the cached test runs of those family/method cells first (after a rule change),
so that only they run again and the report covers every family. Each run uses one torch thread. ``--curves``
only records the default range test's curves (for developing the rules offline) into ``auto_bounds_curves.json``.

The runs and their cache are in :mod:`auto_runs`, the tables in :mod:`auto_report`, the models and data in
:mod:`families`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from auto_report import report, rules_table  # noqa: E402
from auto_runs import (  # noqa: E402
    AUTO_METHODS,
    CACHE,
    METHODS,
    Outcome,
    Spec,
    compare,
    drop_cached,
    record_curves,
    run_many,
    run_one,
    tune,
)
from bench_pool import worker_init  # noqa: E402
from families import FAMILIES  # noqa: E402
from reporting import finish_report  # noqa: E402

__all__ = ["AUTO_METHODS", "METHODS", "Outcome", "Spec", "compare", "drop_cached", "main", "report", "rules_table",
           "run_many", "run_one", "tune"]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated, of " + ", ".join(FAMILIES))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--tune-seeds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--output", default=None, help="folder for the cache and the report")
    parser.add_argument("--curves", action="store_true", help="only record the range test curves")
    parser.add_argument("--rules", action="store_true",
                        help="only compare the suggestion rules offline on the recorded curves and the tuned grids")
    parser.add_argument("--rerun", default="",
                        help="comma-separated family/method cells (e.g. convbase/cosine-auto) whose cached test runs "
                             "are dropped and run again (after a rule change); the report still covers every family")
    parser.add_argument("--policy-grids", action="store_true",
                        help="only tune triangular2 and cosine restarts too (one seed, no refinement): the evidence "
                             "for the per-policy rules")
    args = parser.parse_args(argv)
    worker_init()  # one torch thread, as in every run (and as the report's machine line says)
    families = [f for f in args.families.split(",") if f]
    cache = None
    cells = [tuple(cell.split("/", 1)) for cell in args.rerun.split(",") if cell]
    for cell in cells:
        if len(cell) != 2 or cell[0] not in FAMILIES or cell[1] not in (*METHODS, "curve"):
            parser.error(f"--rerun: expected family/method cells with a family of {', '.join(FAMILIES)} and a "
                         f"method of {', '.join(METHODS)} or curve, but got {'/'.join(cell)!r}")
    if args.output:
        os.makedirs(args.output, exist_ok=True)
        cache = os.path.join(args.output, CACHE)
        if cells:
            print(f"--rerun: dropped {drop_cached(cache, cells)} cached runs of " + ", ".join(map("/".join, cells)))
    if args.curves:
        curves = record_curves(families, args.seeds, args.workers, cache)
        if args.output:
            with open(os.path.join(args.output, "auto_bounds_curves.json"), "w") as file:
                json.dump(curves, file)
        return curves
    if args.rules:
        text = rules_table(families, args.seeds, cache, args.workers)
        print("1cycle peak of each rule on the default range test's curves (median over seeds) and the validation "
              "accuracy there minus the tuned peak's, read off the tuned grid:\n\n" + text)
        return {"rules": text}
    if args.policy_grids:
        grids = {f: {m: tune(f, 1, args.workers, cache, m, refine=False)[1] for m in ("triangular2", "cosine")}
                 for f in families}
        print(json.dumps(grids, indent=1))
        return grids
    results: dict[str, dict[str, Any]] = {}
    for family in families:
        peak, scores = tune(family, args.tune_seeds, args.workers, cache)
        runs = compare(family, peak, args.seeds, args.workers, cache, args.methods.split(","))
        results[family] = {"peak": peak, "scores": scores, "runs": runs}
    text = report(results, args.seeds)
    text = finish_report(text, "auto_bounds.py", argv, args.output, "auto_bounds.md")
    return results


if __name__ == "__main__":
    main()
