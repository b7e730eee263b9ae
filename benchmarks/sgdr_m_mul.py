"""Do lower restarts (``CosineRestartsLR(m_mul=...)``, each cycle's peak ``m_mul`` times the last) fix SGDR "auto"?

The hypothesis: a network sharpens as it trains (on ConvBase the top Hessian eigenvalue grows from ~0.3 to 10-15
within 90 steps), so a restart to the first cycle's peak can be past what the trained network tolerates, while
the untrained one took it. If so, lower restarts would let SGDR take 1cycle's peak (1 x the knee for SGD instead
of 0.5 x). This script measures ``CosineRestartsLR(max_lr="auto")`` after a default ``LRRangeTest()``, the
benchmark's three cycles (``t_mul=2``, no warm-up), on the VALIDATION split of the five ``auto_bounds.py``
families, seeds 0-3 (one torch thread a run), under four (``m_mul``, SGD factor, Adam factor) configurations:
today's (1, 0.5 x, 1.5 x), and ``m_mul`` 0.7 / 0.5 with 1 x the knee for SGD, and 0.7 with 0.75 x.

    python benchmarks/sgdr_m_mul.py --workers 2 --output benchmarks/results     # ~10 min on 2 cores
    python benchmarks/sgdr_m_mul.py --families mlp --seeds 1 --workers 1        # a smoke test (~1 min)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Sequence

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from bench_pool import mapped, worker_init  # noqa: E402
from families import FAMILIES  # noqa: E402
from reporting import finish_report, markdown_table  # noqa: E402
from sgdr_warmup import run  # noqa: E402

#: (m_mul, SGD factor of the knee, Adam-family factor); the first is the benchmark's cosine-auto today.
CONFIGS = ((1.0, 0.5, 1.5), (0.7, 1.0, 1.5), (0.5, 1.0, 1.5), (0.7, 0.75, 1.5))


def _cell(results: list[tuple[float, float]]) -> str:
    accuracies = [a for a, _ in results]
    runs = " ".join(f"{a:.1f}@{p:.3g}" for a, p in results)
    return f"**{statistics.median(accuracies):.1f}** [{min(accuracies):.1f}] ({runs})"


def main(argv: Sequence[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--output", default=None, help="folder for sgdr_m_mul.md")
    args = parser.parse_args(argv)
    worker_init()  # one torch thread, as in every run (and as the machine line says)
    families = [f for f in args.families.split(",") if f]
    seeds = range(args.seeds)
    items = [(f, s, 3, 0.0, None, (a, b), m) for f in families for m, a, b in CONFIGS for s in seeds]
    with mapped(run, items, args.workers) as results:
        out = dict(zip(items, results, strict=True))
    heads = [f"m_mul {m:g}, {a:g} x / {b:g} x knee" for m, a, b in CONFIGS]
    rows = [[f, *[_cell([out[(f, s, 3, 0.0, None, (a, b), m)] for s in seeds]) for m, a, b in CONFIGS]]
            for f in families]
    text = (f"SGDR \"auto\" (default LRRangeTest; three cycles, t_mul=2, no warm-up; factor of the knee for SGD / "
            f"Adam), validation accuracy %: median [min] of {len(seeds)} seeds (each seed @ its peak):\n\n"
            + markdown_table(["family", *heads], rows))
    text = finish_report(text, "sgdr_m_mul.py", argv, args.output, "sgdr_m_mul.md")
    return text


if __name__ == "__main__":
    main()
