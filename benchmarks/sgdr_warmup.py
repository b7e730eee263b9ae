"""Does a linear warm-up (``CosineRestartsLR(warmup=...)``) or fewer, longer cycles fix SGDR's "auto" shortfall?

SGDR starts at its peak on the untrained network. On ConvBase its "auto" median is 8 points under tuned 1cycle
(``auto_bounds.py``), and its peak rule is half of 1cycle's because the full peak killed seeds. This script
measures, on the VALIDATION split of the five ``auto_bounds.py`` families (seeds 0 and 1, one torch thread a run):

1. **hand-set peaks**: the benchmark's SGDR (three cycles of 1, 2 and 4 sevenths of the run, ``t_mul=2``) and two
   cycles (a third and two thirds), each without and with a warm-up of 10% of the run (from 0; the cycles share
   the rest), at three peaks a half decade apart around each family's best SGDR peak;
2. **"auto" peaks**: ``CosineRestartsLR(max_lr="auto")`` after a default ``LRRangeTest()`` under the same
   configurations, with the current SGDR factors of the knee (0.5 x SGD, 1.5 x Adam) and with 1cycle's (1 x, 3 x),
   which a warm-up might make safe.

    python benchmarks/sgdr_warmup.py --workers 2 --output benchmarks/results     # ~10 min on 2 cores
    python benchmarks/sgdr_warmup.py --families mlp --workers 1                  # a smoke test (~1 min)
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
from collections.abc import Sequence
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from auto_runs import FamilyRun, Spec, _evaluate  # noqa: E402
from bench_pool import mapped, worker_init  # noqa: E402
from families import FAMILIES  # noqa: E402
from reporting import finish_report, markdown_table  # noqa: E402

#: Per family, three peaks a half decade apart around its best SGDR peak (``auto_bounds.py --policy-grids``).
PEAKS = {"convbase": (0.1, 0.316, 1.0), "resnet": (0.1, 0.316, 1.0), "mlp": (0.00949, 0.03, 0.0949),
         "charlm": (0.003, 0.00949, 0.03), "gru": (0.03, 0.0949, 0.3)}
#: (cycles, warm-up share of the run): three cycles (the benchmark's) or two, without or with a warm-up.
CONFIGS = ((3, 0.0), (3, 0.1), (2, 0.0), (2, 0.1))
#: (cycles, warm-up, SGD factor, Adam factor) of the "auto" runs; the first is the benchmark's cosine-auto.
AUTO_CONFIGS = ((3, 0.0, 0.5, 1.5), (3, 0.1, 0.5, 1.5), (3, 0.1, 1.0, 3.0), (2, 0.1, 0.5, 1.5), (2, 0.1, 1.0, 3.0),
                (3, 0.05, 1.0, 3.0))
SEEDS = (0, 1)


def first_cycle(total: int, warmup: int, cycles: int) -> int:
    """The first cycle of ``cycles`` doubling ones (``t_mul=2``) that fill the run after the warm-up."""
    return max(1, (total - warmup) // (2**cycles - 1))


Item = tuple[str, int, int, float, float | None, tuple[float, float] | None, float]


def sgdr_rule(factors: tuple[float, float], reading: Any) -> float:
    """SGDR's peak rule with ``factors`` of the knee (SGD, Adam family) in place of the built-in ones."""
    from lightning_clr.tuner.suggest import knee_peak

    return knee_peak(reading, factors[0] if reading.optimizer == "sgd" else factors[1])


def run(item: Item) -> tuple[float, float]:
    """One validation run: ``(family, seed, cycles, warm-up share, peak or None, factors or None, m_mul)`` ->
    (accuracy %, the peak used)."""
    import lightning_clr as clr

    family, seed, cycles, share, peak, factors, m_mul = item
    run = FamilyRun.of(family, seed)
    warmup = round(share * run.total)
    callbacks: list[Any] = []
    if factors is not None:  # this run's rule: the SGDR factors of the knee for SGD and the Adam family
        rules = {"cosine_restarts": functools.partial(sgdr_rule, factors)}
        callbacks.append(clr.LRRangeTest(plot=False, verbose=False, rules=rules))
    schedule = clr.CosineRestartsLR(max_lr="auto" if peak is None else peak, t_mul=2.0, m_mul=m_mul, warmup=warmup,
                                    first_cycle=first_cycle(run.total, warmup, cycles))
    method = "cosine" if peak is not None else "cosine-auto"
    task, trainer = run.fit(method, [*callbacks, schedule], seed)
    used = schedule.step_schedule()  # the CosineRestartsSchedule built: its peak is the "auto" one too
    return _evaluate(task, trainer, Spec(family, method, seed, peak, "val")), used.peak


def _cell(results: list[tuple[float, float]], show_peaks: bool) -> str:
    mean = statistics.mean(a for a, _ in results)
    runs = " ".join(f"{a:.1f}@{p:.3g}" if show_peaks else f"{a:.1f}" for a, p in results)
    return f"**{mean:.1f}** ({runs})"


def main(argv: Sequence[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--output", default=None, help="folder for sgdr_warmup.md")
    args = parser.parse_args(argv)
    worker_init()  # one torch thread, as in every run (and as the machine line says)
    families = [f for f in args.families.split(",") if f]
    hand = [(f, s, c, w, p, None, 1.0) for f in families for p in PEAKS[f] for c, w in CONFIGS for s in SEEDS]
    auto = [(f, s, c, w, None, (a, b), 1.0) for f in families for c, w, a, b in AUTO_CONFIGS for s in SEEDS]
    with mapped(run, hand + auto, args.workers) as results:
        out = dict(zip(hand + auto, results, strict=True))
    n = len(SEEDS)
    heads = [f"{c} cycles, warm-up {w:.0%}" for c, w in CONFIGS]
    rows = [[f, f"{p:g}", *[_cell([out[(f, s, c, w, p, None, 1.0)] for s in SEEDS], False) for c, w in CONFIGS]]
            for f in families for p in PEAKS[f]]
    text = (f"Hand-set SGDR peaks, validation accuracy %: mean of {n} seeds (each seed):\n\n"
            + markdown_table(["family", "peak", *heads], rows))
    heads = [f"{c} cycles, warm-up {w:.0%}, {a:g} x / {b:g} x knee" for c, w, a, b in AUTO_CONFIGS]
    rows = [[f, *[_cell([out[(f, s, c, w, None, (a, b), 1.0)] for s in SEEDS], True) for c, w, a, b in AUTO_CONFIGS]]
            for f in families]
    text += (f"\n\nSGDR \"auto\" (default LRRangeTest; factor of the knee for SGD / Adam), validation accuracy %: mean "
             f"of {n} seeds (each seed @ its peak):\n\n" + markdown_table(["family", *heads], rows))
    text = finish_report(text, "sgdr_warmup.py", argv, args.output, "sgdr_warmup.md")
    return text


if __name__ == "__main__":
    main()
