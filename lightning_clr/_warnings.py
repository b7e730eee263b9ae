"""The category of lightning_clr's warnings, and the one function that gives them.

Every warning lightning_clr gives is a :class:`LightningCLRWarning` (a ``UserWarning``), given once, on rank 0
only (Lightning's ``rank_zero_warn``), so a user can silence or escalate them all, or some, by category::

    import warnings
    from lightning_clr import LightningCLRWarning

    warnings.filterwarnings("ignore", category=LightningCLRWarning)           # all of them
    warnings.filterwarnings("error", "OneCycleLR", LightningCLRWarning)       # those of one callback

Each message begins with the name of the class that gives it (``"OneCycleLR: ..."``, ``"LRRangeTest ..."``).
Pure: no torch, no Lightning (``lightning_utilities`` only).
"""

from __future__ import annotations

from lightning_utilities.core.rank_zero import rank_zero_warn

__all__ = ["LightningCLRWarning", "warn"]


class LightningCLRWarning(UserWarning):
    """A warning of lightning_clr: a set-up that works but is probably not what was meant, or a fallback taken."""


def warn(message: str) -> None:
    """Warns ``message`` as a :class:`LightningCLRWarning`, on rank 0 only."""
    rank_zero_warn(message, stacklevel=5, category=LightningCLRWarning)
