"""The LR range test on scikit-learn's digits: read the cycle's bounds off the loss, then train with them.

One command, no download, CPU, well under a minute::

    python examples/range_test.py                         # CyclicLR with base_lr/max_lr/step_size_up "auto"
    python examples/range_test.py --schedule one_cycle    # OneCycleLR with max_lr "auto"
    python examples/range_test.py --compare               # also train with hand-picked bounds

Step 1 runs the test alone (``lr_range_test``: no training) and saves its figure. Step 2 trains with an
``LRRangeTest`` callback on the Trainer and ``"auto"`` bounds: the test runs at train start, puts the model
back as it was, and the schedule takes its bounds from it. The figure also goes to TensorBoard.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.loggers import TensorBoardLogger

sys.path.insert(0, str(Path(__file__).resolve().parent))
from digits import DigitsClassifier, DigitsDataModule
from quiet import quiet_lightning

from lightning_clr import CyclicLR, LRRangeTest, OneCycleLR, lr_range_test

#: Bounds picked by hand from a small grid on this data set, for --compare.
HAND_PICKED = {"cyclic": dict(base_lr=0.1, max_lr=1.0, step_size_up="4 epochs"), "one_cycle": dict(max_lr=0.3)}


def make_schedule(name: str, auto: bool) -> pl.Callback:
    """The schedule callback with ``"auto"`` bounds or with the hand-picked ones."""
    if name == "cyclic":
        kwargs = dict(base_lr="auto", max_lr="auto", step_size_up="auto") if auto else HAND_PICKED[name]
        return CyclicLR(**kwargs)
    if name == "one_cycle":
        return OneCycleLR(**(dict(max_lr="auto") if auto else HAND_PICKED[name]))
    raise ValueError(f"Expected schedule to be 'cyclic' or 'one_cycle', but got {name!r}.")


def train(schedule: str, auto: bool, epochs: int, seed: int, output: Path) -> tuple[float, LRRangeTest | None]:
    """Trains the digits classifier under ``schedule`` and returns its test accuracy and the range test."""
    pl.seed_everything(seed, verbose=False)
    test = LRRangeTest(verbose=False) if auto else None  # main() prints the bounds it gave, once
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=TensorBoardLogger(output, name="auto" if auto else "hand_picked"),
        callbacks=[*([test] if test else []), make_schedule(schedule, auto)],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=5,  # an epoch is 17 steps: log within it (the default 50 would warn)
    )
    model, data = DigitsClassifier(hidden=64), DigitsDataModule(batch_size=64, seed=seed)
    trainer.fit(model, datamodule=data)
    return float(trainer.test(model, datamodule=data, verbose=False)[0]["test_acc"]), test


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedule", default="cyclic", choices=["cyclic", "one_cycle"])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compare", action="store_true", help="also train with hand-picked bounds")
    parser.add_argument("--output", default="runs/range_test", help="folder for the figure and TensorBoard logs")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)

    # 1. The test alone: no training, the model is as before afterwards.
    pl.seed_everything(args.seed, verbose=False)
    result = lr_range_test(DigitsClassifier(hidden=64), datamodule=DigitsDataModule(batch_size=64, seed=args.seed),
                           verbose=False)  # printed below
    figure_path = output / "lr_range_test.png"
    result.plot(figure_path)
    print(f"\nrange test: {len(result.lrs)} steps from {result.lrs[0]:.3g} to {result.lrs[-1]:.3g} ({result.reason})")
    print(f"suggestion: base_lr={result.base_lr:.4g}, max_lr={result.max_lr:.4g}, "
          f"step_size_up={result.step_size_up} optimizer steps; lowest loss at {result.min_loss_lr:.4g}")
    print(f"figure: {figure_path}")

    # 2. Training with "auto" bounds: the Trainer's LRRangeTest runs at train start.
    metrics = {"base_lr": result.base_lr, "max_lr": result.max_lr}
    metrics["auto_test_acc"], test = train(args.schedule, True, args.epochs, args.seed, output)
    print(f"\n{args.schedule} with auto bounds (base_lr={test.result.base_lr:.4g}, max_lr={test.result.max_lr:.4g}): "
          f"test accuracy {metrics['auto_test_acc']:.4f}")
    if args.compare:
        metrics["hand_test_acc"], _ = train(args.schedule, False, args.epochs, args.seed, output)
        print(f"{args.schedule} with hand-picked bounds {HAND_PICKED[args.schedule]}: "
              f"test accuracy {metrics['hand_test_acc']:.4f}")
    print(f"TensorBoard: tensorboard --logdir {output}")
    print(f"wall time: {time.perf_counter() - start:.1f} s")
    return metrics


if __name__ == "__main__":
    quiet_lightning()
    main()
