"""Per-step overhead: what does a lightning_clr callback cost per optimizer step, next to torch's schedulers?

Trains a tiny MLP (5 linear layers of width 8, so the step itself is cheap and a scheduler's cost shows)
for ``--steps`` optimizer steps per run on a real ``pytorch_lightning.Trainer``, in one process, and times
each run in microseconds per optimizer step of this process's CPU time (``--clock wall`` for wall time).

**Method (paired).** The machine is shared and noisy, so variants are never compared across time: in each
round, for each param-group count, every variant runs once between two runs of the reference (an empty
``Callback``), ``E V1 E V2 E ... Vn E``, in an order rotated from round to round; a variant's cost in that
round is its time minus the mean of the two reference runs beside it. The report gives, over ``--rounds``
rounds, the median of these paired differences and their interquartile range. Every run has exactly one
extra callback (torch's schedulers run with an empty ``Callback`` too), so Lightning's cost of dispatching
hooks cancels and the difference is the scheduling work alone. Variants:

* ``clr.CyclicLR`` / ``clr.OneCycleLR`` / ``clr.CosineRestartsLR``: the lightning_clr callbacks (with their
  default momentum cycling where they have one);
* ``torch CyclicLR`` / ``torch OneCycleLR``: torch's schedulers returned from ``configure_optimizers`` with
  ``interval="step"`` (they cycle the momentum too);

each with the parameters in 1 and in 10 param groups (inside a fit also 10 groups with a rate each, torch's
schedulers given the same rates). The goals (issue 9): at most 3 µs above the empty ``Callback`` with one group,
and no more than torch's scheduler with 1 and with 10 groups.

The same comparison runs in a plain PyTorch loop (``scheduler.step()`` against writing a lightning_clr
schedule's value into ``param_groups`` by hand; medians over interleaved repeats minus the ``none`` median),
and one optimizer step of the MNIST-1D ConvBase model of ``time_to_accuracy.py`` (batch 64) is timed to
put the costs in proportion.

    python benchmarks/overhead.py --output benchmarks/results   # the default: 12 rounds, about 17 minutes
    python benchmarks/overhead.py --quick                        # a few seconds (smoke test)

The code: ``_overhead_variants.py`` says what is measured (settings, model, clock, variants),
``_overhead_method.py`` how it is timed (one run of each kind, and the paired method), and
``_overhead_report.py`` how it is reported (tables, the JSON form, the figure); this file runs them all and
writes ``overhead.json``, ``overhead.md`` and ``overhead.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:  # make `common` importable
    sys.path.insert(0, _HERE)

import torch  # noqa: E402
from _overhead_in_fit import measure_in_fit  # noqa: E402
from _overhead_method import (  # noqa: E402
    METHOD,
    _interleaved,
    measure_hooks,
    measure_loop,
    measure_paired,
    measure_trainer,
    mnist1d_step_us,
)
from _overhead_report import _stats, plain, plot, report  # noqa: E402
from _overhead_variants import CLOCKS, LOOP_VARIANTS, QUICK, VARIANTS, Settings, _clock  # noqa: E402
from common import quiet_lightning  # noqa: E402
from reporting import command_line, machine_info, save_report  # noqa: E402

__all__ = [
    "LOOP_VARIANTS",
    "VARIANTS",
    "Settings",
    "main",
    "measure_loop",
    "measure_trainer",
    "mnist1d_step_us",
    "run",
]


def run(settings: Settings) -> dict[str, Any]:
    """Measures everything: the paired Trainer costs, the plain-loop medians and the MNIST-1D step."""
    torch.set_num_threads(1)
    quiet_lightning()
    short = replace(settings, loop_steps=min(settings.loop_steps, 200))
    in_fit = measure_in_fit(settings.fit_runs, settings.fit_steps, min(50, settings.fit_steps // 4), settings.groups)
    paired = measure_paired(settings)
    hooks = measure_hooks(settings)
    loop_times = _interleaved(LOOP_VARIANTS, settings.groups, settings.repeats,
                              lambda v, g: measure_loop(v, g, settings),
                              lambda v, g: measure_loop(v, g, short))
    mnist = statistics.median(mnist1d_step_us(settings) for _ in range(3))
    return {"in_fit": in_fit, "paired": paired, "hooks": hooks, "loop": _stats(loop_times), "mnist1d_step_us": mnist}


def run_in_fit(settings: Settings) -> dict[str, Any]:
    """Only the hook-by-hook measurement inside a fit (``--in-fit-only``)."""
    torch.set_num_threads(1)
    quiet_lightning()
    warmup = min(50, settings.fit_steps // 4)
    return {"in_fit": measure_in_fit(settings.fit_runs, settings.fit_steps, warmup, settings.groups)}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds; a smoke test, not for its numbers")
    parser.add_argument("--output", help="folder for overhead.json, overhead.md and overhead.png")
    parser.add_argument("--steps", type=int, help="optimizer steps per Trainer run (default 2000)")
    parser.add_argument("--repeats", type=int, help="interleaved repeats of the plain loop (default 5)")
    parser.add_argument("--rounds", type=int, help="rounds of the paired Trainer measurement (default 12)")
    parser.add_argument("--loop-steps", type=int, help="steps per run of the plain PyTorch loop (default 2000)")
    parser.add_argument("--mnist-steps", type=int, help="steps timed for the MNIST-1D model (default 600)")
    parser.add_argument("--in-fit-only", action="store_true",
                        help="only the hook-by-hook measurement inside a fit (about 5.5 min)")
    parser.add_argument("--fit-runs", type=int, help="interleaved fits per cell of that measurement (default 7)")
    parser.add_argument("--groups", help="param-group counts, comma-separated (default 1,10)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu",
                        help="cpu: this process's CPU time (default; robust to other load), wall: wall time")
    args = parser.parse_args(argv)
    _clock[0] = CLOCKS[args.clock]
    settings = QUICK if args.quick else Settings()
    if args.steps:
        settings = replace(settings, steps=args.steps, warmup=min(settings.warmup, args.steps // 10))
    if args.repeats:
        settings = replace(settings, repeats=args.repeats)
    if args.rounds:
        settings = replace(settings, rounds=args.rounds)
    if args.loop_steps:
        settings = replace(settings, loop_steps=args.loop_steps)
    if args.mnist_steps:
        settings = replace(settings, mnist_steps=args.mnist_steps)
    if args.fit_runs:
        settings = replace(settings, fit_runs=args.fit_runs)
    if args.groups:
        settings = replace(settings, groups=tuple(int(g) for g in args.groups.split(",")))
    torch.set_num_threads(1)
    quiet_lightning()
    info = machine_info()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    command = command_line("overhead.py", argv)
    header = (f"Command: `{command.strip()}`. Machine: {info['cpu']}, {info['cores']} cores (load average "
              f"{load:.1f} at the start); Python {info['python']}, torch {info['torch']}, pytorch_lightning "
              f"{info['pytorch_lightning']}, lightning_clr {info['lightning_clr']}; 1 torch thread; clock: "
              f"{args.clock} time. No randomness in the timing (data and weights seeded with 0).")
    print(header, flush=True)
    start = time.perf_counter()
    if args.in_fit_only:
        results = run_in_fit(settings)
        table = report(results, settings)
        text = header + "\n\n" + table + f"\n\nWall time: {time.perf_counter() - start:.0f} s."
        print("\n" + table)
        save_report(text, args.output, "overhead_in_fit.md")
        return results
    print("\n" + METHOD, flush=True)
    results = run(settings)
    text = header + "\n\n" + METHOD + "\n" + report(results, settings)
    text += f"\n\nWall time: {time.perf_counter() - start:.0f} s."
    print(text.split(METHOD, 1)[1])
    if args.output:
        os.makedirs(args.output, exist_ok=True)
        with open(os.path.join(args.output, "overhead.json"), "w") as f:
            json.dump({"settings": asdict(settings), "machine": info, "load_average": load,
                       **results, "paired": plain(results["paired"]), "hooks": plain(results["hooks"])}, f, indent=1)
        with open(os.path.join(args.output, "overhead.md"), "w") as f:
            f.write(text + "\n")
        caption = f"{command.strip()} | {info['cpu']}, {info['cores']} cores, load {load:.1f} | torch {info['torch']}"
        plot(results, settings, os.path.join(args.output, "overhead.png"), caption)
        print(f"Wrote overhead.json, overhead.md and overhead.png to {args.output}")
    return results


if __name__ == "__main__":
    main()
