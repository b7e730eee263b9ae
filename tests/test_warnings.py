"""Every warning of lightning_clr is a ``LightningCLRWarning`` (``lightning_clr/_warnings.py``)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytorch_lightning as pl
from test_imports import _loaded_after

from lightning_clr import LightningCLRWarning, OneCycleLR
from lightning_clr._warnings import warn

from helpers import RecordingModel, trainer_kwargs

PACKAGE = Path(__file__).resolve().parent.parent / "lightning_clr"


def test_the_package_warns_only_through_its_one_function():
    """A direct ``warnings.warn`` or ``rank_zero_warn`` elsewhere would give a warning of another category."""
    offenders = [str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py") if path.name != "_warnings.py"
                 and re.search(r"\b(rank_zero_warn|warnings\.warn)\(", path.read_text())]
    assert offenders == []


def test_it_is_a_user_warning_and_a_users_filter_by_category_silences_it(tmp_path):
    assert issubclass(LightningCLRWarning, UserWarning)
    callback = OneCycleLR(1.0, total_steps=3, cycle_momentum=False)  # a 6-step fit passes its end: one warning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=1), callbacks=[callback]).fit(RecordingModel(num_batches=6))
    ours = [w for w in caught if issubclass(w.category, LightningCLRWarning)]
    assert [str(w.message).split(":")[0] for w in ours] == ["OneCycleLR"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=LightningCLRWarning)
        pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=1),
                   callbacks=[OneCycleLR(1.0, total_steps=3, cycle_momentum=False)]).fit(RecordingModel(num_batches=6))
    assert not [w for w in caught if issubclass(w.category, UserWarning) and "OneCycleLR" in str(w.message)]


def test_warn_gives_the_category():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn("CyclicLR: a test")
    assert [(w.category, str(w.message)) for w in caught] == [(LightningCLRWarning, "CyclicLR: a test")]


def test_the_warnings_module_loads_no_torch():
    assert [m for m in _loaded_after("import lightning_clr._warnings") if m != "lightning_utilities"] == []
