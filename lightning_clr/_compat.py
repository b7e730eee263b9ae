"""Lightning namespace compatibility.

Lightning ships the same Trainer as ``pytorch_lightning`` and as ``lightning.pytorch`` (the unified
package). The two define distinct ``Callback`` classes, and ``LightningCLI`` checks a callback's class
against the one of its own namespace, so lightning_clr's callbacks subclass every namespace installed.
Everything else is used by duck typing, which both namespaces satisfy.
"""

from __future__ import annotations

import importlib
from typing import Any

from lightning_utilities.core.rank_zero import rank_zero_warn

__all__ = ["CALLBACK_BASES", "CallbackBase", "rank_zero_warn", "NAMESPACES"]


def _import_callback(namespace: str) -> type | None:
    try:
        module = importlib.import_module(f"{namespace}.callbacks")
    except ImportError:
        return None
    return module.Callback


NAMESPACES: tuple[str, ...] = tuple(ns for ns in ("pytorch_lightning", "lightning.pytorch") if _import_callback(ns))
if not NAMESPACES:  # pragma: no cover - packaging guarantees one of them
    raise ImportError("lightning_clr needs `pytorch-lightning` or `lightning`: pip install pytorch-lightning")

CALLBACK_BASES: tuple[type, ...] = tuple(_import_callback(ns) for ns in NAMESPACES)  # type: ignore[misc]


class CallbackBase(*CALLBACK_BASES):  # type: ignore[misc]
    """A ``Callback`` of every installed Lightning namespace."""
