"""Train the digits classifier from the command line with LightningCLI and a lightning_clr callback.

The schedule is a Trainer callback, so it is configured like any other callback, from a YAML file::

    python examples/cli.py fit --config examples/configs/cyclic.yaml
    python examples/cli.py fit --config examples/configs/one_cycle.yaml --trainer.max_epochs=8

or on the command line::

    python examples/cli.py fit --trainer.max_epochs=6 \\
        --trainer.callbacks+=lightning_clr.OneCycleLR --trainer.callbacks.max_lr=0.3

Every argument of a callback, with its type, default and description::

    python examples/cli.py fit --trainer.callbacks.help lightning_clr.CyclicLR

Needs ``pip install "lightning-clr[cli]"`` (jsonargparse) and scikit-learn.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pytorch_lightning.cli import LightningCLI

sys.path.insert(0, str(Path(__file__).resolve().parent))
from digits import DigitsClassifier, DigitsDataModule
from quiet import quiet_lightning


def cli_main(args: list[str] | None = None, run: bool = True, **kwargs: Any) -> LightningCLI:
    """Runs LightningCLI on :class:`DigitsClassifier` and :class:`DigitsDataModule`.

    Args:
        args: the command-line arguments; ``None`` reads ``sys.argv``.
        run: run the subcommand (``fit``, ``validate``, ...); ``False`` only builds the objects.
        **kwargs: more keyword arguments for ``LightningCLI``.

    Returns:
        The ``LightningCLI`` object, with ``.trainer``, ``.model`` and ``.datamodule``.
    """
    kwargs.setdefault("seed_everything_default", 0)
    return LightningCLI(DigitsClassifier, DigitsDataModule, args=args, run=run, **kwargs)


if __name__ == "__main__":
    quiet_lightning()
    cli_main()
