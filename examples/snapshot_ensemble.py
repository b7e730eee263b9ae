"""Snapshot Ensembles ("train 1, get M for free") with lightning_clr, measured on real data.

One network is trained with cosine restarts (SGDR); :class:`~lightning_clr.SnapshotCheckpoint` saves it at the
end of every cycle, where the rate is at its minimum, and :class:`~lightning_clr.SnapshotEnsemble` averages the
snapshots' predicted probabilities (Huang et al., *Snapshot Ensembles: Train 1, Get M for Free*, ICLR 2017).
The script compares, on the test set and for several seeds:

* ``last snapshot``: the single model at the end of training (what one would ship without ensembling);
* ``ensemble``: the mean of the last ``--members`` snapshots' probabilities, at no extra training cost;
* ``one cosine cycle`` (``--no-baseline`` skips it): a separate run of the same length with a single cosine
  decay, the usual non-cyclic schedule.

Data: MNIST-1D (Greydanus, 2020; 4,000 train / 1,000 test sequences of length 40, 10 classes), generated
locally by the ``mnist1d`` package, no download; or ``--dataset digits`` (scikit-learn's 8x8 digits, bundled).

    python examples/snapshot_ensemble.py                 # 5 seeds; about 60 s on a 2-core AMD EPYC
    python examples/snapshot_ensemble.py --no-baseline   # without the single-cycle runs (half the time)

The run is repeatable: every run seeds everything, trains on one thread and generates the same data. Its
digits depend on the seeds and on the line ``environment: ...`` it prints first (torch's version, the CPU kernels
it picked, e.g. AVX2 or AVX512, the processor, Lightning's and numpy's versions, a checksum of the data): another CPU
or torch build rounds differently, and over 1,280 steps that changes the accuracies by a point or two. Where
that line matches docs/snapshots.md, the output is the table there (tests/test_examples.py checks seed 0).
Test accuracy in %, as last snapshot / ensemble of 5 / one cosine cycle: means 74.3 ± 1.2 / 74.8 ± 1.1 /
73.9 ± 0.7; seed 0: 75.0 / 74.4 / 74.5.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics.classification import MulticlassAccuracy

from lightning_clr import CosineRestartsLR, SnapshotCheckpoint, SnapshotEnsemble

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quiet import quiet_lightning


def environment(dataset: str, tensors: tuple[torch.Tensor, ...]) -> str:
    """What the printed accuracies depend on besides the seeds: the versions, the CPU kernels torch dispatches to
    (``AVX2``, ``AVX512``, ...: they round differently), the thread count and a checksum of the data."""
    package = "mnist1d" if dataset == "mnist1d" else "scikit-learn"
    versions = ", ".join(f"{name} {importlib.metadata.version(name)}" for name in ("pytorch_lightning", "numpy",
                                                                                  "scipy", package))
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(tensor.contiguous().numpy().tobytes())
    threads = torch.get_num_threads()
    return (f"environment: torch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()} kernels, {threads} "
            f"thread{'s' if threads > 1 else ''}) on {cpu_model()}, {versions}; data sha256 {digest.hexdigest()[:12]}")


def cpu_model() -> str:
    """The processor's name (the BLAS library takes different code paths on different processors)."""
    try:
        with open("/proc/cpuinfo") as lines:
            for line in lines:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "an unknown CPU"


def load_data(name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x_train, y_train, x_test, y_test)`` as float32 / int64 tensors."""
    if name == "mnist1d":
        from mnist1d.data import get_dataset_args, make_dataset

        data = make_dataset(get_dataset_args())  # seeded (42): the same split on every run
        x, y, x_test, y_test = data["x"], data["y"], data["x_test"], data["y_test"]
    else:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        digits = load_digits()
        x, x_test, y, y_test = train_test_split(digits.data / 16.0, digits.target, test_size=0.3, random_state=0,
                                                stratify=digits.target)
    floats, labels = torch.float32, torch.long
    return (torch.tensor(x, dtype=floats), torch.tensor(y, dtype=labels), torch.tensor(x_test, dtype=floats),
            torch.tensor(y_test, dtype=labels))


class MLP(pl.LightningModule):
    """A plain MLP classifier with SGD; the rate comes from the lightning_clr callback.

    Args:
        num_features: input size.
        hidden: width of the two hidden layers.
        weight_decay: SGD's weight decay.
    """

    def __init__(self, num_features: int = 40, hidden: int = 256, weight_decay: float = 5e-4) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(num_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        # lr is overwritten by the schedule callback before every step.
        return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9, weight_decay=self.hparams.weight_decay)


def accuracy(probabilities: torch.Tensor, target: torch.Tensor) -> float:
    return float(MulticlassAccuracy(num_classes=10, average="micro")(probabilities, target))


def train(x: torch.Tensor, y: torch.Tensor, seed: int, args: argparse.Namespace, cycles: int, folder: str) -> Any:
    """Trains one MLP for ``args.cycles * args.cycle_epochs`` epochs with ``cycles`` equal cosine cycles."""
    pl.seed_everything(seed, verbose=False)
    model = MLP(num_features=x.shape[1], hidden=args.hidden)
    loader = DataLoader(TensorDataset(x, y), batch_size=args.batch_size, shuffle=True)
    epochs = args.cycles * args.cycle_epochs
    snapshots = SnapshotCheckpoint(dirpath=folder, save_weights_only=True)
    trainer = pl.Trainer(
        # SnapshotCheckpoint is a Lightning Checkpoint: it needs enable_checkpointing=True, and is then the only one
        # (Lightning adds its default ModelCheckpoint only when no Checkpoint callback is given).
        max_epochs=epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=True,
        enable_progress_bar=False, enable_model_summary=False,
        callbacks=[CosineRestartsLR(max_lr=args.max_lr, first_cycle=f"{epochs // cycles} epochs"), snapshots],
    )
    trainer.fit(model, loader)
    return model.eval(), snapshots


def _spread(values: list[float]) -> str:
    return f" ± {statistics.stdev(values):.1f}" if len(values) > 1 else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=["mnist1d", "digits"], default="mnist1d")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--cycles", type=int, default=5, help="cosine cycles, one snapshot each")
    parser.add_argument("--cycle-epochs", type=int, default=8, help="epochs per cycle")
    parser.add_argument("--members", type=int, default=None, help="ensemble the last M snapshots (default: all)")
    parser.add_argument("--max-lr", type=float, default=0.3)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=True,
                        help="also train one cosine cycle of the same length (the usual schedule)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # a tiny model: one thread is fastest, leaves a core free, and fixes the summation order
    quiet_lightning()

    started = time.perf_counter()
    x, y, x_test, y_test = load_data(args.dataset)
    print(environment(args.dataset, (x, y, x_test, y_test)))
    members = args.members or args.cycles
    print(f"{args.dataset}: {len(x)} train / {len(x_test)} test; MLP {x.shape[1]}-{args.hidden}-{args.hidden}-10, "
          f"SGD momentum 0.9; {args.cycles} cosine cycles x {args.cycle_epochs} epochs (max_lr {args.max_lr}), "
          f"ensemble of the last {members} snapshots")
    columns = ["last snapshot", f"ensemble of {members}"] + (["one cosine cycle"] if args.baseline else [])
    results: dict[str, list[float]] = {column: [] for column in columns}
    print(f"{'seed':>4}  " + "  ".join(f"{c:>16}" for c in columns) + "   (test accuracy, %)")
    for seed in range(args.seeds):
        with tempfile.TemporaryDirectory() as folder:
            _, snapshots = train(x, y, seed, args, args.cycles, folder)
            ensemble = SnapshotEnsemble.from_checkpoints(MLP, snapshots.snapshot_paths[-members:])
            with torch.no_grad():
                last = accuracy(ensemble.members[-1](x_test).softmax(-1), y_test)
                together = accuracy(ensemble(x_test), y_test)
        results[columns[0]].append(100 * last)
        results[columns[1]].append(100 * together)
        if args.baseline:
            with tempfile.TemporaryDirectory() as folder:
                single, _ = train(x, y, seed, args, 1, folder)
                with torch.no_grad():
                    results[columns[2]].append(100 * accuracy(single(x_test).softmax(-1), y_test))
        print(f"{seed:>4}  " + "  ".join(f"{results[c][-1]:>16.1f}" for c in columns))
    means = [f"{statistics.mean(results[c]):>10.1f}{_spread(results[c]):>6}" for c in columns]
    print(f"{'mean':>4}  " + "  ".join(means))
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
