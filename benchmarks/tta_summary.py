"""The budgeted time-to-accuracy summary: the target, each policy's smallest budget that reaches it, the steps
of that run and of the search it needed, the speed-ups, the tables and the figure.

Measured the way DAWNBench and the super-convergence paper do: every run is planned for its budget (its schedule
spans the run), so "time to accuracy" is the smallest budget whose median FINAL test accuracy reaches a high
target, not the first evaluation of a long run that happens to cross it.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

__all__ = [
    "AUTO_POLICIES",
    "DESCRIPTIONS",
    "HAND_SET",
    "OPTIMIZER_BASELINES",
    "POLICIES",
    "TARGET_MARGIN",
    "describe",
    "goal",
    "plot",
    "search_steps",
    "summarize",
    "tables",
]

HAND_SET = ("constant", "step", "triangular", "triangular2", "exp_range", "1cycle", "cosine")
AUTO_POLICIES = ("1cycle-auto", "triangular2-auto", "1cycle-auto-guard")
OPTIMIZER_BASELINES = ("prodigy", "schedulefree")
POLICIES = HAND_SET + AUTO_POLICIES + OPTIMIZER_BASELINES
SPEEDUP_BASES = ("constant", "step", "prodigy", "schedulefree")
TARGET_MARGIN = 0.005
"""The target is tuned step decay's median final accuracy at the largest budget minus this (0.5 points)."""

DESCRIPTIONS = {
    "constant": "constant rate (no callback)",
    "step": "ScheduledLR(StepDecaySchedule): x0.1 at 50% and 75% of the budget",
    "triangular": "CyclicLR(triangular), base = peak/4, 3 cycles per budget",
    "triangular2": "CyclicLR(triangular2), base = peak/4, 3 cycles per budget",
    "exp_range": "CyclicLR(exp_range), base = peak/4, 3 cycles, gamma**budget = 0.1",
    "1cycle": "OneCycleLR(max_lr=peak), whole budget, torch defaults",
    "cosine": "CosineRestartsLR(max_lr=peak, t_mul=2): cycles of 1/7, 2/7, 4/7 of the budget",
    "1cycle-auto": "default LRRangeTest() + OneCycleLR(max_lr='auto')",
    "triangular2-auto": "default LRRangeTest() + CyclicLR('auto', 'auto', triangular2), 3 cycles per budget",
    "1cycle-auto-guard": "default LRRangeTest() + OneCycleLR(max_lr='auto') + DivergenceGuard() (its defaults)",
    "prodigy": "prodigyopt.Prodigy(lr=1.0) + cosine decay over the budget (no rate to tune)",
    "schedulefree": "schedulefree.SGDScheduleFree (default lr, 5% warm-up; no rate to tune)",
}
CHARLM_DESCRIPTIONS = {
    **DESCRIPTIONS,
    "constant": "constant AdamW rate (no callback), weight decay 0.01 for every policy",
    "prodigy": "prodigyopt.Prodigy(lr=1.0, weight_decay=0.01) + cosine decay over the budget (no rate to tune)",
    "schedulefree": "schedulefree.AdamWScheduleFree (default lr, 5% warm-up, wd 0.01; no rate to tune)",
}


def describe(policy: str, settings: Any) -> str:
    """One line on how ``policy`` is driven in ``settings``' family."""
    return (CHARLM_DESCRIPTIONS if settings.family == "charlm" else DESCRIPTIONS)[policy]


def _final(result: Any) -> float:
    return result.accuracy[-1]


def search_steps(policy: str, epochs: int, results: Sequence[Any], settings: Any) -> float:
    """Optimizer steps the policy's rate search cost at this budget: every grid run of a hand-set policy (the
    constant rate's grid runs only at the largest budget, read off at each budget), the median range test of an
    "auto" policy, none for Prodigy and schedule-free."""
    spe = settings.steps_per_unit
    if policy == "constant":
        return float(len(settings.grid) * settings.tune_seeds * max(settings.budgets) * spe)
    if policy in HAND_SET:
        return float(len(settings.grid) * settings.tune_seeds * epochs * spe)
    if policy in AUTO_POLICIES:
        return float(statistics.median(r.extra_steps for r in results)) if results else 0.0
    return 0.0


def summarize(runs: dict[tuple[str, int], list[Any]], settings: Any) -> dict[str, Any]:
    """Medians per budget, the target, each policy's budget to target and its run and total steps, speed-ups.

    The target is tuned step decay's median final test accuracy at the largest budget minus
    :data:`TARGET_MARGIN`. A policy reaches it at the smallest budget whose median final test accuracy is at
    least the target; its run steps are that budget's, its total steps add the rate search it needed there
    (:func:`search_steps`). The speed-up over a baseline is the baseline's steps divided by the policy's (run
    steps and total steps apart); ``nan`` where either never reached the target.
    """
    largest = max(settings.budgets)
    step_runs = runs.get(("step", largest), [])
    target = statistics.median(_final(r) for r in step_runs) - TARGET_MARGIN if step_runs else math.nan
    summary: dict[str, Any] = {"target": target, "policies": {}}
    spe = settings.steps_per_unit
    for policy in settings.policies:
        per_budget = {}
        for e in settings.budgets:
            results = runs.get((policy, e), [])
            if not results:
                continue
            finals = [_final(r) for r in results]
            per_budget[e] = {"peak": results[0].spec.peak, "median": statistics.median(finals), "min": min(finals),
                             "max": max(finals), "finals": finals, "bounds": [r.bounds for r in results],
                             "search_steps": search_steps(policy, e, results, settings)}
        reached = [e for e, b in per_budget.items() if b["median"] >= target]
        budget = min(reached) if reached else None
        run = math.inf if budget is None else float(budget * spe)
        total = math.inf if budget is None else run + per_budget[budget]["search_steps"]
        summary["policies"][policy] = {"budgets": per_budget, "budget_to_target": budget, "run_steps": run,
                                       "total_steps": total}
    for base in SPEEDUP_BASES:
        ref = summary["policies"].get(base)
        for entry in summary["policies"].values():
            for kind in ("run", "total"):
                mine = entry[f"{kind}_steps"]
                theirs = math.nan if ref is None else ref[f"{kind}_steps"]
                ok = math.isfinite(mine) and math.isfinite(theirs)
                entry[f"{kind}_speedup_vs_{base}"] = theirs / mine if ok else math.nan
    return summary


def _acc(x: float) -> str:
    return f"{100 * x:.1f}"


def _steps(x: float) -> str:
    return "not reached" if not math.isfinite(x) else f"{x:.0f}"


def _ratio(x: float) -> str:
    return "–" if not math.isfinite(x) else f"{x:.2f}x"


def goal(summary: dict[str, Any]) -> dict[str, Any]:
    """Issue 13's goal: 1cycle-auto reaches the target in at most half the run steps of tuned step decay and at most
    a quarter of its total steps (the search counted).

    Returns:
        ``{"run_ratio", "total_ratio"}`` (1cycle-auto's steps over step decay's; ``inf`` where 1cycle-auto never
        reaches the target, ``nan`` where a policy is missing or step decay never reaches it) and ``"run_met"``,
        ``"total_met"``.
    """
    auto, step = summary["policies"].get("1cycle-auto"), summary["policies"].get("step")
    out: dict[str, Any] = {}
    for kind, limit in (("run", 0.5), ("total", 0.25)):
        ratio = math.nan
        if auto is not None and step is not None and math.isfinite(step[f"{kind}_steps"]):
            ratio = auto[f"{kind}_steps"] / step[f"{kind}_steps"]
        out[f"{kind}_ratio"], out[f"{kind}_met"] = ratio, bool(ratio <= limit)
    return out


def _rate(entry: dict[str, Any], budget: int | None) -> str:
    """The tuned rate at ``budget``, or the median suggested ``max_lr`` of an auto policy."""
    if budget is None:
        return "–"
    b = entry["budgets"][budget]
    if b["peak"] is not None:
        return f"{b['peak']:g}"
    peaks = [x["max_lr"] for x in b["bounds"] if "max_lr" in x]
    return f"auto, max_lr {statistics.median(peaks):.3g}" if peaks else "–"


def tables(summary: dict[str, Any], scores: dict[tuple[str, int, float], float],
           chosen: dict[tuple[str, int], float], settings: Any) -> str:
    """The markdown report: the tuning grid, accuracy per budget, budget and steps to the target, speed-ups."""
    from reporting import markdown_table

    spe = settings.steps_per_unit
    short, long = settings.unit
    out = []
    headers = ["policy", f"budget ({long})"] + [f"{p:g}" for p in settings.grid]
    rows = []
    for policy in settings.policies:
        if policy not in HAND_SET:
            continue
        for e in settings.budgets:
            cells = []
            for p in settings.grid:
                text = _acc(scores[(policy, e, p)])
                cells.append(f"**{text}**" if chosen[(policy, e)] == p else text)
            rows.append([policy, e, *cells])
    out.append(f"Tuning grid: mean final VALIDATION accuracy (%) over {settings.tune_seeds} seed(s) per rate "
               "(constant rate; step decay's initial rate; the cyclical peak). Bold: chosen.\n")
    out.append(markdown_table(headers, rows))
    headers = ["policy"] + [f"{e} {short}" for e in settings.budgets]
    rows = []
    for policy, entry in summary["policies"].items():
        cells = []
        for e in settings.budgets:
            b = entry["budgets"].get(e)
            cells.append("–" if b is None else f"{_acc(b['median'])} [{_acc(b['min'])}–{_acc(b['max'])}]")
        rows.append([policy, *cells])
    out.append(f"\nFinal test accuracy (%): median [min–max] over {settings.seeds} seeds; every run planned for its "
               f"budget ({spe} steps {'a budget unit' if settings.unit_steps else 'an epoch'}).\n")
    out.append(markdown_table(headers, rows))
    headers = ["policy", "budget to target", "rate there", "run steps", "search steps", "total steps",
               *[f"run speed-up vs {b}" for b in SPEEDUP_BASES], *[f"total speed-up vs {b}" for b in SPEEDUP_BASES]]
    rows = []
    for policy, entry in summary["policies"].items():
        budget = entry["budget_to_target"]
        search = "–" if budget is None else _steps(entry["budgets"][budget]["search_steps"])
        rows.append([policy, "none" if budget is None else f"{budget} {short}", _rate(entry, budget),
                     _steps(entry["run_steps"]), search,
                     _steps(entry["total_steps"]), *[_ratio(entry[f"run_speedup_vs_{b}"]) for b in SPEEDUP_BASES],
                     *[_ratio(entry[f"total_speedup_vs_{b}"]) for b in SPEEDUP_BASES]])
    out.append(f"\nTarget: tuned step decay's median final test accuracy at {max(settings.budgets)} {long} minus "
               f"{100 * TARGET_MARGIN:.1f} points = {_acc(summary['target'])}%. Budget to target: the smallest budget "
               "whose median final accuracy reaches it. Search steps: every grid run of a hand-set policy "
               f"({len(settings.grid)} rates x {settings.tune_seeds} seed(s) of that budget), the range test of an "
               "auto policy, none for Prodigy and schedule-free.\n")
    out.append(markdown_table(headers, rows))
    g = goal(summary)
    if not math.isnan(g["run_ratio"]):
        def said(kind: str) -> str:
            ratio = "1cycle-auto never reached the target" if math.isinf(g[f"{kind}_ratio"]) else \
                f"{g[f'{kind}_ratio']:.2f}x"
            return f"{ratio} ({'met' if g[f'{kind}_met'] else 'MISSED'})"

        out.append(f"\nGoal (1cycle-auto: at most 0.5x tuned step decay's run steps, at most 0.25x its total steps): "
                   f"run steps {said('run')}, total steps {said('total')}.")
    return "\n".join(out)


def plot(summary: dict[str, Any], settings: Any, path: str, command: str, machine: str) -> None:
    """Two panels: final accuracy per budget (a few policies), and run and total steps to the target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [p for p in ("constant", "step", "1cycle", "triangular2", "1cycle-auto", "triangular2-auto",
                         "1cycle-auto-guard", "prodigy", "schedulefree") if p in summary["policies"]]
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    spe = settings.steps_per_unit
    for k, policy in enumerate(shown):
        entry = summary["policies"][policy]["budgets"]
        budgets = [e for e in settings.budgets if e in entry]
        axes[0].plot([e * spe for e in budgets], [100 * entry[e]["median"] for e in budgets], marker="o",
                     color=f"C{k}", label=policy, lw=1.4)
    axes[0].axhline(100 * summary["target"], color="k", ls="--", lw=0.8, label="target")
    axes[0].set_xscale("log", base=2)
    axes[0].set_xticks([e * spe for e in settings.budgets])
    axes[0].set_xticklabels([f"{e}" for e in settings.budgets])
    axes[0].minorticks_off()
    axes[0].set_xlabel(f"budget ({settings.unit[1]})")
    axes[0].set_ylabel("median final test accuracy (%)")
    axes[0].set_ylim(max(0, 100 * summary["target"] - 15), 100)
    axes[0].grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower right")
    axes[0].set_title(f"Final accuracy per budget (median of {settings.seeds} seeds)")
    names = list(summary["policies"])
    runs = [summary["policies"][p]["run_steps"] for p in names]
    totals = [summary["policies"][p]["total_steps"] for p in names]
    xs = range(len(names))
    axes[1].bar([x - 0.2 for x in xs], [v if math.isfinite(v) else 0 for v in runs], 0.4, label="run steps")
    axes[1].bar([x + 0.2 for x in xs], [v if math.isfinite(v) else 0 for v in totals], 0.4,
                label="total steps (with the rate search)")
    for x, v in zip(xs, runs, strict=True):
        if not math.isfinite(v):
            axes[1].text(x, 0.03, "not reached", rotation=90, ha="center", va="bottom", fontsize=8,
                         transform=axes[1].get_xaxis_transform())
    axes[1].set_xticks(list(xs))
    axes[1].set_xticklabels(names, rotation=35, ha="right", fontsize=8)
    axes[1].set_yscale("log")
    axes[1].set_ylabel("optimizer steps to the target")
    axes[1].legend(fontsize=8)
    axes[1].set_title("Steps to reach the target")
    fig.suptitle(f"{command}\n{machine}", fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def write_outputs(output: str, runs: dict[tuple[str, int], list[Any]], summary: dict[str, Any],
                  scores: dict, chosen: dict, settings: Any, report: str, info: dict[str, Any]) -> list[str]:
    """Writes ``settings.stem`` + .json (every curve), .csv (every final accuracy), .md (the report) and .png into
    ``output``; returns their paths."""
    os.makedirs(output, exist_ok=True)
    paths = []
    path = os.path.join(output, settings.stem + ".json")
    with open(path, "w") as f:
        json.dump(_jsonable({
            "settings": asdict(settings), "machine": info, "summary": summary,
            "tuning": {f"{p}|{e}|{r:g}": s for (p, e, r), s in scores.items()},
            "chosen": {f"{p}|{e}": r for (p, e), r in chosen.items()},
            "runs": {f"{p}|{e}": [{"seed": r.spec.seed, "peak": r.spec.peak, "steps": r.steps,
                                   "accuracy": r.accuracy, "extra_steps": r.extra_steps, "bounds": r.bounds,
                                   "lrs": r.lrs}
                                  for r in rs] for (p, e), rs in runs.items()},
        }), f)
    paths.append(path)
    path = os.path.join(output, settings.stem + ".csv")
    with open(path, "w") as f:
        f.write("policy,budget,steps,rate,seed,final_test_accuracy,range_test_steps\n")
        for (policy, e), results in runs.items():
            for r in results:
                f.write(f"{policy},{e},{e * settings.steps_per_unit},{r.spec.peak if r.spec.peak else 'auto'},"
                        f"{r.spec.seed},{r.accuracy[-1]:.4f},{r.extra_steps}\n")
    paths.append(path)
    path = os.path.join(output, settings.stem + ".md")
    with open(path, "w") as f:
        f.write(report + "\n")
    paths.append(path)
    path = os.path.join(output, settings.stem + ".png")
    plot(summary, settings, path, info.get("command", "python benchmarks/time_to_accuracy.py"),
         f"{info.get('cpu', '?')}, {info.get('cores', '?')} cores")
    paths.append(path)
    return paths
