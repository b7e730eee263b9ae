"""Previews: the numbers behind each figure, the figures themselves, the `lightning-clr preview` command and the
TensorBoard figure at train start."""

from __future__ import annotations

import io
import math
import os
import re
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl

import lightning_clr

matplotlib = pytest.importorskip("matplotlib")
pytest.importorskip("yaml")

from lightning_clr import CosineRestartsLR, CyclicLR, OneCycleLR  # noqa: E402
from lightning_clr.callbacks.preview_logger import SchedulePreviewLogger  # noqa: E402
from lightning_clr.cli import main  # noqa: E402
from lightning_clr.preview import format_table, preview_callback, preview_schedule  # noqa: E402
from lightning_clr.schedules import CosineRestartsSchedule, CyclicSchedule, LinearRamp, OneCycleSchedule  # noqa: E402
from tests.helpers import RecordingModel, trainer_kwargs  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[1] / "examples" / "configs"
PNG_HEADER = b"\x89PNG\r\n\x1a\n"


def _cosine(step: int, peak: float, start: int, length: int) -> float:
    return peak * 0.5 * (1 + math.cos(math.pi * (step - start) / length))


# ---------------------------------------------------------------------------------------------- numbers
def test_preview_of_cosine_restarts_lists_values_and_cycle_ends():
    preview = preview_schedule(CosineRestartsSchedule(peak=0.1, first_cycle=6, t_mul=2), 42)
    assert preview.name == "CosineRestartsSchedule" and preview.steps == 42 and len(preview.lr) == 42
    assert preview.cycle_ends == (6, 18, 42)
    assert preview.num_cycles == 3 and not preview.ends_mid_cycle
    expected = [_cosine(s, 0.1, 0, 6) for s in range(6)] + [_cosine(s, 0.1, 6, 12) for s in range(6, 18)]
    expected += [_cosine(s, 0.1, 18, 24) for s in range(18, 42)]
    assert preview.lr == pytest.approx(expected, rel=1e-12)
    assert preview.lr[0] == preview.lr[6] == preview.lr[18] == 0.1 == preview.max_lr
    assert preview.min_lr == pytest.approx(_cosine(41, 0.1, 18, 24))
    assert preview.momentum is None

    shorter = preview_schedule(CosineRestartsSchedule(peak=0.1, first_cycle=6, t_mul=2), 30)
    assert shorter.cycle_ends == (6, 18) and shorter.ends_mid_cycle
    assert preview_schedule(LinearRamp(0.0, 1.0, 5), 5).cycle_ends == ()
    assert preview_schedule(math.sqrt, 4, name="sqrt").lr == (0.0, 1.0, math.sqrt(2), math.sqrt(3))
    with pytest.raises(ValueError, match="steps to be a positive int"):
        preview_schedule(math.sqrt, 0)


@pytest.mark.parametrize("steps", [0, -3, 2.5, True, "10", None])
def test_previews_name_the_bad_run_length_and_what_is_valid(steps):
    """The shared int check (lightning_clr._checks.check_int): a bool or a float is no step count."""
    message = f"Expected steps to be a positive int number of optimizer steps, but got {steps!r}."
    with pytest.raises(ValueError, match=re.escape(message)):
        preview_schedule(math.sqrt, steps)
    with pytest.raises(ValueError, match=re.escape(message)):
        preview_callback(CyclicLR(base_lr=0.01, max_lr=0.1, step_size_up=5), steps)


def test_preview_of_callbacks_resolves_lengths_for_the_run():
    preview = preview_callback(CyclicLR(base_lr=0.01, max_lr=0.1, step_size_up="1 epochs"), 20, steps_per_epoch=5)
    assert preview.name == "CyclicLR" and preview.cycle_ends == (10, 20)
    assert preview.lr[:6] == pytest.approx([0.01, 0.028, 0.046, 0.064, 0.082, 0.1])
    assert preview.momentum[:6] == pytest.approx([0.9, 0.88, 0.86, 0.84, 0.82, 0.8])
    with pytest.raises(ValueError, match="steps in an epoch is unknown"):
        preview_callback(CyclicLR(base_lr=0.01, max_lr=0.1, step_size_up="1 epochs"), 20)

    whole = preview_callback(OneCycleLR(max_lr=0.1), 100)  # total_steps=None: the whole previewed run
    assert whole.cycle_ends == (100,)
    assert whole.lr == pytest.approx(OneCycleSchedule(0.004, 0.1, 0.004 / 1e4, 100).values(100))
    assert whole.lr[29] == pytest.approx(0.1) and whole.lr[-1] == pytest.approx(4e-7)
    assert whole.momentum[29] == pytest.approx(0.85)
    with pytest.raises(ValueError, match="'auto' bounds"):
        preview_callback(CosineRestartsLR(max_lr="auto", first_cycle=5), 10)


def test_format_table():
    previews = [
        preview_schedule(CosineRestartsSchedule(peak=0.1, first_cycle=6, t_mul=2), 30, name="SGDR"),
        preview_schedule(CyclicSchedule(0.001, 0.1, step_size_up=1), 20, momentum=CyclicSchedule(0.9, 0.8, 1),
                         name="CLR"),
    ]
    # SGDR: step 29 is 11 steps into the 24-step third cycle, 0.05 (1 + cos(11 pi / 24)); the minimum is
    # step 17, 0.05 (1 + cos(11 pi / 12)). CLR: 2-step cycles, step 19 is a peak.
    assert format_table(previews) == "\n".join([
        "schedule  steps  cycles    cycle ends            first lr  last lr  min lr    max lr  momentum",
        "--------  -----  --------  --------------------  --------  -------  --------  ------  --------",
        "SGDR      30     2 + part  6, 18                 0.1       0.05653  0.001704  0.1     -",
        "CLR       20     10        2, 4, 6, 8, ... (10)  0.001     0.1      0.001     0.1     0.8..0.9",
    ])


# ---------------------------------------------------------------------------------------------- figures
def _curve(ax: Any) -> tuple[list[float], list[float]]:
    line = ax.lines[0]
    return list(line.get_xdata()), list(line.get_ydata())


def _vertical_marks(ax: Any) -> list[float]:
    return [line.get_xdata()[0] for line in ax.lines[1:] if line.get_xdata()[0] == line.get_xdata()[1]]


def test_callback_plot_draws_rate_momentum_and_cycle_ends():
    figure = CyclicLR(base_lr=0.01, max_lr=0.1, step_size_up=5).plot(steps=20, steps_per_epoch=4)
    ax, twin = [a for a in figure.axes if a.get_ylabel()]
    assert ax.get_title() == "CyclicLR" and ax.get_ylabel() == "learning rate"
    x, y = _curve(ax)
    values = CyclicSchedule(0.01, 0.1, 5).values(20)
    assert x == list(range(21)) and y == pytest.approx(values + values[-1:])  # step k's value over [k, k + 1)
    assert ax.lines[0].get_drawstyle() == "steps-post"
    assert _vertical_marks(ax) == [10, 20]
    assert twin.get_ylabel() == "momentum"
    assert list(twin.lines[0].get_ydata()) == pytest.approx([*CyclicSchedule(0.9, 0.8, 5).values(20), 0.88])
    (epochs,) = ax.child_axes  # the epoch axis from steps_per_epoch, on top
    assert epochs.get_xlabel() == "epoch"
    figure.savefig(io.BytesIO(), format="png")  # a secondary axis takes its limits when drawn
    assert epochs.get_xlim() == pytest.approx((0, ax.get_xlim()[1] / 4))

    cosine = CosineRestartsLR(max_lr=0.1, first_cycle=6, t_mul=2).plot(steps=42)
    assert _vertical_marks(cosine.axes[0]) == [6, 18, 42]
    assert len([a for a in cosine.axes if a.get_ylabel() == "momentum"]) == 0  # the momentum is not cycled
    one = OneCycleSchedule(0.004, 0.1, 4e-7, 50).plot(50, log_scale=True)
    assert one.axes[0].get_yscale() == "log" and _vertical_marks(one.axes[0]) == [50]


def test_plot_writes_a_png(tmp_path):
    path = tmp_path / "schedule.png"
    returned = CosineRestartsSchedule(peak=0.1, first_cycle=100, t_mul=2).plot(700, path=path, title="SGDR")
    data = path.read_bytes()
    assert data[:8] == PNG_HEADER and len(data) > 20_000
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 300 and image.shape[1] > 800  # 8 x 3.5 inches at 120 dpi
    assert image.std() > 0.05  # not a blank canvas
    assert returned.axes[0].get_title() == "SGDR"


# ---------------------------------------------------------------------------------------------- the command
def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


SGDR_YAML = """
trainer:
  max_epochs: 6
  callbacks:
    - class_path: pytorch_lightning.callbacks.LearningRateMonitor
      init_args: {logging_interval: step}
    - class_path: lightning_clr.CosineRestartsLR
      init_args:
        max_lr: 1e-1
        first_cycle: 6
        t_mul: 2
"""


def test_preview_command_prints_the_table_and_writes_the_png(tmp_path, capsys):
    config = _write(tmp_path, SGDR_YAML)
    output = tmp_path / "schedule.png"
    assert main(["preview", "--config", str(config), "--steps", "42", "--output", str(output)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{config}: 42 optimizer steps (--steps)"
    assert out[1] == "ignored (not lightning_clr schedules): pytorch_lightning.callbacks.LearningRateMonitor"
    # The last step, 23 steps into the 24-step third cycle: 0.05 (1 + cos(23 pi / 24)) = 4.278e-04.
    assert out[4].split() == ["CosineRestartsLR", "42", "3", "6,", "18,", "42", "0.1", "4.278e-04", "4.278e-04",
                              "0.1", "-"]
    assert out[5] == f"wrote {output}"
    assert output.read_bytes()[:8] == PNG_HEADER and output.stat().st_size > 20_000

    # The length from the config's max_epochs and --steps-per-epoch, or from --epochs.
    assert main(["preview", "-c", str(config), "--steps-per-epoch", "7"]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith("42 optimizer steps (trainer.max_epochs 6 x 7, 6 epochs "
                                                           "of 7 steps)")
    assert main(["preview", "-c", str(config), "--epochs", "3", "--steps-per-epoch", "6"]) == 0
    assert capsys.readouterr().out.splitlines()[4].split()[:5] == ["CosineRestartsLR", "18", "2", "6,", "18"]


@pytest.mark.parametrize(("name", "row"), [
    ("cyclic.yaml", ["CyclicLR", "276", "3", "92,", "184,", "276", "0.01"]),
    ("cosine_restarts.yaml", ["CosineRestartsLR", "322", "3", "46,", "138,", "322", "0.3"]),
    ("one_cycle.yaml", ["OneCycleLR", "276", "1", "276", "0.012"]),
])
def test_preview_command_on_the_example_configs(name, row, tmp_path, capsys):
    # max_epochs from the config, 23 optimizer steps per epoch; cycle lengths in epochs resolve with it.
    output = tmp_path / "figure.png"
    assert main(["preview", "-c", str(CONFIGS / name), "--steps-per-epoch", "23", "-o", str(output)]) == 0
    assert capsys.readouterr().out.splitlines()[3].split()[:len(row)] == row
    assert output.read_bytes()[:8] == PNG_HEADER


def test_preview_command_several_callbacks_nested_schedules_and_overlay(tmp_path, capsys):
    config = _write(tmp_path, """
fit:
  trainer:
    max_steps: 40
    callbacks:
      - class_path: CyclicLR
        init_args: {base_lr: 1e-3, max_lr: 0.1, step_size_up: 5, optimizers: [0]}
      - class_path: lightning_clr.ScheduledLR
        init_args:
          lr: {class_path: lightning_clr.schedules.LinearRamp, init_args: {start: 0.0, end: 0.08, num_steps: 40}}
          optimizers: 1
""")
    assert main(["preview", "-c", str(config), "-o", str(tmp_path / "o.png"), "--overlay"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("40 optimizer steps (trainer.max_steps)")
    assert lines[3].split()[:9] == ["CyclicLR", "(optimizers", "[0])", "40", "4", "10,", "20,", "30,", "40"]
    assert lines[4].split() == ["ScheduledLR", "(optimizers", "[1])", "40", "0", "-", "0", "0.08", "0", "0.08", "-"]
    assert (tmp_path / "o.png").read_bytes()[:8] == PNG_HEADER


CALLBACK = "trainer:\n  callbacks:\n    - class_path: "


@pytest.mark.parametrize(("text", "args", "message"), [
    (CALLBACK + "pytorch_lightning.callbacks.LearningRateMonitor\n", ["--steps", "9"],
     "lists no lightning_clr schedule callback under trainer.callbacks (found only "
     "['pytorch_lightning.callbacks.LearningRateMonitor'])"),
    ("model: {}\n", ["--steps", "9"], "has no `trainer:` section"),
    (CALLBACK + "lightning_clr.CyclicLR\n      init_args: {base_lr: auto, max_lr: auto}\n",
     ["--steps", "9"], "CyclicLR has 'auto' values, which come from an LR range test"),
    (CALLBACK + "lightning_clr.CyclicLR\n      init_args: {base_lr: 0.1}\n",
     ["--steps", "9"], "missing 1 required positional argument: 'max_lr'"),
    (CALLBACK + "lightning_clr.CyclicLR\n      init_args: {base_lr: 0.1, max_lr: 0.01}\n",
     ["--steps", "9"], "Expected max_lr > base_lr"),
    (CALLBACK + "lightning_clr.NoSuchLR\n", ["--steps", "9"],
     "cannot import 'lightning_clr.NoSuchLR'"),
    (CALLBACK + "lightning_clr.CosineRestartsLR\n"
     "      init_args: {max_lr: 0.1, first_cycle: 2 epochs}\n", ["--steps", "9"], "Here: pass --steps-per-epoch S."),
    (SGDR_YAML, [], "The config sets max_epochs=6: add --steps-per-epoch S to use it."),
    (SGDR_YAML, ["--epochs", "2"], "--epochs needs --steps-per-epoch S"),
])
def test_preview_command_errors_are_clear(text, args, message, tmp_path, capsys):
    config = _write(tmp_path, text)
    assert main(["preview", "--config", str(config), *args]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("lightning-clr preview: error: ")
    assert message in captured.err
    assert captured.out == ""


def test_preview_command_usage_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as raised:
        main(["preview", "--config", "run.yaml", "--steps", "0"])
    assert raised.value.code == 2 and "expected a positive int, but got '0'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["preview", "--config", "run.yaml", "--steps", "5", "--epochs", "1"])  # one length only
    assert main(["preview", "--config", str(tmp_path / "missing.yaml"), "--steps", "5"]) == 2
    assert "Cannot read the config" in capsys.readouterr().err


def test_preview_output_without_matplotlib_is_one_line_naming_the_extra(tmp_path, capsys, monkeypatch):
    config = _write(tmp_path, SGDR_YAML)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    monkeypatch.delitem(sys.modules, "matplotlib.figure", raising=False)
    assert main(["preview", "--config", str(config), "--steps", "42", "-o", str(tmp_path / "s.png")]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"lightning-clr preview: error: Cannot write the figure {str(tmp_path / 's.png')!r}: drawing needs "
        'matplotlib, which is not installed. Install it with: pip install "lightning-clr[plot]"']
    assert captured.out == "" and not (tmp_path / "s.png").exists()
    assert main(["preview", "--config", str(config), "--steps", "42"]) == 0  # the table alone needs no matplotlib


def test_version_option_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as raised:
        main(["--version"])
    assert raised.value.code == 0
    assert capsys.readouterr().out == f"lightning-clr {lightning_clr.__version__}\n"
    root = str(Path(lightning_clr.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-m", "lightning_clr.cli", "--version"], capture_output=True, text=True,
                         timeout=120, env=env)
    assert (run.returncode, run.stdout, run.stderr) == (0, f"lightning-clr {lightning_clr.__version__}\n", "")


def test_console_script_is_declared():
    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts.get("lightning-clr") == "lightning_clr.cli:main"


# ---------------------------------------------------------------------------------------------- TensorBoard
def test_schedule_preview_logger_logs_the_built_schedule_to_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    from pytorch_lightning.loggers import TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = TensorBoardLogger(str(tmp_path), name="tb")
    kwargs = trainer_kwargs(tmp_path, max_epochs=2, logger=logger, log_every_n_steps=1)
    callbacks = [CosineRestartsLR(max_lr=0.1, first_cycle="1 epochs"), SchedulePreviewLogger()]
    pl.Trainer(callbacks=callbacks, **kwargs).fit(RecordingModel(num_batches=5))
    events = EventAccumulator(logger.log_dir, size_guidance={"images": 0})
    events.Reload()
    assert events.Tags()["images"] == ["lr-schedule"]
    (image,) = events.Images("lr-schedule")
    assert image.step == 0 and image.width > 500 and image.encoded_image_string[:8] == PNG_HEADER

    with pytest.raises(ValueError, match="steps to be None or a positive int"):
        SchedulePreviewLogger(steps=0)
