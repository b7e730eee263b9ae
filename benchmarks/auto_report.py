"""The report of the "auto" bounds benchmark (``auto_bounds.py``): the comparison table with its goal check, the
range test's cost, and the suggestion rules compared offline on the recorded curves."""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from typing import Any

from auto_runs import AUTO_METHODS, BASELINES, METHODS, record_curves, tune
from common import train_loader
from families import FAMILIES, family_data
from reporting import markdown_table

__all__ = ["goal_misses", "grid_accuracy", "median_range", "report", "rules_table"]


def median_range(values: Sequence[float | None]) -> str:
    """``median [min, max]`` of the accuracies, with the count of runs that ended in an error."""
    got = [v for v in values if v is not None]
    if not got:
        return "error"
    text = f"{statistics.median(got):.1f} [{min(got):.1f}, {max(got):.1f}]"
    return text + (f" ({len(values) - len(got)} err)" if len(got) < len(values) else "")


def goal_misses(accuracies: Sequence[float | None], tuned: float, rival: float = -math.inf) -> list[str]:
    """How one policy's accuracies over seeds miss the goal: an error, a median more than 1 point under the tuned
    median ``tuned``, a median under ``rival`` (the best of Prodigy and schedule-free), a seed more than 3 under."""
    misses = []
    med = statistics.median([v or 0.0 for v in accuracies])
    if any(v is None for v in accuracies):
        misses.append("error")
    if med < tuned - 1.0:
        misses.append(f"median {med - tuned:+.1f}")
    if med < rival:
        misses.append("under Prodigy/SF")
    worst = min(v or 0.0 for v in accuracies)
    if worst < tuned - 3.0:
        misses.append(f"a seed {worst - tuned:+.1f}")
    return misses


def report(results: dict[str, dict[str, Any]], seeds: int) -> str:
    """The comparison table (median test accuracy [min, max] over seeds) and the goal check per family."""
    headers = ["family", "tuned peak", *METHODS, "goal met"]
    rows, cost_rows = [], []
    for family, entry in results.items():
        runs = entry["runs"]
        tuned = [o.accuracy for o in runs["1cycle"]]
        tuned_med = statistics.median([v or 0.0 for v in tuned])
        rival = max((statistics.median([o.accuracy or 0.0 for o in runs[m]]) for m in BASELINES if m in runs),
                    default=-math.inf)
        misses = []
        for m in AUTO_METHODS:
            accs = [o.accuracy for o in runs.get(m, [])]
            if accs:
                misses += [f"{m}: {miss}" for miss in goal_misses(accs, tuned_med, rival)]
        cells = [median_range([o.accuracy for o in runs.get(m, [])]) for m in METHODS]
        rows.append([family, f"{entry['peak']:.3g}", *cells,
                     "yes" if not misses else "no: " + "; ".join(misses)])
        auto = [o for m in AUTO_METHODS for o in runs.get(m, [])]
        if auto:
            steps = statistics.median(o.test_steps for o in auto)
            run_steps = len(train_loader(*(lambda d: (d.x_train, d.y_train))(family_data(family)),
                                         FAMILIES[family].batch_size, 0)) * FAMILIES[family].epochs
            peaks = {m: statistics.median(o.bounds.get("max_lr") or 0.0 for o in runs[m]) for m in AUTO_METHODS
                     if m in runs}
            cost_rows.append([family, f"{steps:.0f}", f"{run_steps}", f"{100 * steps / run_steps:.0f}%",
                              f"{statistics.median(o.test_seconds for o in auto):.1f}",
                              ", ".join(f"{m.split('-')[0]} {v:.3g}" for m, v in peaks.items())])
    text = [f"Test accuracy (%), median [min, max] over {seeds} seeds:", "", markdown_table(headers, rows), "",
            "Range test cost and the suggested peaks (median over seeds):", "",
            markdown_table(["family", "test steps", "run steps", "share", "test s", "suggested max_lr"], cost_rows)]
    for family, entry in results.items():
        text += ["", f"{family} ({FAMILIES[family].describe}): 1cycle validation accuracy by peak: "
                 + ", ".join(f"{p:.3g}: {s:.1f}" for p, s in entry["scores"].items())]
    return "\n".join(text)


def grid_accuracy(scores: dict[float, float], peak: float) -> float:
    """The validation accuracy at ``peak``, linear in ``log(peak)`` between grid points (the end value outside)."""
    points = sorted(scores.items())
    if peak <= points[0][0]:
        return points[0][1]
    if peak >= points[-1][0]:
        return points[-1][1]
    for (a, sa), (b, sb) in itertools.pairwise(points):
        if a <= peak <= b:
            t = math.log(peak / a) / math.log(b / a)
            return sa + t * (sb - sa)
    raise AssertionError("unreachable")


def rules_table(families: Sequence[str], seeds: int, cache: str | None, workers: int) -> str:
    """Every rule's 1cycle peak on the recorded curves, scored by the tuned grid's validation accuracy there.

    Offline: a rule is judged by where its peak falls on the family's measured accuracy-by-peak curve, so many
    rules are compared on the same curves without training once per rule.
    """
    from lightning_clr.tuner.rules import BASELINE_RULES
    from lightning_clr.tuner.suggest import read_curve, suggest

    curves = record_curves(families, seeds, workers, cache)
    rows = []
    names = ["lightning_clr", *BASELINE_RULES]
    for family in families:
        _, scores = tune(family, 2, workers, cache)
        best = max(scores.values())
        adam = "adam" if FAMILIES[family].adam_family else "sgd"
        cells = []
        for name in names:
            gaps, peaks = [], []
            for seed in range(seeds):
                curve = curves[f"{family}/{seed}"]
                lrs, losses = curve["lrs"], curve["losses"]
                if name == "lightning_clr":
                    peak = suggest(read_curve(lrs, losses, stopped_early=True, optimizer=adam), "one_cycle").max_lr
                else:
                    peak = BASELINE_RULES[name](lrs, losses)
                peaks.append(peak)
                gaps.append(grid_accuracy(scores, peak) - best)
            cells.append(f"{statistics.median(peaks):.3g}: {statistics.median(gaps):+.1f} (worst {min(gaps):+.1f})")
        rows.append([family, f"{max(scores, key=scores.__getitem__):.3g}", *cells])
    return markdown_table(["family", "tuned", *names], rows)
