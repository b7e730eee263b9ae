"""The ``lightning-clr`` command: check and preview the schedule of a LightningCLI config before training.

::

    lightning-clr check run.yaml
    lightning-clr preview --config run.yaml --steps 3000 --output schedule.png
    lightning-clr preview --config run.yaml --epochs 12 --steps-per-epoch 23 --output schedule.png

``check`` validates the lightning_clr part of the config (class names, argument names and values) and prints
one line per problem, exit status 2 when there is one (see :mod:`lightning_clr.check`).

It reads the YAML a LightningCLI run uses, builds the lightning_clr callbacks listed under
``trainer.callbacks`` (``class_path`` + ``init_args``; other callbacks are ignored), lists their schedules
over the run and prints a table (first/last rate, cycle count, cycle ends, min/max), and with ``--output``
draws them. It needs no model and no data. Reading the YAML and building its ``class_path`` objects is
:mod:`lightning_clr._cli_config`'s part.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from lightning_clr._cli_config import PreviewError, _import_class, _instantiate, _read_config, _trainer_section

__all__ = ["PreviewError", "load_schedule_callbacks", "main"]


# ---------------------------------------------------------------------------------------------- callbacks
def load_schedule_callbacks(path: str) -> tuple[list[tuple[str, Any]], list[str], dict[str, Any]]:
    """Builds the lightning_clr schedule callbacks of a LightningCLI config.

    Args:
        path: the YAML file.

    Returns:
        ``(callbacks, ignored, trainer_section)``: ``(label, callback)`` pairs in config order, the class
        paths of the other callbacks, and the ``trainer:`` mapping (for ``max_steps`` / ``max_epochs``).

    Raises:
        PreviewError: if the file cannot be read, has no ``trainer.callbacks``, a lightning_clr callback
            cannot be built, or none is listed.
    """
    from lightning_clr.callbacks.base import ScheduleCallback

    config = _read_config(path)
    trainer = _trainer_section(config, path)
    entries = trainer.get("callbacks") or []
    if isinstance(entries, (dict, str)):
        entries = [entries]
    callbacks: list[tuple[str, Any]] = []
    ignored: list[str] = []
    for position, entry in enumerate(entries):
        entry = {"class_path": entry} if isinstance(entry, str) else entry
        if not isinstance(entry, dict) or "class_path" not in entry:
            raise PreviewError(f"trainer.callbacks[{position}] in {path!r}: expected a mapping with `class_path` "
                               f"(and `init_args`), but got {entry!r}.")
        class_path = str(entry["class_path"])
        is_ours = class_path.startswith("lightning_clr.") or "." not in class_path
        try:
            cls = _import_class(class_path)
        except ImportError as error:
            if is_ours:
                from lightning_clr.check import _did_you_mean, _public_names

                hint = _did_you_mean(class_path.rpartition(".")[2], _public_names(), "lightning_clr.")
                raise PreviewError(f"trainer.callbacks[{position}]: cannot import {class_path!r} ({error}){hint or '.'}"
                                   ) from error
            ignored.append(class_path)
            continue
        if not (isinstance(cls, type) and issubclass(cls, ScheduleCallback)):
            ignored.append(class_path)
            continue
        callback = _instantiate(entry, f"trainer.callbacks[{position}]")
        name = cls.__name__ if callback.optimizers is None else f"{cls.__name__} (optimizers {callback.optimizers})"
        callbacks.append((name, callback))
    if not callbacks:
        raise PreviewError(
            f"The config {path!r} lists no lightning_clr schedule callback under trainer.callbacks"
            + (f" (found only {ignored})" if ignored else "")
            + ". Add one, e.g.\n  trainer:\n    callbacks:\n      - class_path: lightning_clr.CyclicLR\n"
            "        init_args: {base_lr: 0.001, max_lr: 0.1, step_size_up: 2000}"
        )
    names = [name for name, _ in callbacks]
    labels = [f"{name} #{names[:i + 1].count(name)}" if names.count(name) > 1 else name
              for i, name in enumerate(names)]
    return [(label, cb) for label, (_, cb) in zip(labels, callbacks, strict=True)], ignored, trainer


# ---------------------------------------------------------------------------------------------- run length
def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        return None
    return int(value)


def resolve_run_length(args: argparse.Namespace, trainer: dict[str, Any]) -> tuple[int, float | None, str]:
    """``(total optimizer steps, steps per epoch or None, where the length came from)``.

    Raises:
        PreviewError: if the length is not given and the config does not tell it.
    """
    per_epoch = args.steps_per_epoch
    if args.steps is not None:
        return args.steps, per_epoch, "--steps"
    if args.epochs is not None:
        if per_epoch is None:
            raise PreviewError("--epochs needs --steps-per-epoch S (optimizer steps per epoch: batches per epoch "
                               "divided by accumulate_grad_batches).")
        return max(1, math.ceil(args.epochs * per_epoch)), per_epoch, f"--epochs {args.epochs:g} x {per_epoch:g}"
    max_steps = _positive_int(trainer.get("max_steps"))
    if max_steps is not None:
        return max_steps, per_epoch, "trainer.max_steps"
    max_epochs = _positive_int(trainer.get("max_epochs"))
    if max_epochs is not None and per_epoch is not None:
        return max(1, math.ceil(max_epochs * per_epoch)), per_epoch, f"trainer.max_epochs {max_epochs} x {per_epoch:g}"
    hint = (f" The config sets max_epochs={max_epochs}: add --steps-per-epoch S to use it." if max_epochs else "")
    raise PreviewError("Give the run's length: --steps N (optimizer steps), or --epochs E with --steps-per-epoch S."
                       + hint)


# ---------------------------------------------------------------------------------------------- preview
def _preview(args: argparse.Namespace, out: TextIO) -> None:
    from lightning_clr.preview import format_table, preview_callback

    callbacks, ignored, trainer = load_schedule_callbacks(args.config)
    steps, per_epoch, source = resolve_run_length(args, trainer)
    previews = []
    for label, callback in callbacks:
        try:
            previews.append(preview_callback(callback, steps, steps_per_epoch=per_epoch, name=label))
        except ValueError as error:
            if callback._needs_range_test():
                raise PreviewError(
                    f"{label} has 'auto' values, which come from an LR range test (LRRangeTest) on the model and "
                    "data at fit start; a preview has neither. Run the range test once (e.g. "
                    "`lightning_clr.lr_range_test(model, datamodule=dm)`), put its suggested base_lr / max_lr / "
                    "step_size_up in the config, and preview again."
                ) from error
            message = str(error)
            if "steps in an epoch" in message:
                message += " Here: pass --steps-per-epoch S."
            raise PreviewError(f"{label}: {message}") from error
    epochs = f", {steps / per_epoch:g} epochs of {per_epoch:g} steps" if per_epoch else ""
    print(f"{args.config}: {steps} optimizer steps ({source}{epochs})", file=out)
    if ignored:
        print(f"ignored (not lightning_clr schedules): {', '.join(ignored)}", file=out)
    print(format_table(previews), file=out)
    if args.output is not None:
        from lightning_clr.plotting import plot_previews

        try:
            plot_previews(previews, path=args.output, overlay=args.overlay, log_scale=args.log_scale)
        except OSError as error:
            raise PreviewError(f"Cannot write the figure {args.output!r}: {error.strerror or error}.") from error
        except ValueError as error:  # matplotlib: an unknown format
            raise PreviewError(f"Cannot write the figure {args.output!r}: {error} Use a .png, .svg or .pdf "
                               "name.") from error
        print(f"wrote {args.output}", file=out)


def _check_output(path: str | None) -> None:
    """Fails early, before any work, when the figure cannot be written: matplotlib must be installed, and the
    folder must exist (it is not created, so that a mistyped folder is not silently made)."""
    if path is None:
        return
    try:
        import matplotlib.figure  # noqa: F401
    except ImportError as error:
        raise PreviewError(f"Cannot write the figure {path!r}: drawing needs matplotlib, which is not installed. "
                           'Install it with: pip install "lightning-clr[plot]"') from error
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise PreviewError(f"Cannot write the figure {path!r}: the folder {os.path.dirname(path) or folder!r} does "
                           "not exist. Create it (mkdir -p) or choose another --output.")
    if os.path.isdir(path):
        raise PreviewError(f"Cannot write the figure {path!r}: it is a folder; give a file name such as "
                           f"{os.path.join(path, 'schedule.png')!r}.")


def _check(args: argparse.Namespace, out: TextIO) -> int:
    from lightning_clr.check import check_config

    problems, checked = check_config(args.config)
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        return 2
    if checked:
        print(f"{args.config}: ok ({len(checked)} lightning_clr object{'s' if len(checked) > 1 else ''} checked: "
              f"{', '.join(checked)})", file=out)
    else:
        print(f"{args.config}: ok, but trainer.callbacks lists no lightning_clr callback (nothing to check).",
              file=out)
    return 0


def _parser() -> argparse.ArgumentParser:
    from lightning_clr import __version__

    parser = argparse.ArgumentParser(prog="lightning-clr", description="Tools for lightning_clr schedules.")
    parser.add_argument("--version", action="version", version=f"lightning-clr {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    preview = commands.add_parser(
        "preview",
        help="print and draw the schedule of a LightningCLI config, before training",
        description="Builds the lightning_clr callbacks of a LightningCLI YAML (trainer.callbacks) and lists "
                    "their schedules over the run: a table of first/last/min/max rates and cycle ends, and a "
                    "figure with --output. Needs no model and no data.",
    )
    preview.add_argument("--config", "-c", required=True, help="the LightningCLI YAML file")
    length = preview.add_mutually_exclusive_group()
    length.add_argument("--steps", type=_positive_int_arg, help="the run's length in optimizer steps")
    length.add_argument("--epochs", type=_positive_float_arg,
                        help="the run's length in epochs (with --steps-per-epoch)")
    preview.add_argument("--steps-per-epoch", type=_positive_float_arg, default=None,
                         help="optimizer steps per epoch (batches / accumulate_grad_batches); needed for lengths "
                              "in epochs, and with the config's max_epochs when --steps/--epochs are not given")
    preview.add_argument("--output", "-o", default=None, help="write the figure here (.png, .svg or .pdf)")
    preview.add_argument("--overlay", action="store_true", help="draw every schedule on one panel")
    preview.add_argument("--log-scale", action="store_true", help="a logarithmic rate axis")
    check = commands.add_parser(
        "check",
        help="validate the lightning_clr part of a LightningCLI config: one line per problem",
        description="Checks every lightning_clr class_path under trainer.callbacks (nested ones too): the class "
                    "exists (with a 'did you mean'), its init_args are known arguments, the values are valid, "
                    "and no lr_scheduler is configured next to a schedule callback. Prints one line per problem "
                    "and exits with status 2 if there is one, 0 if the config is clean.",
    )
    check.add_argument("config", help="the LightningCLI YAML file")
    return parser


def _positive_int_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive int, but got {text!r}")
    return value


def _positive_float_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, but got {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the ``lightning-clr`` command; returns the exit status (0, or 2 with a message on stderr)."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            return _check(args, sys.stdout)
        _check_output(args.output)
        _preview(args, sys.stdout)
    except PreviewError as error:
        print(f"lightning-clr {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
