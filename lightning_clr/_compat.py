"""Lightning namespace compatibility.

Lightning ships the same Trainer as ``pytorch_lightning`` and as ``lightning.pytorch`` (the unified
package). The two define distinct ``Callback`` (and ``Checkpoint``) classes, and ``LightningCLI`` checks a
callback's class against the one of its own namespace, so lightning_clr's callbacks subclass every namespace
installed. Everything else is used by duck typing, which both namespaces satisfy.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

__all__ = [
    "CALLBACK_BASES",
    "CHECKPOINT_BASES",
    "NAMESPACES",
    "CallbackBase",
    "CheckpointBase",
    "arguments_repr",
]


def _import_callbacks(namespace: str) -> Any:
    try:
        return importlib.import_module(f"{namespace}.callbacks")
    except ImportError:
        return None


NAMESPACES: tuple[str, ...] = tuple(ns for ns in ("pytorch_lightning", "lightning.pytorch") if _import_callbacks(ns))
if not NAMESPACES:  # pragma: no cover - packaging guarantees one of them
    raise ImportError("lightning_clr needs `pytorch-lightning` or `lightning`: pip install pytorch-lightning")

CALLBACK_BASES: tuple[type, ...] = tuple(_import_callbacks(ns).Callback for ns in NAMESPACES)
CHECKPOINT_BASES: tuple[type, ...] = tuple(_import_callbacks(ns).Checkpoint for ns in NAMESPACES)

_MISSING = object()


def arguments_repr(obj: Any) -> str:
    """``ClassName(arg=value, ...)`` with the ``__init__`` arguments read back from the attributes of the same
    name: the required ones, and the others where they differ from the default."""
    try:
        parameters = list(inspect.signature(type(obj).__init__).parameters.values())[1:]
    except (TypeError, ValueError):  # pragma: no cover - a builtin __init__
        parameters = []
    shown = []
    for parameter in parameters:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        value = getattr(obj, parameter.name, _MISSING)
        if value is _MISSING:
            continue
        if parameter.default is not parameter.empty:
            try:
                if value is parameter.default or bool(value == parameter.default):
                    continue
            except Exception:  # an ambiguous comparison (a tensor): show it
                pass
        shown.append(f"{parameter.name}={value!r}")
    return f"{type(obj).__name__}({', '.join(shown)})"


class _ArgumentsRepr:
    def __repr__(self) -> str:
        return arguments_repr(self)


class CallbackBase(_ArgumentsRepr, *CALLBACK_BASES):  # type: ignore[misc]
    """A ``Callback`` of every installed Lightning namespace, whose ``repr`` shows its arguments."""


class CheckpointBase(_ArgumentsRepr, *CHECKPOINT_BASES):  # type: ignore[misc]
    """A ``Checkpoint`` of every installed Lightning namespace (the Trainer runs checkpoints after the other
    callbacks), whose ``repr`` shows its arguments."""
