"""LightningCLI: the callbacks configured from YAML and from the command line, their help, type coercion,
early rejection of bad values, the example CLI with its ready configs, and the --lr_scheduler conflict."""

from __future__ import annotations

import csv
import importlib.util
import inspect
import re
import sys
import typing
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("jsonargparse")
pytest.importorskip("sklearn")

import pytorch_lightning as pl

from lightning_clr import CosineRestartsLR, CyclicLR, OneCycleLR, WarmupStableDecayLR
from lightning_clr.schedules import CosineRestartsSchedule, CyclicSchedule, OneCycleSchedule, WarmupStableDecaySchedule

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CONFIGS = EXAMPLES / "configs"


def _load_example_cli() -> Any:
    spec = importlib.util.spec_from_file_location("lightning_clr_example_cli", EXAMPLES / "cli.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


example_cli = _load_example_cli()


@pytest.fixture(autouse=True)
def _no_pytest_argv(monkeypatch):
    """LightningCLI warns when it gets ``args`` while ``sys.argv`` holds pytest's own arguments."""
    monkeypatch.setattr(sys, "argv", ["cli.py"])


def quiet(tmp_path: Path) -> list[str]:
    """Command-line arguments for a fast, quiet, CPU-only run writing into tmp_path."""
    return [
        f"--trainer.default_root_dir={tmp_path}",
        "--trainer.accelerator=cpu",
        "--trainer.devices=1",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        "--trainer.enable_checkpointing=false",
        "--trainer.num_sanity_val_steps=0",
        "--trainer.limit_val_batches=1",
    ]


def schedule_callbacks(trainer: pl.Trainer) -> list[Any]:
    kinds = (CyclicLR, OneCycleLR, CosineRestartsLR, WarmupStableDecayLR)
    return [cb for cb in trainer.callbacks if isinstance(cb, kinds)]


def logged(path: Path, column: str) -> list[tuple[int, float]]:
    with path.open() as handle:
        return [(int(row["step"]), float(row[column])) for row in csv.DictReader(handle) if row.get(column)]


# ---------------------------------------------------------------------------------------------------- YAML
@pytest.mark.parametrize(
    ("config", "expected_type", "expected_schedule"),
    [
        # 3 batches per epoch: "2 epochs" resolves to 6 optimizer steps.
        ("cyclic.yaml", CyclicLR, CyclicSchedule(0.01, 0.3, 6, None, "triangular2")),
        # 2 epochs x 3 batches: total_steps=None spans the whole fit, 6 steps.
        ("one_cycle.yaml", OneCycleLR, OneCycleSchedule(0.3 / 25, 0.3, 0.3 / 25 / 1e4, 6, 0.3, "cos")),
        # "2 epochs" -> first_cycle 6.
        ("cosine_restarts.yaml", CosineRestartsLR, CosineRestartsSchedule(0.3, 6, 2.0, 1.0, 0.0)),
    ],
)
def test_example_yaml_configs_train_with_the_schedule(tmp_path, config, expected_type, expected_schedule):
    cli = example_cli.cli_main([
        "fit", "--config", str(CONFIGS / config), *quiet(tmp_path),
        "--trainer.max_epochs=2", "--trainer.limit_train_batches=3",
        f"--trainer.logger.init_args.save_dir={tmp_path}",
    ])
    (callback,) = schedule_callbacks(cli.trainer)
    assert type(callback) is expected_type
    assert cli.trainer.global_step == 6
    # The rate logged at each of the 6 steps is the schedule's (the callback logs what it applied).
    metrics = Path(cli.trainer.logger.log_dir) / "metrics.csv"
    rates = logged(metrics, "lr-clr-SGD")
    assert [step for step, _ in rates] == list(range(6))
    assert [rate for _, rate in rates] == pytest.approx(expected_schedule.values(6), rel=1e-12)
    # The optimizer holds the value for the next (7th) step.
    assert cli.model.optimizers().param_groups[0]["lr"] == pytest.approx(expected_schedule(6), rel=1e-12)
    # The model trained: validation accuracy was measured and logged.
    assert logged(metrics, "val_acc")


def test_example_configs_cover_every_schedule_and_parse_without_training(tmp_path, monkeypatch):
    fits: list[Any] = []
    monkeypatch.setattr(pl.Trainer, "fit", lambda self, *a, **k: fits.append(a))
    seen = {}
    for config in sorted(CONFIGS.glob("*.yaml")):
        cli = example_cli.cli_main(["--config", str(config), *quiet(tmp_path)], run=False)
        (callback,) = schedule_callbacks(cli.trainer)
        seen[config.name] = type(callback)
    assert seen == {"cosine_restarts.yaml": CosineRestartsLR, "cyclic.yaml": CyclicLR, "one_cycle.yaml": OneCycleLR,
                    "wsd.yaml": WarmupStableDecayLR}
    assert fits == []


def test_warmup_stable_decay_from_yaml_trains_with_its_plan(tmp_path):
    config = tmp_path / "wsd.yaml"
    config.write_text(
        "trainer:\n"
        "  max_steps: 10\n"
        "  logger: false\n"
        "  callbacks:\n"
        "    - class_path: lightning_clr.WarmupStableDecayLR\n"
        "      init_args:\n"
        "        max_lr: 0.2\n"
        "        warmup: 2\n"
        "        decay: 30%\n"
        "        decay_shape: linear\n"
    )
    cli = example_cli.cli_main(["fit", "--config", str(config), *quiet(tmp_path)])
    (callback,) = [cb for cb in cli.trainer.callbacks if isinstance(cb, WarmupStableDecayLR)]
    assert callback.step_schedule() == WarmupStableDecaySchedule(0.2, 2, 5, 3, decay_shape="linear")
    assert cli.model.optimizers().param_groups[0]["lr"] == 0.0  # the floor, after the cool-down


def test_yaml_class_path_init_args(tmp_path):
    config = tmp_path / "clr.yaml"
    config.write_text(
        "trainer:\n"
        "  max_steps: 4\n"
        "  logger: false\n"
        "  callbacks:\n"
        "    - class_path: lightning_clr.CyclicLR\n"
        "      init_args:\n"
        "        base_lr: 0.02\n"
        "        max_lr: 0.2\n"
        "        step_size_up: 2\n"
        "        mode: exp_range\n"
        "        gamma: 0.9\n"
        "        cycle_momentum: false\n"
    )
    cli = example_cli.cli_main(["fit", "--config", str(config), *quiet(tmp_path)])
    (callback,) = schedule_callbacks(cli.trainer)
    assert (callback.base_lr, callback.max_lr, callback.step_size_up, callback.mode, callback.gamma) == (
        0.02, 0.2, 2, "exp_range", 0.9)
    assert callback.cycle_momentum is False
    expected = CyclicSchedule(0.02, 0.2, 2, None, "exp_range", 0.9)
    group = cli.model.optimizers().param_groups[0]
    assert group["lr"] == pytest.approx(expected(4), rel=1e-12)
    assert group["momentum"] == 0.9  # not cycled: the model's own value


# ---------------------------------------------------------------------------------------------------- command line
@pytest.mark.filterwarnings("ignore:.*longer than the whole fit:UserWarning")  # a short fit on purpose
def test_command_line_append_and_nested_arguments(tmp_path):
    cli = example_cli.cli_main([
        "fit", *quiet(tmp_path), "--trainer.logger=false", "--trainer.max_steps=5",
        "--trainer.callbacks+=lightning_clr.OneCycleLR", "--trainer.callbacks.max_lr=0.3",
        "--trainer.callbacks.total_steps=10",
    ])
    (callback,) = schedule_callbacks(cli.trainer)
    assert isinstance(callback, OneCycleLR)
    assert callback.max_lr == 0.3 and callback.total_steps == 10
    expected = OneCycleSchedule(0.3 / 25, 0.3, 0.3 / 25 / 1e4, 10, 0.3, "cos")
    assert cli.model.optimizers().param_groups[0]["lr"] == pytest.approx(expected(5), rel=1e-12)


@pytest.mark.parametrize(
    ("callback", "length", "text", "expected"),
    [
        ("CyclicLR", "step_size_up", "500", 500),
        ("CyclicLR", "step_size_up", "2 epochs", "2 epochs"),
        ("CyclicLR", "step_size_down", "300", 300),
        ("CyclicLR", "step_size_up", "25%", "25%"),
        ("OneCycleLR", "total_steps", "500", 500),
        ("OneCycleLR", "total_steps", "1.5 epochs", "1.5 epochs"),
        ("CosineRestartsLR", "first_cycle", "500", 500),
        ("CosineRestartsLR", "first_cycle", "3 epochs", "3 epochs"),
    ],
)
def test_command_line_lengths_keep_their_type(tmp_path, callback, length, text, expected):
    bounds = ["--trainer.callbacks.max_lr=0.1"]
    if callback == "CyclicLR":
        bounds.append("--trainer.callbacks.base_lr=0.01")
    if callback == "CosineRestartsLR" and length != "first_cycle":
        bounds.append("--trainer.callbacks.first_cycle=10")
    cli = example_cli.cli_main(
        [*quiet(tmp_path), f"--trainer.callbacks+=lightning_clr.{callback}", *bounds,
         f"--trainer.callbacks.{length}={text}"],
        run=False,
    )
    (instance,) = schedule_callbacks(cli.trainer)
    value = getattr(instance, length)
    assert value == expected
    assert type(value) is type(expected)  # 500 is an int, never the string '500' nor the float 500.0


@pytest.mark.parametrize("cls", [CyclicLR, OneCycleLR, CosineRestartsLR])
def test_signatures_are_fully_typed_with_int_before_str(cls):
    hints = typing.get_type_hints(cls.__init__)
    for name, parameter in inspect.signature(cls.__init__).parameters.items():
        if name == "self":
            continue
        assert parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD, f"{cls.__name__}.{name}: no *args/**kwargs"
        assert name in hints, f"{cls.__name__}.{name} has no type hint: LightningCLI would accept anything"
        args = typing.get_args(hints[name])
        if str in args and int in args:
            assert args.index(int) < args.index(str), f"{cls.__name__}.{name}: {hints[name]} turns 500 into '500'"


def _documented_arguments(cls: type) -> dict[str, str]:
    """The first words of each ``Args:`` entry of the class docstring."""
    doc = inspect.getdoc(cls)
    section = doc.split("Args:")[1].split("Raises:")[0]
    entries = re.findall(r"^    (\w+): (.+)$", section, flags=re.MULTILINE)
    return {name: " ".join(text.split()[:4]) for name, text in entries}


@pytest.mark.parametrize("cls", [CyclicLR, OneCycleLR, CosineRestartsLR])
def test_callback_help_lists_every_argument_with_type_default_and_docstring(tmp_path, capsys, cls):
    with pytest.raises(SystemExit) as exit_info:
        example_cli.cli_main(["fit", "--trainer.callbacks.help", f"lightning_clr.{cls.__name__}"])
    assert exit_info.value.code == 0
    output = capsys.readouterr().out
    text = " ".join(output.split("Help for --trainer.callbacks.help", 1)[1].split())  # help wraps lines
    documented = _documented_arguments(cls)
    parameters = [p for name, p in inspect.signature(cls.__init__).parameters.items() if name != "self"]
    assert set(documented) == {p.name for p in parameters}, "every argument is documented in Args:"
    for parameter in parameters:
        match = re.search(rf"--trainer\.callbacks\.{parameter.name} [A-Z_{{]" + r".*?\((.*?)\)(?= --|$)", text)
        assert match, f"--trainer.callbacks.{parameter.name} missing from the help"
        described = match.group(0)
        assert documented[parameter.name] in described, f"{parameter.name}: docstring text missing"
        assert "type: " in described
        if parameter.default is inspect.Parameter.empty:
            assert "required" in described
        else:
            default = "null" if parameter.default is None else str(parameter.default)
            assert f"default: {default}" in described, f"{parameter.name}: default {default} missing"
    if cls is CyclicLR:
        assert "--trainer.callbacks.step_size_up STEP_SIZE_UP" in text
        # int before str, so that 500 stays an int (written Union[...] or PEP 604, as the annotation is):
        assert re.search(r"type: (Union\[int, float, str\]|int \| float \| str), default: 2000", text)
        assert "{triangular,triangular2,exp_range}" in text


@pytest.mark.parametrize("name", ["LRRangeTest", "SnapshotCheckpoint", "CyclicLR", "OneCycleLR", "CosineRestartsLR",
                                  "ScheduledLR", "WarmupStableDecayLR", "DivergenceGuard", "SchedulePreviewLogger"])
def test_callback_help_shows_no_restructuredtext_markup(name, capsys):
    """The Args: text is printed as it is by LightningCLI: plain backticks read well there and in the docs,
    reST roles (:class:`~...`) and double backticks do not."""
    with pytest.raises(SystemExit) as exit_info:
        example_cli.cli_main(["fit", "--trainer.callbacks.help", f"lightning_clr.{name}"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out.split("Help for --trainer.callbacks.help", 1)[1]
    assert "--trainer.callbacks.num_steps" in text or name != "LRRangeTest"
    markup = re.findall(r"``[^`]*``|:\w+:`[^`]*`", text)
    assert markup == [], f"reST markup in the help of {name}: {markup}"


# ---------------------------------------------------------------------------------------------------- rejections
def test_bad_mode_is_rejected_before_training_listing_valid_modes(tmp_path, capsys, monkeypatch):
    fits: list[Any] = []
    monkeypatch.setattr(pl.Trainer, "fit", lambda self, *a, **k: fits.append(a))
    with pytest.raises(SystemExit) as exit_info:
        example_cli.cli_main([
            "fit", *quiet(tmp_path), "--trainer.callbacks+=lightning_clr.CyclicLR",
            "--trainer.callbacks.base_lr=0.01", "--trainer.callbacks.max_lr=0.1", "--trainer.callbacks.mode=triangle",
        ])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "Parser key \"mode\"" in error
    assert "'triangular', 'triangular2', 'exp_range'" in error
    assert "triangle" in error
    assert fits == []


def test_bad_mode_in_yaml_is_rejected_before_training(tmp_path, capsys, monkeypatch):
    fits: list[Any] = []
    monkeypatch.setattr(pl.Trainer, "fit", lambda self, *a, **k: fits.append(a))
    config = tmp_path / "bad.yaml"
    config.write_text(
        "trainer:\n  callbacks:\n    - class_path: lightning_clr.CyclicLR\n"
        "      init_args: {base_lr: 0.01, max_lr: 0.1, mode: exp}\n"
    )
    with pytest.raises(SystemExit):
        example_cli.cli_main(["fit", "--config", str(config), *quiet(tmp_path)])
    assert "'triangular', 'triangular2', 'exp_range'" in capsys.readouterr().err
    assert fits == []


def test_bad_length_is_rejected_before_training(tmp_path, monkeypatch):
    fits: list[Any] = []
    monkeypatch.setattr(pl.Trainer, "fit", lambda self, *a, **k: fits.append(a))
    with pytest.raises(ValueError, match=r"Expected step_size_up to be .*'2\.5 epochs'.* but got '2 epoch s'"):
        example_cli.cli_main([
            "fit", *quiet(tmp_path), "--trainer.callbacks+=lightning_clr.CyclicLR",
            "--trainer.callbacks.base_lr=0.01", "--trainer.callbacks.max_lr=0.1",
            "--trainer.callbacks.step_size_up=2 epoch s",
        ])
    assert fits == []


def test_cli_lr_scheduler_with_a_clr_callback_is_a_clear_error_not_double_scheduling(tmp_path, monkeypatch):
    batches: list[int] = []
    monkeypatch.setattr(example_cli.DigitsClassifier, "on_train_batch_start",
                        lambda self, batch, batch_idx: batches.append(batch_idx), raising=False)
    with pytest.raises(ValueError, match=r"LightningCLI's --lr_scheduler\) returns the LR scheduler StepLR "
                                         r"for optimizer 0 \(SGD\), which CyclicLR also drives"):
        example_cli.cli_main([
            "fit", *quiet(tmp_path), "--trainer.logger=false", "--trainer.max_steps=3",
            "--optimizer=SGD", "--optimizer.lr=0.1",
            "--lr_scheduler=StepLR", "--lr_scheduler.step_size=1",
            "--trainer.callbacks+=lightning_clr.CyclicLR",
            "--trainer.callbacks.base_lr=0.01", "--trainer.callbacks.max_lr=0.1",
        ])
    assert batches == []  # raised at fit start: not a single batch ran


@pytest.mark.filterwarnings("ignore:.*longer than the whole fit:UserWarning")  # a short fit on purpose
def test_cli_optimizer_without_lr_scheduler_is_driven_by_the_callback(tmp_path):
    cli = example_cli.cli_main([
        "fit", *quiet(tmp_path), "--trainer.logger=false", "--trainer.max_steps=3",
        "--optimizer=Adam", "--optimizer.lr=0.5",
        "--trainer.callbacks+=lightning_clr.CyclicLR", "--trainer.callbacks.base_lr=0.01",
        "--trainer.callbacks.max_lr=0.1", "--trainer.callbacks.step_size_up=4",
    ])
    group = cli.trainer.optimizers[0].param_groups[0]
    assert type(cli.trainer.optimizers[0]).__name__ == "Adam"
    assert group["lr"] == pytest.approx(CyclicSchedule(0.01, 0.1, 4)(3), rel=1e-12)
    assert group["betas"][0] == pytest.approx(CyclicSchedule(0.9, 0.8, 4)(3), rel=1e-12)
