"""Silences exactly the foreign messages that say nothing about these examples; everything else still shows.

Each filter names one message, and its category and origin where it has one, so a new or different warning
is never hidden:

* Lightning 2.6 builds torch's deprecated ``LeafSpec`` (``pytorch_lightning/utilities/_pytree.py``): a
  ``FutureWarning`` on every fit, about Lightning's code, not ours;
* "does not have many workers": the bundled data sets fit in memory, and ``num_workers=0`` is fastest here;
* "GPU available but not used": the examples train on the CPU on purpose (tiny models);
* Lightning's "💡 Tip: ... litlogger / litmodels" advertisements and its "Loading `train_dataloader` to
  estimate number of stepping batches." note (the callbacks ask for the run's length): log lines, dropped
  by a filter on Lightning's ``rank_zero`` loggers.
"""

from __future__ import annotations

import logging
import warnings

_DROPPED_LOG_LINES = (
    "💡 Tip: For seamless cloud logging and experiment tracking",
    "💡 Tip: For seamless cloud uploads and versioning",
    "Loading `train_dataloader` to estimate number of stepping batches.",
)


class _DropKnownLines(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not message.startswith(_DROPPED_LOG_LINES)


def quiet_lightning() -> None:
    """Installs the filters (idempotent). Call it once, before the first Trainer is built."""
    warnings.filterwarnings(
        "ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning,
        module=r"(pytorch_lightning|lightning\.pytorch)\.utilities\._pytree",
    )
    warnings.filterwarnings("ignore", message=r".*does not have many workers", category=UserWarning)
    warnings.filterwarnings("ignore", message=r"GPU available but not used", category=UserWarning)
    for name in ("pytorch_lightning.utilities.rank_zero", "lightning.pytorch.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropKnownLines) for f in logger.filters):
            logger.addFilter(_DropKnownLines())
