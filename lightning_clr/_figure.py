"""The one place a matplotlib figure is made.

Figures are ``matplotlib.figure.Figure`` objects (not ``pyplot``): nothing opens on screen and no global
figure is left behind. matplotlib is an optional dependency (``pip install 'lightning-clr[plot]'``); only
plotting needs it, so it is imported here, on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["new_figure"]


def new_figure(figsize: tuple[float, float], what: str = "a figure") -> Any:
    """A constrained-layout ``Figure`` of ``figsize`` inches.

    Args:
        figsize: ``(width, height)`` in inches.
        what: what is being drawn, for the error message (e.g. ``"the LR range test"``).

    Raises:
        ImportError: if matplotlib is not installed, saying how to install it.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"Plotting {what} needs matplotlib: pip install 'lightning-clr[plot]' (or matplotlib)."
        ) from error
    return Figure(figsize=figsize, layout="constrained")
