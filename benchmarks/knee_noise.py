"""Why does a default ``LRRangeTest()`` put ConvBase's knee anywhere in a 2.4x band, and can a rule avoid it?

With ten seeds (``auto_bounds.py --seeds 10``) 1cycle "auto" on ConvBase is 0.7 under tuned at the median but
5.7 under on one seed, whose curve put the knee at 0.178 (tuned: 0.316). A seed there is two things, the initial
weights and the order of the batches; this script separates them and asks whether the knee's movement follows
the model (then a low knee would be right for that model) or is only noise of the reading. Five parts, all with
the benchmark's families, optimizers and runs (one torch thread a run):

1. **curves**: the default range test's knee for 10 initialisations x 3 batch orders of each family; the spread
   of the knee and how much of its variance (of ``log(knee)``) lies between initialisations and how much
   between batch orders of one initialisation (which averaging several sweeps could remove);
2. **peaks**: ConvBase's two lowest-knee and two highest-knee initialisations, each trained with 1cycle at four
   fixed peaks a quarter decade apart (batch orders 0 and 1, VALIDATION split): does a low-knee model want a
   lower peak?
3. **factors**: the benchmark's ten ConvBase seeds with 1cycle "auto" at 1, 1.25 and 1.5 x the knee, without and
   with a default ``DivergenceGuard()``: can a higher factor lift the low draws without killing the high ones?
4. **sweeps**: part 1 again with other sweeps (``--sweeps``: twice the steps a decade, a sweep from 1e-4, both):
   does a finer or later-starting sweep read a steadier knee than the default one (1e-6 to 10, 16 a decade)?
5. **landmarks**: on part 1's curves, 1cycle peaks read off other landmarks (80% and 95% of the fall, the lowest
   loss), each with the factor that puts its geometric mean on the built-in rule's over the optimizer family's
   curves, scored offline on ``auto_bounds.py``'s tuned validation grids (``--grids``, its cache): would a
   steadier landmark than the knee train better?

::

    python benchmarks/knee_noise.py --workers 2 --output benchmarks/results    # ~5 min on two cores
    python benchmarks/knee_noise.py --families mlp --inits 2 --orders 2 --seeds 0 --workers 1   # a smoke test
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import statistics
import sys
from collections.abc import Sequence
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from auto_report import grid_accuracy  # noqa: E402
from auto_runs import FamilyRun, Spec, _evaluate, tune  # noqa: E402
from bench_pool import mapped, worker_init  # noqa: E402
from families import FAMILIES  # noqa: E402
from reporting import finish_report, markdown_table  # noqa: E402

from lightning_clr.tuner.range_test import DEFAULT_MAX_LR, DEFAULT_MIN_LR, DEFAULT_STEPS_PER_DECADE  # noqa: E402
from lightning_clr.tuner.suggest import PEAK_FACTORS, curve_turn, fall_point  # noqa: E402

PEAKS = (0.178, 0.237, 0.316, 0.422)
"""ConvBase's 1cycle peaks of part 2: a quarter decade apart around the tuned 0.316."""
FACTORS = (1.0, 1.25, 1.5)
"""Part 3's multiples of the knee (1 is the built-in SGD rule)."""
LANDMARKS = {"80% of the fall": 0.8, "knee (90%)": 0.9, "95% of the fall": 0.95, "lowest loss": 1.0}
"""Part 5's landmarks, as the share of the fall at which each is read (1.0: the lowest point)."""
SWEEPS = "1e-6:32,1e-4:16,1e-4:32"
"""Part 4's sweeps, ``min_lr:steps_per_decade`` each (the default sweep is ``1e-6:16``, part 1's)."""


def run(item: tuple[Any, ...]) -> Any:
    """One job: ``("curve", family, init, order[, min_lr, steps_per_decade])`` -> (knee, the sweep's rates, its
    losses); ``("peak", family, init, order, peak)`` -> validation accuracy; ``("auto", family, seed, factor,
    guard)`` -> (validation %, test %, peak, rollbacks)."""
    import lightning_clr as clr
    from lightning_clr.tuner.suggest import knee_peak

    kind, family, init, *rest = item
    run = FamilyRun.of(family, init if kind == "auto" else rest[0])  # the benchmark's seeds share one number
    callbacks: list[Any] = []
    test = None
    if kind == "peak":
        callbacks.append(clr.OneCycleLR(max_lr=rest[1]))
    else:
        rules = {"one_cycle": functools.partial(knee_peak, factor=rest[0])} if kind == "auto" else None
        sweep = dict(zip(("min_lr", "steps_per_decade"), rest[1:], strict=True)) if rest[1:] and kind == "curve" else {}
        test = clr.LRRangeTest(plot=False, verbose=False, rules=rules, **sweep)
        callbacks += [test, clr.OneCycleLR(max_lr="auto")]
        if kind == "auto" and rest[1]:
            callbacks.append(clr.DivergenceGuard())
    limits = {"max_steps": 1} if kind == "curve" else {}
    task, trainer = run.fit("1cycle" if kind == "peak" else "1cycle-auto", callbacks, init, **limits)
    if kind == "curve":
        result = test.result
        return result.knee_lr, result.lrs, result.losses  # type: ignore[union-attr]
    val = _evaluate(task, trainer, Spec(family, "1cycle", init, None, "val"))
    if kind == "peak":
        return val
    rollbacks = len(callbacks[-1].events) if rest[1] else 0
    return val, _evaluate(task, trainer, Spec(family, "1cycle", init, None, "test")), \
        test.result.for_policy("one_cycle").max_lr, rollbacks  # type: ignore[union-attr]


def _split(knees: dict[tuple[int, int], float]) -> tuple[float, float, float, float]:
    """(median knee, largest / smallest, share of the variance of log(knee) between initialisations, within)."""
    logs = {k: math.log(v) for k, v in knees.items()}
    inits = sorted({i for i, _ in logs})
    means = [statistics.mean(v for (i, _), v in logs.items() if i == j) for j in inits]
    within = statistics.mean(statistics.pvariance([v for (i, _), v in logs.items() if i == j]) for j in inits)
    between, total = statistics.pvariance(means), statistics.pvariance(list(logs.values()))
    return (math.exp(statistics.median(logs.values())), max(knees.values()) / min(knees.values()),
            between / total if total else 0.0, within / total if total else 0.0)


def _landmark(lrs: Sequence[float], losses: Sequence[float], share: float) -> float:
    """The first rate where the analysis curve has made ``share`` of its fall (1.0: its lowest point)."""
    return float(lrs[fall_point(*curve_turn(lrs, losses, 0.05, ""), share)])


def landmarks_table(curves: dict[str, list[tuple[Sequence[float], Sequence[float]]]], grids: str) -> str:
    """Part 5: each landmark's 1cycle peak on every curve, scored on the family's tuned validation grid."""
    groups: dict[str, list[str]] = {}
    for f in curves:
        groups.setdefault("adam" if FAMILIES[f].adam_family else "sgd", []).append(f)
    marks = {f: [{name: _landmark(*c, share) for name, share in LANDMARKS.items()} for c in cs]
             for f, cs in curves.items()}
    factor = {(g, name): PEAK_FACTORS[("one_cycle", g)] * math.exp(statistics.mean(
        math.log(m["knee (90%)"] / m[name]) for f in fs for m in marks[f])) for g, fs in groups.items()
        for name in LANDMARKS}
    rows = []
    for g, fs in groups.items():
        for f in fs:
            _, scores = tune(f, 2, 1, grids)
            best = max(scores.values())
            cells = []
            for name in LANDMARKS:
                peaks = [factor[(g, name)] * m[name] for m in marks[f]]
                gaps = sorted(grid_accuracy(scores, p) - best for p in peaks)
                cells.append(f"{factor[(g, name)]:.2g} x: {statistics.median(gaps):+.1f} / {gaps[0]:+.1f} "
                             f"(x{max(peaks) / min(peaks):.2f})")
            rows.append([f, *cells])
    return markdown_table(["family", *LANDMARKS], rows)


def _sweep_name(min_lr: float, steps_per_decade: float) -> str:
    return f"{min_lr:g} to {DEFAULT_MAX_LR:g}, {steps_per_decade:g} a decade"


def _sweep_cells(runs: dict[tuple[int, int], tuple[Any, ...]]) -> list[str]:
    """Part 4's cells for one family and sweep: median steps, median knee, spread, share between inits."""
    median, spread, between, _ = _split({k: v[0] for k, v in runs.items()})
    steps = statistics.median(len(v[1]) for v in runs.values())
    return [f"{steps:g}", f"{median:.3g}", f"x{spread:.2f}", f"{between:.0%}"]


def main(argv: Sequence[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--inits", type=int, default=10)
    parser.add_argument("--orders", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=10, help="ConvBase seeds of part 3 (0: skip parts 2 and 3)")
    parser.add_argument("--sweeps", default=SWEEPS, help="part 4's sweeps, min_lr:steps_per_decade,... ('': skip)")
    parser.add_argument("--grids", default=os.path.join(_HERE, "results", "auto_bounds.jsonl"),
                        help="auto_bounds.py's cache with the tuned 1cycle grids, for part 5 ('': skip)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--output", default=None, help="folder for knee_noise.md")
    args = parser.parse_args(argv)
    worker_init()
    families = [f for f in args.families.split(",") if f]
    curves = [("curve", f, i, o) for f in families for i in range(args.inits) for o in range(args.orders)]
    with mapped(run, curves, args.workers) as results:
        read = dict(zip(curves, results, strict=True))  # (knee, rates, losses) of each sweep
    rows = []
    for f in families:
        median, spread, between, within = _split({(i, o): read[("curve", f, i, o)][0] for _, g, i, o in curves
                                                    if g == f})
        rows.append([f, f"{median:.3g}", f"x{spread:.2f}", f"{between:.0%}", f"{within:.0%}"])
    text = (f"Part 1: the knee of a default LRRangeTest() over {args.inits} initialisations x {args.orders} batch "
            "orders; the variance of log(knee) split between initialisations and between orders of one:\n\n"
            + markdown_table(["family", "median knee", "largest / smallest", "between inits", "within an init"],
                             rows))
    if args.seeds and "convbase" in families:
        by_init = {i: math.exp(statistics.mean(math.log(read[("curve", "convbase", i, o)][0])
                                               for o in range(args.orders))) for i in range(args.inits)}
        ranked = sorted(by_init, key=by_init.__getitem__)
        chosen = ranked[:2] + ranked[-2:] if len(ranked) >= 4 else ranked
        peaks = [("peak", "convbase", i, o, p) for i in chosen for p in PEAKS for o in (0, 1)]
        autos = [("auto", "convbase", s, x, g) for s in range(args.seeds) for x in FACTORS for g in (False, True)]
        with mapped(run, peaks + autos, args.workers) as results:
            out = dict(zip(peaks + autos, results, strict=True))
        rows = [[i, f"{by_init[i]:.3g}",
                 *[f"{statistics.mean(out[('peak', 'convbase', i, o, p)] for o in (0, 1)):.1f}" for p in PEAKS]]
                for i in chosen]
        text += ("\n\nPart 2: ConvBase, 1cycle at fixed peaks, validation accuracy % (mean of batch orders 0 and 1), "
                 "for the lowest- and highest-knee initialisations:\n\n"
                 + markdown_table(["init", "its knee (geometric mean)", *[f"peak {p:g}" for p in PEAKS]], rows))
        rows = []
        for x in FACTORS:
            for g in (False, True):
                runs = [out[("auto", "convbase", s, x, g)] for s in range(args.seeds)]
                cells = [f"{statistics.median(r[k] for r in runs):.1f} [{min(r[k] for r in runs):.1f}]" for k in (0, 1)]
                rows.append([f"{x:g} x knee", "yes" if g else "no", *cells,
                             f"{statistics.median(r[2] for r in runs):.3g} [{min(r[2] for r in runs):.3g}, "
                             f"{max(r[2] for r in runs):.3g}]", sum(r[3] for r in runs)])
        text += (f"\n\nPart 3: ConvBase, 1cycle \"auto\" over seeds 0-{args.seeds - 1} (the benchmark's), median "
                 "[min] accuracy %:\n\n" + markdown_table(
                     ["peak", "DivergenceGuard", "validation", "test", "peak median [min, max]", "rollbacks"], rows))
    sweeps = [tuple(map(float, v.split(":"))) for v in args.sweeps.split(",") if v]
    if sweeps:
        jobs = [("curve", f, i, o, *w) for w in sweeps for f in families for i in range(args.inits)
                for o in range(args.orders)]
        with mapped(run, jobs, args.workers) as results:
            read.update(zip(jobs, results, strict=True))
        rows = [[f, _sweep_name(*w) if w else _sweep_name(DEFAULT_MIN_LR, DEFAULT_STEPS_PER_DECADE) + " (default)",
                 *_sweep_cells({(i, o): read[("curve", f, i, o, *w)] for i in range(args.inits)
                                for o in range(args.orders)})]
                for f in families for w in [(), *sweeps]]
        text += ("\n\nPart 4: part 1 with other sweeps (median steps of a sweep, median knee, largest / smallest, "
                 "share of the variance of log(knee) between initialisations):\n\n"
                 + markdown_table(["family", "sweep", "steps", "median knee", "largest / smallest", "between inits"],
                                  rows))
    if args.grids:
        text += ("\n\nPart 5: 1cycle peaks from other landmarks of part 1's curves, each with the factor (SGD / Adam "
                 "family) that puts its geometric mean on the built-in rule's; the validation accuracy read off "
                 "auto_bounds.py's tuned grid there, minus the grid's best (linear in log(peak); median / worst "
                 "over the curves), and (xN) the peaks' largest over smallest:\n\n"
                 + landmarks_table({f: [read[("curve", f, i, o)][1:] for i in range(args.inits)
                                        for o in range(args.orders)] for f in families}, args.grids))
    return finish_report(text, "knee_noise.py", argv, args.output, "knee_noise.md")


if __name__ == "__main__":
    main()
