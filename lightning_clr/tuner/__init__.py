"""The LR range test and the "auto" bounds it suggests.

The names load on first use (PEP 562), so that ``import lightning_clr.tuner.suggest`` (the pure rules) and
``lightning_clr.tuner.result`` load neither torch nor Lightning.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "LRRangeTest": "lightning_clr.tuner.range_test",
    "RangeTestResult": "lightning_clr.tuner.result",
    "RangeTestError": "lightning_clr.tuner.suggest",
    "lr_range_test": "lightning_clr.tuner.function",
}

__all__ = ["LRRangeTest", "RangeTestError", "RangeTestResult", "lr_range_test"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lightning_clr.tuner' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


if TYPE_CHECKING:
    from lightning_clr.tuner.function import lr_range_test
    from lightning_clr.tuner.range_test import LRRangeTest
    from lightning_clr.tuner.result import RangeTestResult
    from lightning_clr.tuner.suggest import RangeTestError
