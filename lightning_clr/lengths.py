"""Lengths given in optimizer steps, epochs or a share of the run.

A length argument (``step_size_up``, ``total_steps``, ``first_cycle``, ...) is one of:

* an ``int`` (or a whole ``float`` such as ``500.0``): optimizer steps;
* ``"N steps"``: optimizer steps (``"N"`` alone means the same);
* ``"N epochs"``: ``N`` (may be fractional) times the optimizer steps in one epoch, so
  ``accumulate_grad_batches`` and ``limit_train_batches`` count, and under DDP it is per rank;
* ``"P%"``: ``P`` percent of the fit's optimizer steps (``trainer.estimated_stepping_batches``).

Parsing happens in ``__init__`` (bad input raises ``ValueError`` at once); resolving to a step count
happens once training starts, when the Trainer knows the run's size.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal, Union

__all__ = ["Length", "LengthSpec", "parse_length"]

LengthSpec = Union[int, float, str]
Unit = Literal["steps", "epochs", "percent"]

_PATTERN = re.compile(
    r"^\s*(?P<number>[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*"
    r"(?P<unit>steps?|epochs?|%)?\s*$"
)
_VALID = "an int number of optimizer steps or a string like '500 steps', '2.5 epochs' or '30%'"


@dataclass(frozen=True)
class Length:
    """A parsed length: ``value`` in ``unit``. Resolve it with :meth:`resolve`."""

    value: float
    unit: Unit

    @property
    def needs_trainer(self) -> bool:
        return self.unit != "steps"

    def resolve(self, steps_per_epoch: float | None = None, total_steps: float | None = None) -> int:
        """Returns the length in optimizer steps: the nearest whole step (halves round up), at least 1.

        Args:
            steps_per_epoch: optimizer steps in one epoch; needed for ``"N epochs"``.
            total_steps: optimizer steps in the whole fit; needed for ``"P%"``.

        Raises:
            ValueError: if the count this length needs is unknown (``None``, infinite or not positive).
        """
        if self.unit == "steps":
            return int(self.value)
        if self.unit == "epochs":
            base, what = steps_per_epoch, "the number of optimizer steps in an epoch"
        else:
            base, what = total_steps, "the total number of optimizer steps of the fit"
        if base is None or not math.isfinite(base) or base <= 0:
            raise ValueError(
                f"Cannot resolve the length {self}: {what} is unknown (got {base}). Give the length in "
                "steps (an int or 'N steps'), or give the Trainer a finite run (max_epochs or max_steps, "
                "and a dataloader with a length)."
            )
        steps = self.value * base if self.unit == "epochs" else self.value * base / 100.0
        return max(1, math.floor(steps + 0.5))  # the nearest step, halves up (not Python's round-half-even)

    def __str__(self) -> str:
        number = f"{self.value:g}"
        return f"{number}%" if self.unit == "percent" else f"{number} {self.unit}"


def parse_length(spec: LengthSpec | Length, name: str) -> Length:
    """Parses a length argument.

    Args:
        spec: the user's value.
        name: the argument's name, for the error message.

    Raises:
        ValueError: if ``spec`` is not a positive length in a known unit.
    """
    if isinstance(spec, Length):
        return spec
    if isinstance(spec, bool):
        raise ValueError(f"Expected {name} to be {_VALID}, but got {spec!r}.")
    if isinstance(spec, int):
        if spec <= 0:
            raise ValueError(f"Expected {name} to be a positive number of steps, but got {spec!r}.")
        return Length(float(spec), "steps")
    if isinstance(spec, float):
        if not math.isfinite(spec) or spec <= 0 or spec != int(spec):
            raise ValueError(
                f"Expected {name} to be a positive whole number of steps, but got {spec!r}. "
                "For a fractional length in epochs write e.g. '2.5 epochs'."
            )
        return Length(spec, "steps")
    if isinstance(spec, str):
        match = _PATTERN.match(spec.lower())
        if match is None:
            raise ValueError(f"Expected {name} to be {_VALID}, but got {spec!r}.")
        value = float(match["number"])
        unit_text = match["unit"] or "steps"
        unit: Unit = "percent" if unit_text == "%" else ("epochs" if unit_text.startswith("epoch") else "steps")
        if value <= 0:
            raise ValueError(f"Expected {name} to be positive, but got {spec!r}.")
        if unit == "steps" and value != int(value):
            raise ValueError(f"Expected {name} to be a whole number of steps, but got {spec!r}.")
        return Length(value, unit)
    raise ValueError(f"Expected {name} to be {_VALID}, but got {spec!r} of type {type(spec).__name__}.")
