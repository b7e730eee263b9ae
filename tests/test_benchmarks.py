"""Smoke and correctness tests of the benchmark scripts, run in-process on tiny settings."""

from __future__ import annotations

import math
import os
import statistics
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")
sys.path.insert(0, BENCHMARKS)

import auto_guard  # noqa: E402
import auto_runs  # noqa: E402
import common  # noqa: E402
import guard as guard_bench  # noqa: E402
import knee_noise  # noqa: E402
import overhead  # noqa: E402
import sgdr_m_mul  # noqa: E402
import sgdr_warmup  # noqa: E402
import time_to_accuracy as tta  # noqa: E402

import lightning_clr as clr  # noqa: E402

TINY = tta.Settings(budgets=(1,), seeds=1, tune_seeds=1, grid=(0.1,), workers=1,
                    policies=("constant", "step"))


@pytest.fixture(scope="module")
def data() -> common.Splits:
    return tta._data(TINY)


def test_step_decay_schedule_values_and_validation():
    schedule = common.StepDecaySchedule(0.1, (3, 5), 0.1)
    assert schedule.values(7) == pytest.approx([0.1, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rel=1e-12)
    with pytest.raises(ValueError, match="Expected increasing"):
        common.StepDecaySchedule(0.1, (5, 3))
    with pytest.raises(ValueError, match="Expected initial > 0"):
        common.StepDecaySchedule(0.0, (5,))


def test_mnist1d_splits_are_deterministic_and_leave_numpy_alone(data):
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (3500, 500, 1000)
    assert data.x_train.shape[1] == 40 and data.x_train.dtype == torch.float32
    assert sorted(torch.cat([data.y_train, data.y_val, data.y_test]).bincount().tolist()) == [500] * 10
    np.random.seed(7)
    expected = np.random.rand()
    np.random.seed(7)
    again = common.make_mnist1d()
    assert np.random.rand() == expected  # make_dataset's reseeding does not leak
    assert torch.equal(again.x_test, data.x_test) and torch.equal(again.y_train, data.y_train)


def test_convbase_is_the_papers_model():
    model = common.ConvBase()
    assert sum(p.numel() for p in model.parameters()) == 150 + 1900 + 1900 + 1260
    assert model(torch.zeros(3, 40)).shape == (3, 10)


def test_guard_rule_column_keeps_the_cached_rows_valid():
    # The "rule" column keys the cached guard runs: an argument added later is written only when it differs from
    # the behaviour the older rows had, and the stall_* arguments other than stall_patience only with the stall on.
    base = ("check_every_n_steps=10 keep_every_n_steps=100 spike_factor=1.2 patience=2 smoothing=0.8 "
            "level_memory=20 max_rollbacks=5")
    assert guard_bench.rule_of() == base + " stall_patience=3 stall_fraction=0.65 stall_min_delta=0.01"
    assert guard_bench.rule_of(stall_min_delta=0.0) == base + " stall_patience=3 stall_fraction=0.65"  # stop 17
    assert guard_bench.rule_of(stall_patience=0) == base  # the rows from before the stall rule
    assert guard_bench.rule_of(stall_patience=0, keep_count=2) == base + " keep_count=2"


def test_auto_policies_put_a_default_range_test_first_and_the_guard_last():
    _lr, callbacks = tta.callbacks_for(tta.RunSpec("1cycle-auto-guard", 4, 0, None), TINY)
    assert [type(c) for c in callbacks] == [clr.LRRangeTest, clr.OneCycleLR, clr.DivergenceGuard]
    assert callbacks[1].max_lr == "auto" and repr(callbacks[2]) == repr(clr.DivergenceGuard())
    _, plain = tta.callbacks_for(tta.RunSpec("1cycle-auto", 4, 0, None), TINY)
    assert [type(c) for c in plain] == [clr.LRRangeTest, clr.OneCycleLR]


@pytest.mark.parametrize(
    ("policy", "kind", "checks"),
    [
        ("step", clr.ScheduledLR, {}),
        ("triangular", clr.CyclicLR, {"mode": "triangular"}),
        ("exp_range", clr.CyclicLR, {"mode": "exp_range"}),
        ("1cycle", clr.OneCycleLR, {}),
        ("cosine", clr.CosineRestartsLR, {"t_mul": 2.0}),
    ],
)
def test_callbacks_for_builds_the_policy(policy, kind, checks):
    settings = replace(TINY, budgets=(4,))
    lr, callbacks = tta.callbacks_for(tta.RunSpec(policy, 4, 0, 0.2), settings)  # 220 steps
    assert lr == 0.2 and len(callbacks) == 1 and isinstance(callbacks[0], kind)
    for name, value in checks.items():
        assert getattr(callbacks[0], name) == value
    lr_schedule, _ = callbacks[0].schedules(steps_per_epoch=55, total_steps=220)[0]
    if policy == "step":
        assert [lr_schedule(s) for s in (109, 110, 164, 165)] == pytest.approx([0.2, 0.02, 0.02, 0.002])
    elif policy == "triangular":  # three cycles of 2 x 37 steps, base = peak / 4
        assert [lr_schedule(s) for s in (0, 37, 74)] == pytest.approx([0.05, 0.2, 0.05])
    elif policy == "exp_range":  # the amplitude falls to 10% over the budget
        assert lr_schedule(0) == pytest.approx(0.05)
        assert lr_schedule(37) == pytest.approx(0.05 + 0.15 * 0.1 ** (37 / 220))
    elif policy == "1cycle":
        assert lr_schedule(0) == pytest.approx(0.2 / 25) and lr_schedule(65) == pytest.approx(0.2)
    elif policy == "cosine":  # cycles of 32, 64, 128 steps
        assert [lr_schedule(s) for s in (0, 32, 96)] == pytest.approx([0.2, 0.2, 0.2])
        assert lr_schedule(16) == pytest.approx(0.1)


def test_unknown_policy_and_missing_peak_raise():
    with pytest.raises(ValueError, match="Expected a policy"):
        tta.callbacks_for(tta.RunSpec("nope", 1, 0, 0.1), TINY)
    with pytest.raises(ValueError, match="Expected a peak rate"):
        tta.callbacks_for(tta.RunSpec("triangular", 1, 0, None), TINY)


def test_run_one_uses_the_schedule_and_evaluates_every_fifth_epoch(data):
    result = tta.run_one(tta.RunSpec("step", 1, 0, 0.1, "val", record_lr=True), TINY)
    assert result.steps == [*range(0, 55, 11), 55]
    assert all(0.0 <= a <= 1.0 for a in result.accuracy)
    # Milestones at 27 and 41 of 55 steps: the rates each optimizer step really used.
    assert result.lrs == pytest.approx([0.1] * 27 + [0.01] * 14 + [0.001] * 14)


def test_constant_rate_short_budget_is_a_prefix_of_the_long_run(data):
    """The benchmark reads the constant rate's short budgets off its longest run; this is exact."""
    long = tta.run_one(tta.RunSpec("constant", 2, 3, 0.1, "test"), TINY)
    short = tta.run_one(tta.RunSpec("constant", 1, 3, 0.1, "test"), TINY)
    cut = tta._truncate(long, 1, TINY)
    assert cut.steps == short.steps
    assert cut.accuracy == short.accuracy


def _fake(policy, epochs, seed, steps, accuracy, extra=0):
    return tta.RunResult(tta.RunSpec(policy, epochs, seed, 0.1), steps, accuracy, extra_steps=extra)


def test_summary_budget_to_target_run_and_total_steps_and_speedups():
    settings = replace(TINY, budgets=(1, 2), seeds=3, tune_seeds=2, grid=(0.1, 0.2, 0.4),
                       policies=("constant", "step", "1cycle-auto", "prodigy"))
    one, two = [0, 55], [0, 55, 110]
    runs = {
        ("constant", 1): [_fake("constant", 1, s, one, [0.1, a]) for s, a in enumerate((0.5, 0.6, 0.7))],
        ("constant", 2): [_fake("constant", 2, s, two, [0.1, 0.8, a]) for s, a in enumerate((0.80, 0.86, 0.9))],
        ("step", 1): [_fake("step", 1, s, one, [0.1, 0.8]) for s in range(3)],
        ("step", 2): [_fake("step", 2, s, two, [0.1, 0.7, a]) for s, a in enumerate((0.9, 0.91, 0.92))],
        ("1cycle-auto", 1): [_fake("1cycle-auto", 1, s, one, [0.1, a], extra=e)
                             for s, (a, e) in enumerate(((0.93, 90), (0.91, 100), (0.5, 110)))],
        ("1cycle-auto", 2): [_fake("1cycle-auto", 2, s, two, [0.1, 0.2, 0.3]) for s in range(3)],
        ("prodigy", 1): [_fake("prodigy", 1, s, one, [0.1, 0.2]) for s in range(3)],
        ("prodigy", 2): [_fake("prodigy", 2, s, two, [0.1, 0.2, 0.3]) for s in range(3)],
    }
    summary = tta.summarize(runs, settings)
    assert summary["target"] == pytest.approx(0.905)  # step decay's median at 2 epochs, minus half a point
    constant, step, auto, prodigy = (summary["policies"][p] for p in ("constant", "step", "1cycle-auto", "prodigy"))
    assert constant["budget_to_target"] is None and constant["run_steps"] == math.inf  # median 0.86
    assert step["budget_to_target"] == 2 and step["run_steps"] == 110
    assert step["total_steps"] == 110 + 3 * 2 * 110  # every grid run of that budget: 3 rates x 2 seeds
    assert auto["budget_to_target"] == 1 and auto["run_steps"] == 55  # finals 0.93, 0.91, 0.5: median 0.91
    assert auto["total_steps"] == 55 + 100  # the median range test
    assert prodigy["budget_to_target"] is None
    assert auto["run_speedup_vs_step"] == pytest.approx(2.0)
    assert auto["total_speedup_vs_step"] == pytest.approx(770 / 155)
    assert math.isnan(auto["run_speedup_vs_constant"]) and math.isnan(auto["run_speedup_vs_prodigy"])
    assert constant["budgets"][1]["median"] == 0.6 and constant["budgets"][1]["min"] == 0.5


def test_tune_evaluate_and_outputs(tmp_path, data):
    chosen, scores = tta.tune(TINY)
    assert chosen == {("constant", 1): 0.1, ("step", 1): 0.1}
    assert set(scores) == {("constant", 1, 0.1), ("step", 1, 0.1)}
    runs = tta.evaluate(TINY, chosen)
    assert [r.spec.seed for r in runs[("step", 1)]] == [0]
    summary = tta.summarize(runs, TINY)
    report = tta.tables(summary, scores, chosen, TINY)
    assert "| constant | 1 | **" in report and "budget to target" in report
    paths = tta.write_outputs(str(tmp_path), runs, summary, scores, chosen, TINY, report, {})
    assert sorted(os.path.basename(p) for p in paths) == [
        "time_to_accuracy.csv", "time_to_accuracy.json", "time_to_accuracy.md", "time_to_accuracy.png"]
    assert (tmp_path / "time_to_accuracy.csv").read_text().count("\n") == 3  # header + 2 runs


def test_summary_search_steps_count_every_grid_run_in_budget_units():
    """charlm's budget unit is 32 steps: a grid-tuned policy pays grid x tuning seeds x its budget, the constant
    rate its grid at the largest budget (read off at each budget), an auto policy its median range test."""
    settings = replace(tta.CHARLM, budgets=(2, 4, 8), tune_seeds=2, grid=(0.001, 0.01, 0.1))
    assert settings.steps_per_unit == 32 and settings.steps_per_epoch == 88
    assert tta.search_steps("step", 4, [], settings) == 3 * 2 * 4 * 32
    assert tta.search_steps("constant", 2, [], settings) == 3 * 2 * 8 * 32
    auto = [_fake("1cycle-auto", 2, s, [0, 64], [0.0, 0.3], extra=e) for s, e in enumerate((96, 97, 120))]
    assert tta.search_steps("1cycle-auto", 2, auto, settings) == 97
    assert tta.search_steps("schedulefree", 2, [], settings) == 0
    runs = {("step", e): [_fake("step", e, s, [0, e * 32], [0.0, a]) for s, a in enumerate(accs)]
            for e, accs in ((2, (0.30, 0.31, 0.32)), (4, (0.40, 0.41, 0.42)), (8, (0.45, 0.46, 0.47)))}
    runs.update({("1cycle-auto", e): [_fake("1cycle-auto", e, s, [0, e * 32], [0.0, a], extra=96 + s)
                                      for s, a in enumerate(accs)]
                 for e, accs in ((2, (0.40, 0.44, 0.46)), (4, (0.455, 0.46, 0.47)), (8, (0.5, 0.5, 0.5)))})
    summary = tta.summarize(runs, replace(settings, policies=("step", "1cycle-auto")))
    assert summary["target"] == pytest.approx(0.455)
    step, auto = summary["policies"]["step"], summary["policies"]["1cycle-auto"]
    assert step["budget_to_target"] == 8 and step["run_steps"] == 256 and step["total_steps"] == 256 + 6 * 256
    assert auto["budget_to_target"] == 4 and auto["run_steps"] == 128 and auto["total_steps"] == 128 + 97
    assert auto["run_speedup_vs_step"] == pytest.approx(2.0)
    assert auto["total_speedup_vs_step"] == pytest.approx(1792 / 225)
    import tta_summary

    goal = tta_summary.goal(summary)
    assert goal["run_ratio"] == pytest.approx(0.5) and goal["run_met"]
    assert goal["total_ratio"] == pytest.approx(225 / 1792) and goal["total_met"]
    runs[("1cycle-auto", 4)] = runs[("1cycle-auto", 2)]  # now it reaches the target only at 8 units
    goal = tta_summary.goal(tta.summarize(runs, replace(settings, policies=("step", "1cycle-auto"))))
    assert goal["run_ratio"] == pytest.approx(1.0) and not goal["run_met"] and goal["total_met"]  # 353 / 1792


CHAR_TINY = replace(tta.CHARLM, budgets=(1, 2), seeds=1, grid=(0.003,), unit_steps=4, evals_per_epoch=2,
                    policies=("constant", "step"))


def test_charlm_runs_with_adamw_and_reads_short_constant_budgets_off_the_long_run():
    result = tta.run_one(tta.RunSpec("step", 2, 0, 0.003, "val", record_lr=True), CHAR_TINY)
    assert result.steps == [0, 2, 4, 6, 8] and all(0.0 <= a <= 1.0 for a in result.accuracy)
    assert result.lrs == pytest.approx([0.003] * 4 + [0.0003] * 2 + [0.00003] * 2)  # milestones at 4 and 6
    long = tta.run_one(tta.RunSpec("constant", 2, 1, 0.003, "test"), CHAR_TINY)
    short = tta.run_one(tta.RunSpec("constant", 1, 1, 0.003, "test"), CHAR_TINY)
    cut = tta._truncate(long, 1, CHAR_TINY)
    assert cut.steps == short.steps == [0, 2, 4] and cut.accuracy == short.accuracy


def test_charlm_optimizer_baselines_are_the_adamw_kinds():
    import tta_runs

    for policy, kind in (("schedulefree", "AdamWScheduleFree"), ("prodigy", "Prodigy"), ("1cycle", "AdamW")):
        model = tta_runs._model(tta.RunSpec(policy, 2, 0, 0.01), CHAR_TINY, 0.01, 8)
        optimizer = model.configure_optimizers()
        optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
        assert type(optimizer).__name__ == kind and optimizer.param_groups[0]["weight_decay"] == 0.01
    result = tta.run_one(tta.RunSpec("schedulefree", 1, 0, None, "test"), CHAR_TINY)
    assert result.steps[-1] == 4


def test_family_option_picks_the_charlm_settings_and_file_names(tmp_path):
    settings, output = tta.parse_args(["--family", "charlm", "--quick", "--output", str(tmp_path)])
    assert settings.family == "charlm" and settings.stem == "time_to_accuracy_charlm" and output == str(tmp_path)
    assert tta.parse_args([])[0] == tta.Settings() and tta.parse_args(["--family", "charlm"])[0] == tta.CHARLM
    assert tta.parse_args(["--quick"])[0].stem == "time_to_accuracy"


@pytest.mark.skipif(not tta.range_test_available(), reason="lightning_clr.LRRangeTest not available")
def test_auto_policy_runs_with_a_range_test(data):
    result = tta.run_one(tta.RunSpec("1cycle-auto", 1, 0, None, "val", record_lr=True), TINY)
    assert result.steps[-1] == 55  # the range test's steps are not the budget's
    assert 10 <= result.extra_steps <= 113  # the default sweep: 1e-6 to 10 at 16 steps a decade, or less
    assert result.bounds["max_lr"] > 0
    # OneCycleLR(max_lr="auto") starts at max_lr / 25 and peaks at the suggested max_lr.
    assert result.lrs[0] == pytest.approx(result.bounds["max_lr"] / 25)
    assert max(result.lrs) == pytest.approx(result.bounds["max_lr"], rel=1e-3)


def test_overhead_measurements_and_report():
    settings = overhead.Settings(steps=30, warmup=5, repeats=1, groups=(1, 10), loop_steps=40, mnist_steps=12)
    assert overhead.measure_trainer("clr.CyclicLR", 10, settings) > 0
    for variant in overhead.LOOP_VARIANTS:
        assert overhead.measure_loop(variant, 10, settings) > 0
    with pytest.raises(ValueError, match="Expected a variant"):
        overhead.measure_loop("nope", 1, settings)
    results = {
        kind: overhead._stats({(n, g): [100.0 + i] for i, n in enumerate(names) for g in settings.groups})
        for kind, names in (("trainer", overhead.VARIANTS), ("loop", overhead.LOOP_VARIANTS))
    }
    results["mnist1d_step_us"] = 1000.0
    text = overhead.report(results, settings)
    # clr.CyclicLR is variant 2 (+2 µs), torch CyclicLR variant 5 (+5 µs): ratio 0.40, 0.2% of 1000 µs.
    assert "| clr.CyclicLR / torch CyclicLR | 1 | +2.0 | +5.0 | 0.40 | 0.2% |" in text


@pytest.mark.filterwarnings("ignore:The number of training batches .* is smaller than the logging interval")
def test_overhead_in_fit_times_the_hooks_of_both_callbacks_on_the_same_batches():
    import _overhead_in_fit as in_fit

    one = in_fit.measure("clr.OneCycleLR", 1, steps=24, warmup=4)
    assert one["empty_median"] > 0 and one["median"] > 0 and "logging" in one and "table" in one
    torch_one = in_fit.measure("torch OneCycleLR", 1, steps=24, warmup=4)
    assert torch_one["median"] > 0  # scheduler.step is timed, the empty hooks cancel
    results = {"runs": 1, "steps": 24, "warmup": 4, "groups": [1], "empty_us": 1.5, "cells": {
        f"{v}/1": {"median": m, "q1": m, "q3": m, "logging": 0.5, "table": 0.25}
        for v, m in zip(in_fit.PAIRED_VARIANTS, (2.0, 2.9, 2.5, 3.0, 5.0), strict=True)}}
    text = in_fit.in_fit_report(results)
    # The goals count the table's share: 2.9 + 0.25 is over 3 µs, and over torch's CyclicLR's 3.0.
    assert "| clr.CyclicLR | +2.00 [+2.00, +2.00] | +0.25 | +0.50 | ≤ 3 µs: met; ≤ torch (1): met |" in text
    assert "| clr.OneCycleLR | +2.90 [+2.90, +2.90] | +0.25 | +0.50 | ≤ 3 µs: MISSED; ≤ torch (1): met |" in text
    assert "| torch CyclicLR | +3.00 [+3.00, +3.00] | – | +0.50 | – |" in text


@pytest.mark.filterwarnings("ignore:The number of training batches .* is smaller than the logging interval")
def test_overhead_in_fit_measures_a_rate_per_group_against_torch_with_the_same_rates():
    import _overhead_in_fit as in_fit
    import _overhead_variants as variants

    callbacks, _ = variants._variant("clr.CyclicLR", 80, 10)
    assert callbacks[0].max_lr == pytest.approx([0.001 * k for k in range(1, 11)])
    assert len(set(callbacks[0].base_lr)) == 10
    scheduler = variants._variant("torch OneCycleLR", 80, 10)[1](torch.optim.SGD(
        [{"params": [torch.nn.Parameter(torch.zeros(1))]} for _ in range(10)], lr=0.1, momentum=0.9))
    assert len({g["max_lr"] for g in scheduler.optimizer.param_groups}) == 10
    assert in_fit.measure("clr.OneCycleLR", 10, steps=24, warmup=4, distinct=True)["median"] > 0
    cells = {}
    for v, m in zip(in_fit.PAIRED_VARIANTS, (2.0, 2.5, 2.5, 3.0, 5.0), strict=True):
        for key, scale in (("1", 1.0), ("10", 2.0), ("10/distinct", 4.0)):
            cells[f"{v}/{key}"] = {"median": m * scale, "q1": m * scale, "q3": m * scale, "logging": 0.5,
                                   "table": 0.25 * scale if key != "10" else 0.25}
    text = in_fit.in_fit_report({"runs": 1, "steps": 24, "warmup": 4, "groups": [1, 10], "distinct": 10,
                                 "cells": cells, "empty_us": 1.5})
    assert "| µs/step, 10 groups, a rate each | table fill, µs/step (1 group / 10, a rate each) |" in text
    # CyclicLR with a rate each: 8.0 + 1.0 (its table) against torch's 12.0 there; OneCycleLR 10.0 + 1.0 vs 20.0.
    assert ("| clr.CyclicLR | +2.00 [+2.00, +2.00] | +4.00 [+4.00, +4.00] | +8.00 [+8.00, +8.00] | +0.25 / +1.00 "
            "| +0.50 | ≤ 3 µs: met; ≤ torch (1): met; ≤ torch (10): met; ≤ torch (10, a rate each): met |") in text
    assert "| clr.CosineRestartsLR | +2.50 [+2.50, +2.50] | +5.00 [+5.00, +5.00] | +10.00 [+10.00, +10.00] |" in text


def test_periodic_work_is_spread_over_its_period():
    import _overhead_in_fit as in_fit

    differences = [1.0] * 20
    differences[9] = differences[19] = 21.0  # batches 9 and 19: the work of one batch in 10
    assert in_fit._periodic(differences, warmup=0, period=10, median=1.0) == 2.0
    assert in_fit._periodic(differences, warmup=0, period=7, median=1.0) == 0.0


def test_run_many_in_two_spawned_workers_matches_one_process(data):
    """The default runs seeds in spawned worker processes: specs and results must pickle, and a run must
    give the same curve there as in this process."""
    specs = [tta.RunSpec("constant", 1, 5, 0.1, "val"), tta.RunSpec("step", 1, 6, 0.1, "val")]
    parallel = tta.run_many(specs, replace(TINY, workers=2))
    assert [r.spec for r in parallel] == specs
    here = tta.run_one(specs[1], TINY)
    assert parallel[1].steps == here.steps and parallel[1].accuracy == here.accuracy


def test_sgdr_warmup_cycles_fill_the_run_after_the_warmup_and_a_run_uses_them():
    assert sgdr_warmup.first_cycle(190, 19, 3) == 24  # 19 + 24 + 48 + 96 = 187 of 190 steps
    assert sgdr_warmup.first_cycle(190, 0, 2) == 63
    accuracy, peak = sgdr_warmup.run(("mlp", 0, 2, 0.1, 0.03, None, 1.0))
    assert peak == 0.03 and 80.0 < accuracy <= 100.0


def test_sgdr_m_mul_runs_every_configuration_with_its_m_mul_and_saves_the_table(tmp_path, monkeypatch):
    built: list[float] = []

    class Recording(clr.CosineRestartsLR):
        def __init__(self, *args, **kwargs):
            built.append(kwargs["m_mul"])
            super().__init__(*args, **kwargs)

    from lightning_clr.tuner import suggest

    rule = dict(suggest.PEAK_FACTORS)
    used_factors: list[tuple[float, float]] = []
    sgdr_rule = sgdr_warmup.sgdr_rule

    def recording_rule(factors, reading):
        used_factors.append(factors)
        return sgdr_rule(factors, reading)

    monkeypatch.setattr(sgdr_warmup, "sgdr_rule", recording_rule)
    monkeypatch.setattr(clr, "CosineRestartsLR", Recording)
    text = sgdr_m_mul.main(["--families", "mlp", "--seeds", "1", "--workers", "1", "--output", str(tmp_path)])
    assert built == [m for m, _, _ in sgdr_m_mul.CONFIGS]
    assert used_factors == [(a, b) for _, a, b in sgdr_m_mul.CONFIGS]  # each run's own rule...
    assert rule == suggest.PEAK_FACTORS  # ...passed to its LRRangeTest: the built-in factors were never touched
    assert (tmp_path / "sgdr_m_mul.md").read_text().strip() == text.strip()
    row = next(line for line in text.splitlines() if line.startswith("| mlp |"))
    assert row.count("**") == 2 * len(sgdr_m_mul.CONFIGS) and "@0.0" in row  # each cell: median, and seed @ peak


def test_auto_guard_runs_1cycle_auto_with_a_default_guard_and_reports_its_rollbacks(tmp_path):
    callbacks, test = auto_runs._callbacks(auto_runs.Spec("mlp", auto_runs.GUARDED, 0), 100)
    assert [type(c) for c in callbacks] == [clr.LRRangeTest, clr.OneCycleLR, clr.DivergenceGuard]
    assert test is callbacks[0]
    assert auto_runs.GUARDED not in auto_runs.METHODS  # the headline table of auto_bounds.py stays unguarded
    text = auto_guard.main(["--families", "mlp", "--seeds", "1", "--tune-seeds", "1", "--workers", "1",
                            "--output", str(tmp_path)])
    assert (tmp_path / "auto_guard.md").read_text().strip() == text.strip()
    row = next(line for line in text.splitlines() if line.startswith("| mlp |")).split(" | ")
    assert row[6].strip().isdigit()  # the guarded seed's rollbacks were recorded
    assert row[7].startswith(("met", "missed")) and row[8].startswith(("met", "missed"))


def test_knee_noise_splits_the_variance_of_the_knee_between_and_within_initialisations():
    median, spread, between, within = knee_noise._split({(0, 0): 0.1, (0, 1): 0.1, (1, 0): 0.4, (1, 1): 0.4})
    assert (between, within, spread) == (1.0, 0.0, 4.0)
    assert median == pytest.approx(0.2)  # geometric
    assert knee_noise._split({(0, 0): 0.1, (0, 1): 0.4, (1, 0): 0.1, (1, 1): 0.4})[2:] == (0.0, 1.0)


def test_knee_noise_runs_read_the_knee_and_train_at_a_factor_of_it():
    knee, lrs, losses = knee_noise.run(("curve", "mlp", 0, 0))
    assert len(lrs) == len(losses) and lrs[0] < knee < lrs[-1]
    val, test, peak, rollbacks = knee_noise.run(("auto", "mlp", 0, 2.0, True))
    assert peak == 2.0 * knee  # the benchmark's seed 0 is initialisation 0 and batch order 0
    late_knee, late_lrs, _ = knee_noise.run(("curve", "mlp", 0, 0, 1e-4, 8.0))  # part 4: another sweep
    assert len(late_lrs) < len(lrs) / 2 and late_knee != knee
    assert 0 < val <= 100 and 0 < test <= 100 and rollbacks >= 0
    assert 0 < knee_noise.run(("peak", "mlp", 0, 1, 0.01)) <= 100


def test_knee_noise_report_trains_the_extreme_initialisations_and_every_factor(tmp_path, monkeypatch):
    def fake(item):
        kind, _, init, *rest = item
        if kind == "curve":  # part 4's sweeps (rest[1:]) read ten times the knee of the default one
            return 0.1 * (1 + init) * (1 + 0.01 * rest[0]) * (10 if rest[1:] else 1), [0.1] * (100 + len(rest)), []
        if kind == "peak":
            return 50.0 + init + 100 * rest[1]
        return 80.0 + init, 70.0 + init, rest[0] * 0.1, int(rest[1])

    monkeypatch.setattr(knee_noise, "run", fake)
    text = knee_noise.main(["--families", "convbase", "--inits", "5", "--orders", "2", "--seeds", "3", "--workers",
                            "1", "--sweeps", "1e-4:8", "--grids", "", "--output", str(tmp_path)])
    assert (tmp_path / "knee_noise.md").read_text().strip() == text.strip()
    lines = text.splitlines()
    assert any(line.startswith("| convbase | ") and "| x5.05 | 100% | 0% |" in line for line in lines)
    part2 = [line.split(" | ") for line in lines if line.startswith(("| 0 |", "| 1 |", "| 3 |", "| 4 |"))]
    assert [row[0] for row in part2] == ["| 0", "| 1", "| 3", "| 4"]  # the two lowest knees, then the two highest
    assert part2[0][2:] == ["67.8", "73.7", "81.6", "92.2 |"]  # 50 + init + 100 x peak
    part3 = [line.split(" | ") for line in lines if " x knee | " in line]
    assert [(row[0], row[1]) for row in part3] == [(f"| {x:g} x knee", g) for x in knee_noise.FACTORS
                                                   for g in ("no", "yes")]
    assert part3[1][2:4] == ["81.0 [80.0]", "71.0 [70.0]"] and part3[1][-1] == "3 |"  # medians [min]; rollbacks
    part4 = [line.split(" | ") for line in lines if " a decade" in line]
    assert [row[1:4] for row in part4] == [["1e-06 to 10, 16 a decade (default)", "101", "0.301"],
                                           ["0.0001 to 10, 8 a decade", "103", "3.01"]]
    assert part4[0][4:] == part4[1][4:] == ["x5.05", "100% |"]  # a factor moves no spread


def _fake_curve(knee_at: int) -> tuple[list[float], list[float]]:
    """A range-test curve on a quarter-decade grid whose loss falls steadily to step ``knee_at + 3``, then climbs."""
    lrs = [10 ** (k / 4 - 7) for k in range(40)]
    bottom = knee_at + 3
    return lrs, [max(2.0 - 0.05 * k, 2.0 - 0.05 * bottom) if k <= bottom else 2.0 - 0.05 * bottom + 0.2 * (k - bottom)
                 for k in range(40)]


def test_knee_noise_landmarks_score_each_landmark_with_the_factor_of_its_optimizer_family(monkeypatch):
    from lightning_clr.tuner.suggest import PEAK_FACTORS, read_curve

    grid = {1e-4: 10.0, 1e-3: 40.0, 1e-2: 80.0, 1e-1: 60.0, 1.0: 20.0}
    monkeypatch.setattr(knee_noise, "tune", lambda family, *args: (0.01, grid))
    curves = {"convbase": [_fake_curve(20), _fake_curve(24)], "mlp": [_fake_curve(18), _fake_curve(22)]}
    text = knee_noise.landmarks_table(curves, "a cache")
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[1:] for line in text.splitlines()[2:]}
    assert list(rows) == ["convbase", "mlp"] and len(rows["mlp"]) == len(knee_noise.LANDMARKS)
    knee_column = list(knee_noise.LANDMARKS).index("knee (90%)")
    for family, optimizer in (("convbase", "sgd"), ("mlp", "adam")):
        factor = PEAK_FACTORS[("one_cycle", optimizer)]
        assert rows[family][knee_column].startswith(f"{factor:.2g} x: ")  # the knee keeps the built-in factor
        gaps = sorted(knee_noise.grid_accuracy(grid, factor * read_curve(*c, optimizer=optimizer).knee_lr) - 80.0
                      for c in curves[family])
        assert f": {statistics.median(gaps):+.1f} / {gaps[0]:+.1f} (x" in rows[family][knee_column]
    # another landmark's factor puts its peaks' geometric mean on the knee rule's, over the family's curves
    lowest = [knee_noise._landmark(*c, 1.0) for c in curves["convbase"]]
    knees = [knee_noise._landmark(*c, 0.9) for c in curves["convbase"]]
    factor = math.exp(statistics.mean(math.log(k / m) for k, m in zip(knees, lowest, strict=True)))
    assert rows["convbase"][list(knee_noise.LANDMARKS).index("lowest loss")].startswith(f"{factor:.2g} x: ")
    assert knees == [read_curve(*c).knee_lr for c in curves["convbase"]]  # the 90% landmark is the knee
