"""Budgeted time to accuracy: how few optimizer steps does each learning-rate policy need to reach a high target?

Measured the way DAWNBench and the super-convergence paper do. Every run is planned for its budget (its schedule
spans the run), on a fine grid of budgets (default 2, 3, 4, 6, 8, 12, 16, 24 and 32 units). Per family:

1. **Tuning, on the validation split only.** The constant rate, step decay's initial rate and each hand-set
   cyclical policy's peak are picked per budget from one grid (mean final validation accuracy over
   ``--tune-seeds`` seeds, 1000, 1001, ...). The "auto" policies take their bounds from a default
   ``lightning_clr.LRRangeTest()`` in each run; Prodigy and schedule-free have no rate to tune.
2. **Test runs.** ``--seeds`` seeds (0, 1, ...) per policy and budget with the chosen rate; the final TEST
   accuracy of each run.
3. **Summary** (:mod:`tta_summary`). Target = tuned step decay's median final test accuracy at the largest budget
   minus 0.5 points. A policy's budget to target is the smallest budget whose median final test accuracy reaches
   it. Two figures per policy: the run steps of that budget, and the total steps with the rate search it needed
   (every grid run of a hand-set policy at that budget, the range test of an "auto" one). Speed-ups of each
   policy over constant, step decay, Prodigy and schedule-free, on both figures.

Families (``--family``):

* ``convbase`` (default): the mnist1d paper's ConvBase, SGD momentum 0.9, batch 64, on 3,500 MNIST-1D training
  samples (500 validation, 1,000 test); a budget unit is an epoch (55 steps); grid 0.02 ... 0.5.
* ``charlm``: :mod:`families`' causal pre-LN character transformer (2 layers, width 48) on pydoc text, AdamW with
  weight decay 0.01, batch 32 (88 steps an epoch); a budget unit is 32 optimizer steps; grid a half decade apart
  (0.000949 ... 0.0949); Prodigy(lr=1.0) and ``schedulefree.AdamWScheduleFree``. Default 3 seeds, 1 tuning seed
  (sized to run in about 30 minutes on one idle core).

    python benchmarks/time_to_accuracy.py --workers 1 --output benchmarks/results            # ConvBase
    python benchmarks/time_to_accuracy.py --family charlm --workers 1 --output benchmarks/results
    python benchmarks/time_to_accuracy.py --quick --output /tmp/smoke    # smoke test (CI), well under a minute

A constant-rate run of a short budget is the first part of the same seed's run of the largest budget
(same initialisation, same data order), so the constant rate trains only at the largest budget and is
read off at each budget's end.

The runs are in :mod:`tta_runs`, the summary, tables and figure in :mod:`tta_summary`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:  # make `common` importable, in spawned workers too
    sys.path.insert(0, _HERE)

import torch  # noqa: E402
from common import quiet_lightning  # noqa: E402
from reporting import command_line, machine_info  # noqa: E402
from tta_runs import (  # noqa: E402
    CHARLM,
    CHARLM_QUICK,
    QUICK,
    RunResult,
    RunSpec,
    Settings,
    _data,
    callbacks_for,
    range_test_available,
    run_many,
    run_one,
)
from tta_summary import (  # noqa: E402
    AUTO_POLICIES,
    HAND_SET,
    POLICIES,
    describe,
    search_steps,
    summarize,
    tables,
    write_outputs,
)

__all__ = [
    "AUTO_POLICIES",
    "CHARLM",
    "CHARLM_QUICK",
    "POLICIES",
    "QUICK",
    "RunResult",
    "RunSpec",
    "Settings",
    "callbacks_for",
    "evaluate",
    "main",
    "range_test_available",
    "run_many",
    "run_one",
    "search_steps",
    "summarize",
    "tables",
    "tune",
    "write_outputs",
]

BASELINES = ("constant", "step")


# ---------------------------------------------------------------------------------------------- stages
def _tune_seed(i: int) -> int:
    return 1000 + i  # tuning seeds differ from the test seeds 0..seeds-1


def tune(settings: Settings) -> tuple[dict[tuple[str, int], float], dict[tuple[str, int, float], float]]:
    """Picks each hand-set policy's rate per budget on the validation split.

    Returns:
        ``(chosen, scores)``: ``chosen[(policy, epochs)]`` is the rate with the highest mean final validation
        accuracy over the tuning seeds (the smaller rate on a tie); ``scores[(policy, epochs, rate)]`` is
        that mean.
    """
    largest = max(settings.budgets)
    specs = []
    for policy in settings.policies:
        if policy not in HAND_SET:
            continue
        for peak in settings.grid:
            for i in range(settings.tune_seeds):
                if policy == "constant":  # shorter budgets are prefixes of the longest run
                    specs.append(RunSpec(policy, largest, _tune_seed(i), peak, "val"))
                else:
                    specs.extend(RunSpec(policy, e, _tune_seed(i), peak, "val") for e in settings.budgets)
    results = run_many(specs, settings, progress="tuning")
    finals: dict[tuple[str, int, float], list[float]] = {}
    for r in results:
        budgets = settings.budgets if r.spec.policy == "constant" else (r.spec.epochs,)
        for e in budgets:
            finals.setdefault((r.spec.policy, e, r.spec.peak), []).append(
                r.accuracy_at(e * settings.steps_per_unit))
    scores = {k: statistics.fmean(v) for k, v in finals.items()}
    chosen = {}
    for policy in settings.policies:
        if policy not in HAND_SET:
            continue
        for e in settings.budgets:
            best = max(settings.grid, key=lambda p: (scores[(policy, e, p)], -p))
            chosen[(policy, e)] = best
    return chosen, scores


def evaluate(settings: Settings, chosen: dict[tuple[str, int], float]) -> dict[tuple[str, int], list[RunResult]]:
    """Trains every policy and budget on ``settings.seeds`` seeds with the chosen rates; test curves.

    Returns:
        ``runs[(policy, epochs)]``: one result per seed, in seed order, cut to the budget.
    """
    largest = max(settings.budgets)
    specs: list[RunSpec] = []
    for policy in settings.policies:
        for seed in range(settings.seeds):
            if policy == "constant":
                for peak in sorted({chosen[(policy, e)] for e in settings.budgets}):
                    specs.append(RunSpec(policy, largest, seed, peak, "test", record_lr=seed == 0))
            else:
                for e in settings.budgets:
                    specs.append(RunSpec(policy, e, seed, chosen.get((policy, e)), "test", record_lr=seed == 0))
    results = run_many(specs, settings, progress="test runs")
    runs: dict[tuple[str, int], list[RunResult]] = {}
    for policy in settings.policies:
        for e in settings.budgets:
            peak = chosen.get((policy, e))
            matches = [r for r in results if r.spec.policy == policy and r.spec.peak == peak
                       and (policy == "constant" or r.spec.epochs == e)]
            runs[(policy, e)] = [_truncate(r, e, settings) for r in sorted(matches, key=lambda r: r.spec.seed)]
    return runs


def _truncate(result: RunResult, epochs: int, settings: Settings) -> RunResult:
    """A constant-rate run of the largest budget read as a run of ``epochs``."""
    if result.spec.epochs == epochs:
        return result
    end = epochs * settings.steps_per_unit
    keep = [i for i, s in enumerate(result.steps) if s <= end]
    return RunResult(replace(result.spec, epochs=epochs), [result.steps[i] for i in keep],
                     [result.accuracy[i] for i in keep], result.lrs[:end], result.extra_steps,
                     dict(result.bounds), result.wall_s * epochs / result.spec.epochs)


def parse_args(argv: Sequence[str] | None = None) -> tuple[Settings, str | None]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", choices=("convbase", "charlm"), default="convbase",
                        help="ConvBase on MNIST-1D (default) or the character transformer")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke test: budgets 1 and 2 units, 1 seed, a 2-point grid (not for its numbers)")
    parser.add_argument("--output", help="folder for the JSON, CSV, markdown and PNG outputs")
    parser.add_argument("--budgets", type=int, nargs="+",
                        help="budgets in units (convbase: epochs, charlm: 32 steps; default 2 3 4 6 8 12 16 24 32)")
    parser.add_argument("--seeds", type=int, help="test seeds per policy and budget (default 5; charlm 3)")
    parser.add_argument("--tune-seeds", type=int, help="validation seeds per grid point (default 2; charlm 1)")
    parser.add_argument("--grid", type=float, nargs="+",
                        help="candidate rates (default 0.02 0.05 0.1 0.2 0.5; charlm 0.000949 ... 0.0949)")
    parser.add_argument("--policies", nargs="+", choices=POLICIES, help="policies to run (default all)")
    parser.add_argument("--workers", type=int,
                        help="worker processes (default 2; charlm and --quick 1; 1 runs in this process)")
    args = parser.parse_args(argv)
    bases = {("convbase", False): Settings(), ("convbase", True): QUICK, ("charlm", False): CHARLM,
             ("charlm", True): CHARLM_QUICK}
    settings = bases[(args.family, args.quick)]
    overrides = {name: getattr(args, name) for name in ("seeds", "tune_seeds", "workers")
                 if getattr(args, name) is not None}
    for name in ("budgets", "grid", "policies"):
        if getattr(args, name):
            overrides[name] = tuple(getattr(args, name))
    settings = replace(settings, **overrides)
    for needed in ("step", "constant"):  # the target and the speed-ups are read off these
        if needed not in settings.policies:
            settings = replace(settings, policies=(needed, *settings.policies))
    return settings, args.output


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    settings, output = parse_args(argv)
    if not range_test_available():
        missing = [p for p in settings.policies if p in AUTO_POLICIES]
        if missing:
            print(f"lightning_clr.LRRangeTest is not available: skipping {', '.join(missing)}.")
            settings = replace(settings, policies=tuple(p for p in settings.policies if p not in AUTO_POLICIES))
    torch.set_num_threads(1)
    quiet_lightning()
    info = machine_info()
    print(f"Machine: {info['cpu']}, {info['cores']} cores; torch {info['torch']}, pytorch_lightning "
          f"{info['pytorch_lightning']}; {settings.workers} worker process(es), 1 torch thread each.")
    if settings.family == "charlm":
        print(f"charlm: {settings.num_train} training windows of 32 characters, batch {settings.batch_size} "
              f"({settings.steps_per_epoch} steps an epoch); a budget unit is {settings.steps_per_unit} steps; "
              f"budgets {list(settings.budgets)} units; {settings.seeds} seeds; grid {list(settings.grid)}.")
    else:
        print(f"MNIST-1D: {settings.num_train} train / 500 validation / {5000 - settings.num_train - 500} test; "
              f"{settings.steps_per_unit} steps per epoch; budgets {list(settings.budgets)} epochs; "
              f"{settings.seeds} seeds; grid {list(settings.grid)}.")
    for policy in settings.policies:
        print(f"  {policy:17s} {describe(policy, settings)}")
    start = time.perf_counter()
    _data(settings)
    chosen, scores = tune(settings)
    tuned = time.perf_counter()
    runs = evaluate(settings, chosen)
    done = time.perf_counter()
    summary = summarize(runs, settings)
    report = tables(summary, scores, chosen, settings)
    timing = (f"\n\nWall time: {done - start:.0f} s ({tuned - start:.0f} s tuning, {done - tuned:.0f} s test runs), "
              f"{settings.workers} worker process(es).")
    report += timing
    print()
    print(report)
    command = command_line("time_to_accuracy.py", argv)
    info = {**info, "wall_s": done - start, "tuning_s": tuned - start, "test_s": done - tuned, "command": command}
    report += f"\n\nCommand: `{command}`; seeds 0..{settings.seeds - 1} (tuning seeds 1000..)."
    if output:
        paths = write_outputs(output, runs, summary, scores, chosen, settings, report, info)
        print("\nWrote " + ", ".join(paths))
    return {"summary": summary, "chosen": chosen, "scores": scores, "runs": runs, "settings": settings}


if __name__ == "__main__":
    main()
