"""The tuner package's shape: the pure modules load no torch, and each public name has one home."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["lightning_clr.tuner.curve", "lightning_clr.tuner.suggest",
                                    "lightning_clr.tuner.result", "lightning_clr.tuner"])
def test_pure_modules_import_neither_torch_nor_lightning(module):
    code = (f"import sys, {module}; "
            "heavy = sorted(m for m in ('torch', 'pytorch_lightning', 'lightning') if m in sys.modules); "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_public_names_are_importable_from_the_package_and_the_tuner():
    import lightning_clr
    import lightning_clr.tuner as tuner
    from lightning_clr.tuner import function, range_test, result, suggest

    homes = {"LRRangeTest": range_test, "RangeTestResult": result, "RangeTestError": suggest,
             "lr_range_test": function}
    for name, home in homes.items():
        assert getattr(lightning_clr, name) is getattr(tuner, name) is getattr(home, name)
