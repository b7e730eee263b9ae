"""Runs the multi-process tests (marker ``multiprocess``) again and again under CPU load; stops at a failure.

This is how the "no flaky multi-process test" claim is checked: a ``ddp_spawn`` test once failed in about 25
runs on a loaded 2-core machine (a port taken between choosing it and binding it: see ``tests/ports.py``).
Each run is a fresh ``pytest -m multiprocess`` process; meanwhile ``--load`` busy processes (pure Python
loops, one core each) keep the machine loaded. It prints one line per run and a summary, and with
``--output`` writes the log of every run and a JSON summary there::

    python tests/scripts/repeat_multiprocess.py --runs 30 --load 2 --output /tmp/repeat

Exit status: 0 if every run passed, 1 otherwise (the failing run's output is printed).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _spin(stop: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="runs of the multi-process tests (default 30)")
    parser.add_argument("--load", type=int, default=2, help="busy processes kept running meanwhile (default 2)")
    parser.add_argument("--output", type=Path, default=None, help="folder for run logs and summary.json")
    parser.add_argument("--pytest-args", default="", help="extra pytest arguments, e.g. '-k ddp_spawn'")
    args = parser.parse_args(argv)

    stop = multiprocessing.Event()
    spinners = [multiprocessing.Process(target=_spin, args=(stop,), daemon=True) for _ in range(args.load)]
    for process in spinners:
        process.start()
    if args.output is not None:
        args.output.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pytest", "-q", "-m", "multiprocess", "-p", "no:cacheprovider",
               *args.pytest_args.split()]
    results = []
    started = time.monotonic()
    try:
        for run in range(1, args.runs + 1):
            begin = time.monotonic()
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=os.environ.copy())
            seconds = time.monotonic() - begin
            load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
            last = (done.stdout.strip().splitlines() or [""])[-1]
            results.append({"run": run, "returncode": done.returncode, "seconds": round(seconds, 1),
                            "load_average_1min": round(load, 2), "summary": last})
            print(f"run {run:2d}/{args.runs}: exit {done.returncode}, {seconds:5.1f} s, load {load:4.1f}: {last}",
                  flush=True)
            if args.output is not None:
                (args.output / f"run{run:02d}.log").write_text(done.stdout + done.stderr)
            if done.returncode != 0:
                print(done.stdout[-8000:], done.stderr[-4000:], sep="\n", file=sys.stderr)
                break
    finally:
        stop.set()
        for process in spinners:
            process.join(timeout=5)
    passed = 0
    for result in results:
        if result["returncode"] != 0:
            break
        passed += 1
    loads = sorted(r["load_average_1min"] for r in results)
    summary = {"command": " ".join(["python", "tests/scripts/repeat_multiprocess.py", *(argv or sys.argv[1:])]),
               "consecutive_passes": passed, "runs": len(results), "busy_processes": args.load,
               "load_average_1min_median": loads[len(loads) // 2] if loads else None,
               "load_average_1min_range": [loads[0], loads[-1]] if loads else None,
               "cores": os.cpu_count(), "total_seconds": round(time.monotonic() - started, 1), "results": results}
    print(f"{passed} consecutive passes of {len(results)} runs; busy processes {args.load}; load average (1 min) "
          f"median {summary['load_average_1min_median']} range {summary['load_average_1min_range']} on "
          f"{os.cpu_count()} cores; {summary['total_seconds']} s")
    if args.output is not None:
        (args.output / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if passed == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())
