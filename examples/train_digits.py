"""The main example: train a small classifier on scikit-learn's bundled digits with a cyclical rate.

One command, no download, CPU, well under two minutes::

    python examples/train_digits.py                       # CyclicLR, triangular2
    python examples/train_digits.py --schedule one_cycle  # or cosine_restarts

The LightningModule is ordinary (``examples/digits.py``): it returns a plain SGD optimizer and knows
nothing about the schedule. The schedule is one callback. The applied rate and momentum are logged to
CSV and TensorBoard (``<output>/csv`` and ``<output>/tensorboard``), and test accuracy is measured with
torchmetrics.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger

sys.path.insert(0, str(Path(__file__).resolve().parent))
from digits import DigitsClassifier, DigitsDataModule
from quiet import quiet_lightning

from lightning_clr import CosineRestartsLR, CyclicLR, OneCycleLR


def make_schedule(name: str) -> pl.Callback:
    """The schedule callbacks this example offers; lengths are in epochs, resolved by the Trainer."""
    if name == "cyclic":
        return CyclicLR(base_lr=0.01, max_lr=0.3, step_size_up="2 epochs", mode="triangular2")
    if name == "one_cycle":
        return OneCycleLR(max_lr=0.3)  # total_steps=None: the whole fit
    if name == "cosine_restarts":
        return CosineRestartsLR(max_lr=0.3, first_cycle="2 epochs", t_mul=2.0)
    raise ValueError(f"Expected schedule to be one of cyclic, one_cycle, cosine_restarts, but got {name!r}.")


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedule", default="cyclic", choices=["cyclic", "one_cycle", "cosine_restarts"])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="runs/train_digits", help="folder for the CSV and TensorBoard logs")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    pl.seed_everything(args.seed, workers=True, verbose=False)
    output = Path(args.output)
    loggers = [CSVLogger(output, name="csv"), TensorBoardLogger(output, name="tensorboard")]
    trainer = pl.Trainer(
        max_epochs=args.epochs,
        accelerator="cpu",
        devices=1,
        logger=loggers,
        log_every_n_steps=1,
        callbacks=[make_schedule(args.schedule)],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        deterministic=True,
    )
    model, data = DigitsClassifier(), DigitsDataModule(seed=args.seed)
    trainer.fit(model, datamodule=data)
    test_acc = float(trainer.test(model, datamodule=data, verbose=False)[0]["test_acc"])

    metrics_csv = Path(loggers[0].log_dir) / "metrics.csv"
    rates = _logged_rates(metrics_csv)
    print(f"\nschedule: {args.schedule}, {trainer.global_step} optimizer steps, {args.epochs} epochs")
    print(f"learning rate logged at {len(rates)} steps: min {min(rates):.4g}, max {max(rates):.4g}, "
          f"last {rates[-1]:.4g}")
    print(f"test accuracy: {test_acc:.4f}")
    print(f"logs: {metrics_csv} and {loggers[1].log_dir} (tensorboard --logdir {output})")
    print(f"wall time: {time.perf_counter() - start:.1f} s")
    return {"test_acc": test_acc, "steps": float(trainer.global_step)}


def _logged_rates(path: Path) -> list[float]:
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    column = next(name for name in rows[0] if name.startswith("lr-clr-") and not name.endswith("momentum"))
    return [float(row[column]) for row in rows if row.get(column)]


if __name__ == "__main__":
    quiet_lightning()
    main()
