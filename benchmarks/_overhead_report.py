"""How ``overhead.py`` reports: the paired tables with the goals, the unpaired medians, the JSON form of the
measurements, and the bar chart."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from _overhead_in_fit import in_fit_report
from _overhead_variants import LOOP_VARIANTS, PAIRED_VARIANTS, REFERENCE, VARIANTS, Settings
from reporting import markdown_table

__all__ = ["GOAL_ABOVE_EMPTY_US", "LOOP_PAIRS", "PAIRS", "paired_report", "plain", "plot", "report"]

#: lightning_clr's callback and the torch scheduler it replaces.
PAIRS = (("clr.CyclicLR", "torch CyclicLR"), ("clr.OneCycleLR", "torch OneCycleLR"))
#: The same in the plain PyTorch loop.
LOOP_PAIRS = (("clr CyclicSchedule by hand", "torch CyclicLR.step()"),
              ("clr OneCycleSchedule by hand", "torch OneCycleLR.step()"))
GOAL_ABOVE_EMPTY_US = 3.0


def _quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def paired_report(paired: dict[str, Any], settings: Settings, title: str = "") -> str:
    """The paired tables: each variant's cost, and lightning_clr against the goals."""
    differences, reference = paired["differences"], paired["reference"]
    groups = settings.groups
    title = title or (f"Lightning Trainer, tiny MLP, {settings.steps} steps per run, {settings.rounds} rounds: each "
                      "variant between two runs of an empty Callback; cost = its µs/step minus their mean; median "
                      "[interquartile range] of the rounds.")
    out = ["\n" + title + "\n"]
    headers = ["variant"] + [f"cost, µs/step ({g} group{'s' if g > 1 else ''})" for g in groups]
    rows = [[f"{REFERENCE} (reference, absolute µs/step)"]
            + [f"{statistics.median(reference[g]):.1f}" for g in groups]]
    for variant in PAIRED_VARIANTS:
        row = [variant]
        for g in groups:
            q1, q2, q3 = _quartiles(differences[(variant, g)])
            row.append(f"{q2:+.2f} [{q1:+.2f}, {q3:+.2f}]")
        rows.append(row)
    out.append(markdown_table(headers, rows))
    rows = []
    for mine, theirs in PAIRS:
        for g in groups:
            cost = statistics.median(differences[(mine, g)])
            torch_cost = statistics.median(differences[(theirs, g)])
            # Per round: both runs sit between references of the same round, so their difference is paired too.
            gap = statistics.median(a - b for a, b in zip(differences[(mine, g)], differences[(theirs, g)],
                                                          strict=True))
            goals = [f"≤ torch: {'met' if gap <= 0 else 'MISSED'}"]
            if g == 1:
                goals.insert(0, f"≤ {GOAL_ABOVE_EMPTY_US:g} µs: {'met' if cost <= GOAL_ABOVE_EMPTY_US else 'MISSED'}")
            rows.append([f"{mine} vs {theirs}", g, f"{cost:+.2f}", f"{torch_cost:+.2f}", f"{gap:+.2f}",
                         "; ".join(goals)])
    out.append("")
    out.append(markdown_table(["lightning_clr vs torch", "groups", "lightning_clr µs/step", "torch µs/step",
                               "lightning_clr − torch (paired median)", "goals"], rows))
    for variant in PAIRED_VARIANTS[2:3]:
        for g in groups:
            cost = statistics.median(differences[(variant, g)])
            if g == 1:
                out.append(f"\n{variant} (no torch counterpart with momentum): {cost:+.2f} µs/step with 1 group, "
                           f"goal ≤ {GOAL_ABOVE_EMPTY_US:g} µs: {'met' if cost <= GOAL_ABOVE_EMPTY_US else 'MISSED'}.")
    return "\n".join(out)


def _stats(times: dict[tuple[str, int], list[float]]) -> dict[str, Any]:
    out = {}
    for (name, groups), values in times.items():
        none = statistics.median(times[("none", groups)])
        median = statistics.median(values)
        out[f"{name}|{groups}"] = {"variant": name, "groups": groups, "median_us": median, "min_us": min(values),
                                   "max_us": max(values), "marginal_us": median - none, "samples_us": values}
    return out


def _pairs(kind: str) -> tuple[tuple[str, str], ...]:
    return PAIRS if kind == "trainer" else LOOP_PAIRS


def report(results: dict[str, Any], settings: Settings) -> str:
    """Markdown tables of the measurements: the paired Trainer tables (if measured), then medians against
    ``none`` for the kinds present (``trainer``: the unpaired form, ``loop``: the plain PyTorch loop)."""
    out = [in_fit_report(results["in_fit"])] if "in_fit" in results else []
    if "paired" in results:
        out.append("\nWhole fits timed, paired (noise: a fit's step varies by tens of µs from run to run):\n")
        out.append(paired_report(results["paired"], settings))
    if "hooks" in results:
        out.append(paired_report(results["hooks"], settings, (
            f"The per-step scheduling work alone, in a tight loop on fitted Trainers ({4 * settings.rounds} "
            "rounds of 3,000 steps; a callback's three per-step hooks with its write forced, torch's schedulers "
            "through Lightning's per-batch `update_lr_schedulers`; the empty Callback's hooks as the reference; "
            "paired as above). Inside a fit the same work costs more (the Trainer's own work evicts it from the "
            "caches).")))
    mnist = results.get("mnist1d_step_us")
    for kind, title in (("trainer", f"Lightning Trainer, tiny MLP, {settings.steps} steps per run"),
                        ("loop", f"Plain PyTorch loop, tiny MLP, {settings.loop_steps} steps per run")):
        if kind not in results:
            continue
        stats = results[kind]
        headers = ["variant"] + [h for g in settings.groups for h in
                                 (f"µs/step ({g} group{'s' if g > 1 else ''})", f"marginal ({g})")]
        names = VARIANTS if kind == "trainer" else LOOP_VARIANTS
        rows = []
        for name in names:
            row = [name]
            for g in settings.groups:
                s = stats[f"{name}|{g}"]
                row += [f"{s['median_us']:.1f} [{s['min_us']:.1f}–{s['max_us']:.1f}]",
                        "–" if name == "none" else f"{s['marginal_us']:+.1f}"]
            rows.append(row)
        repeats = settings.repeats
        out.append(f"\n{title}: median [min–max] of {repeats} interleaved repeats; marginal = median minus "
                   "`none`'s median.\n")
        out.append(markdown_table(headers, rows))
        rows = []
        for mine, theirs in _pairs(kind):
            for g in settings.groups:
                a, b = stats[f"{mine}|{g}"]["marginal_us"], stats[f"{theirs}|{g}"]["marginal_us"]
                ratio = f"{a / b:.2f}" if b > 0 else "– (torch's marginal ≤ 0: noise)"
                rows.append([f"{mine} / {theirs}", g, f"{a:+.1f}", f"{b:+.1f}", ratio,
                             f"{100 * a / mnist:.1f}%"])
        out.append("")
        out.append(markdown_table(["lightning_clr / torch", "groups", "lightning_clr marginal µs",
                                   "torch marginal µs", "ratio",
                                   "lightning_clr marginal as share of an MNIST-1D step"],
                                  rows))
    if mnist is not None:
        out.append(f"\nOne optimizer step of the MNIST-1D ConvBase (batch 64, SGD, no scheduler) in a Trainer: "
                   f"{mnist:.0f} µs (median of 3 runs of {settings.mnist_steps} steps).")
    return "\n".join(out)


def plot(results: dict[str, Any], settings: Settings, path: str, caption: str = "") -> None:
    """A bar chart of the paired costs in the Trainer (median, with the interquartile range)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    differences = results["paired"]["differences"]
    fig, ax = plt.subplots(figsize=(9, 4.6))
    width = 0.8 / len(settings.groups)
    for k, g in enumerate(settings.groups):
        quartiles = [_quartiles(differences[(v, g)]) for v in PAIRED_VARIANTS]
        medians = [q[1] for q in quartiles]
        errors = [[q[1] - q[0] for q in quartiles], [q[2] - q[1] for q in quartiles]]
        ax.bar([i + k * width for i in range(len(PAIRED_VARIANTS))], medians, width, yerr=errors, capsize=3,
               label=f"{g} param group{'s' if g > 1 else ''}")
    ax.set_xticks([i + width * (len(settings.groups) - 1) / 2 for i in range(len(PAIRED_VARIANTS))])
    ax.set_xticklabels(PAIRED_VARIANTS, rotation=15, ha="right")
    ax.axhline(GOAL_ABOVE_EMPTY_US, color="C3", lw=0.8, ls="--", label=f"goal: {GOAL_ABOVE_EMPTY_US:g} µs (1 group)")
    ax.axhline(0, color="k", lw=0.8)
    ax.set_ylabel("µs per optimizer step above an empty Callback")
    ax.set_title("Per-step cost in a Lightning Trainer (paired median, interquartile range)")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    if caption:
        fig.text(0.01, 0.01, caption, fontsize=7, color="0.3")
    fig.tight_layout(rect=(0, 0.05 if caption else 0, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plain(measured: dict[str, Any]) -> dict[str, Any]:
    """A paired measurement (:func:`~_overhead_method.measure_paired`, ``measure_hooks``) as JSON values: its
    ``(variant, groups)`` keys written ``"variant|groups"``, as in ``overhead.json``."""
    return {"differences": {f"{v}|{g}": d for (v, g), d in measured["differences"].items()},
            "reference": {str(g): r for g, r in measured["reference"].items()}}
