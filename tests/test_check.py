"""``lightning-clr check``: one line per problem in the lightning_clr part of a LightningCLI config."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightning_clr.check import check_config
from lightning_clr.cli import main

CONFIGS = Path(__file__).resolve().parents[1] / "examples" / "configs"


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return str(path)


def _callbacks(*entries: str) -> str:
    return "trainer:\n  max_epochs: 3\n  callbacks:\n" + "".join(entries)


@pytest.mark.parametrize("name", ["cyclic.yaml", "one_cycle.yaml", "cosine_restarts.yaml"])
def test_the_example_configs_are_clean(name, capsys):
    assert main(["check", str(CONFIGS / name)]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "ok (" in captured.out and "lightning_clr." in captured.out


def test_a_class_name_typo_is_one_line_with_did_you_mean(tmp_path, capsys):
    config = _write(tmp_path, _callbacks("    - class_path: lightning_clr.CycleLR\n"
                                         "      init_args: {base_lr: 0.01, max_lr: 0.1}\n"))
    assert main(["check", config]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"{config}: trainer.callbacks[0]: no class lightning_clr.CycleLR; "
                   "did you mean lightning_clr.CyclicLR?"]


def test_a_bad_length_says_what_is_valid_and_a_misspelt_unit_is_corrected(tmp_path, capsys):
    config = _write(tmp_path, _callbacks(
        "    - class_path: lightning_clr.CyclicLR\n"
        "      init_args: {base_lr: 0.01, max_lr: 0.1, step_size_up: 3 weeks}\n",
        "    - class_path: lightning_clr.CosineRestartsLR\n      init_args: {max_lr: 0.1, first_cycle: 2 epcohs}\n",
        "    - class_path: lightning_clr.OneCycleLR\n      init_args: {max_lr: 0.1, total_steps: 150%}\n",
    ))
    assert main(["check", config]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3
    assert "trainer.callbacks[0] (lightning_clr.CyclicLR): Expected step_size_up to be an int number of optimizer " \
           "steps or a string like '500 steps', '2.5 epochs' or '30%', but got '3 weeks'." in err[0]
    assert err[1].endswith("Did you mean first_cycle: '2 epochs'?")
    assert "total_steps" in err[2] and "at most 100%" in err[2]


def test_a_warmup_is_checked_as_a_length_and_zero_is_none(tmp_path, capsys):
    config = _write(tmp_path, _callbacks(
        "    - class_path: lightning_clr.CosineRestartsLR\n      init_args: {max_lr: 0.1, first_cycle: 9, warmup: 0}\n",
        "    - class_path: lightning_clr.CosineRestartsLR\n"
        "      init_args: {max_lr: 0.1, first_cycle: 9, warmup: 2 epcohs, optimizers: [1]}\n",
    ))
    assert main(["check", config]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "trainer.callbacks[1]" in err[0] and err[0].endswith("Did you mean warmup: '2 epochs'?")


def test_every_problem_gets_its_own_line(tmp_path):
    config = _write(tmp_path, _callbacks(
        "    - class_path: lightning_clr.OneCycleLR\n      init_args: {max_lr: 0.1, pct_strat: 0.3}\n",
        "    - class_path: lightning_clr.CyclicLR\n"
        "      init_args: {base_lr: 0.01, max_lr: 0.1, mode: triangle, gamma: 2.0}\n",
        "    - class_path: lightning_clr.CyclicLR\n      init_args: {base_lr: 0.01}\n",
        "    - class_path: lightning_clr.ScheduledLR\n"
        "      init_args:\n        lr: {class_path: lightning_clr.schedules.CyclicSchedul, init_args: {start: 0.1}}\n",
        "    - class_path: pytorch_lightning.callbacks.LearningRateMonitor\n",  # not ours: not checked
        "    - class_path: lighting_clr.CosineRestartsLR\n",
    ) + "lr_scheduler:\n  class_path: torch.optim.lr_scheduler.StepLR\n")
    problems, checked = check_config(config)
    text = [line.removeprefix(f"{config}: ") for line in problems]
    # The callbacks' own messages for a bad mode and gamma (their exact wording is the callbacks' business):
    prefix = "trainer.callbacks[1] (lightning_clr.CyclicLR): Expected "
    assert text[1].startswith(prefix + "mode") and "'triangle'" in text[1] and "'triangular2'" in text[1]
    assert text[2].startswith(prefix + "gamma") and "2.0" in text[2]
    text[1:3] = ["MODE", "GAMMA"]
    assert text == [
        "trainer.callbacks[0] (lightning_clr.OneCycleLR): unknown argument 'pct_strat'; did you mean pct_start?",
        "MODE",
        "GAMMA",
        "trainer.callbacks[2] (lightning_clr.CyclicLR): missing required argument max_lr (under init_args).",
        "trainer.callbacks[3].init_args.lr: no class lightning_clr.schedules.CyclicSchedul; did you mean "
        "lightning_clr.CyclicSchedule?",
        "trainer.callbacks[5]: cannot import the module 'lighting_clr' of lighting_clr.CosineRestartsLR; did you "
        "mean lightning_clr.CosineRestartsLR?",
        "lr_scheduler: a lightning_clr schedule callback already sets the rate at every step; remove the "
        "`lr_scheduler:` section (two schedulers would fight over the rate).",
    ]
    assert checked == ["lightning_clr.OneCycleLR", "lightning_clr.CyclicLR", "lightning_clr.CyclicLR",
                       "lightning_clr.ScheduledLR"]


def test_a_config_without_our_callbacks_is_clean_but_says_so(tmp_path, capsys):
    config = _write(tmp_path, _callbacks("    - class_path: pytorch_lightning.callbacks.LearningRateMonitor\n"))
    assert main(["check", config]) == 0
    assert "lists no lightning_clr callback (nothing to check)" in capsys.readouterr().out


def test_an_unreadable_config_is_one_line_exit_2(tmp_path, capsys):
    assert main(["check", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lightning-clr check: error: Cannot read the config") and err.count("\n") == 1
    assert main(["check", _write(tmp_path, "model: {}\n")]) == 2
    assert "has no `trainer:` section" in capsys.readouterr().err


def test_preview_into_a_missing_folder_is_one_line_exit_2(tmp_path, capsys):
    config = _write(tmp_path, _callbacks("    - class_path: lightning_clr.CyclicLR\n"
                                         "      init_args: {base_lr: 0.01, max_lr: 0.1, step_size_up: 5}\n"))
    output = tmp_path / "missing" / "dir" / "x.png"
    assert main(["preview", "-c", config, "--steps", "20", "-o", str(output)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert "the folder" in captured.err and "does not exist. Create it (mkdir -p)" in captured.err
    assert not output.parent.exists()  # not created behind the user's back
    assert main(["preview", "-c", config, "--steps", "20", "-o", str(tmp_path)]) == 2
    assert "it is a folder" in capsys.readouterr().err
    assert main(["preview", "-c", config, "--steps", "20", "-o", str(tmp_path / "x.nosuchformat")]) == 2
    assert "Use a .png, .svg or .pdf name." in capsys.readouterr().err


def test_preview_suggests_the_class_name_too(tmp_path, capsys):
    config = _write(tmp_path, _callbacks("    - class_path: lightning_clr.OneCycleRL\n"))
    assert main(["preview", "-c", config, "--steps", "20"]) == 2
    assert "did you mean lightning_clr.OneCycleLR?" in capsys.readouterr().err


def test_snapshots_with_checkpointing_disabled_is_one_line_naming_the_fix(tmp_path, capsys):
    config = _write(tmp_path, "trainer:\n  max_epochs: 3\n  enable_checkpointing: false\n  callbacks:\n"
                    "    - class_path: lightning_clr.CosineRestartsLR\n      init_args: {max_lr: 0.1, first_cycle: 4}\n"
                    "    - class_path: lightning_clr.SnapshotCheckpoint\n")
    assert main(["check", config]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{config}: trainer.enable_checkpointing: false cannot go with SnapshotCheckpoint (trainer.callbacks[1]), "
        "which is a Lightning checkpoint callback; remove `enable_checkpointing: false` (with a checkpoint callback "
        "given, Lightning adds no default ModelCheckpoint, so the snapshots are the only checkpoints)."]
    # The same config without the flag, or with it true, is clean.
    for flag in ("", "  enable_checkpointing: true\n"):
        clean = _write(tmp_path, f"trainer:\n  max_epochs: 3\n{flag}  callbacks:\n"
                       "    - class_path: lightning_clr.CosineRestartsLR\n"
                       "      init_args: {max_lr: 0.1, first_cycle: 4}\n"
                       "    - class_path: lightning_clr.SnapshotCheckpoint\n")
        assert check_config(clean)[0] == []
