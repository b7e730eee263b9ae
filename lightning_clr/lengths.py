"""Lengths given in optimizer steps, epochs or a share of the run.

A length argument (``step_size_up``, ``total_steps``, ``first_cycle``, ...) is one of:

* an ``int`` (or a whole ``float`` such as ``500.0``): optimizer steps;
* ``"N steps"``: optimizer steps (``"N"`` alone means the same);
* ``"N epochs"``: ``N`` (may be fractional) times the optimizer steps in one epoch, so
  ``accumulate_grad_batches`` and ``limit_train_batches`` count, and under DDP it is per rank;
* ``"P%"``: ``P`` percent (more than 0, at most 100) of the fit's optimizer steps
  (``trainer.estimated_stepping_batches``).

Parsing happens in ``__init__`` (bad input raises ``ValueError`` at once); resolving to a step count
happens once training starts, when the Trainer knows the run's size.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Length", "LengthSpec", "parse_length", "parse_optional_length"]

LengthSpec = int | float | str
Unit = Literal["steps", "epochs", "percent"]

_PATTERN = re.compile(
    r"^\s*(?P<number>[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*"
    r"(?P<unit>steps?|epochs?|%)?\s*$"
)
_VALID = "an int number of optimizer steps or a string like '500 steps', '2.5 epochs' or '30%'"


@dataclass(frozen=True)
class Length:
    """A parsed length: ``value`` in ``unit``. Resolve it with :meth:`resolve`.

    ``name`` is the argument it was parsed for (``"step_size_up"``, ...), so that an error raised when it is
    resolved can name that argument; it takes no part in comparisons.

    Example::

        >>> length = parse_length("2.5 epochs", "step_size_up")
        >>> length
        Length(value=2.5, unit='epochs')
        >>> length.resolve(steps_per_epoch=40)
        100
        >>> parse_length("30%", "first_cycle").resolve(total_steps=1000)
        300
    """

    value: float
    unit: Unit
    name: str | None = field(default=None, compare=False, repr=False)

    @property
    def needs_trainer(self) -> bool:
        return self.unit != "steps"

    def resolve(self, steps_per_epoch: float | None = None, total_steps: float | None = None, *,
                where: Literal["fit", "preview"] | None = None) -> int:
        """Returns the length in optimizer steps: the nearest whole step (halves round up), at least 1.

        Args:
            steps_per_epoch: optimizer steps in one epoch; needed for `"N epochs"`.
            total_steps: optimizer steps in the whole fit; needed for `"P%"`.
            where: where the counts come from, for the error message's remedy: `"fit"` (the Trainer's run:
                give the dataloader a `__len__`), `"preview"` (a run described by numbers: pass
                `steps_per_epoch=`) or `None` (both remedies).

        Raises:
            ValueError: if the count this length needs is unknown (``None``, infinite or not positive).
        """
        if self.unit == "steps":
            return int(self.value)
        base = steps_per_epoch if self.unit == "epochs" else total_steps
        if base is None or not math.isfinite(base) or base <= 0:
            raise ValueError(self._unknown_size_message(total_steps, where))
        steps = self.value * base if self.unit == "epochs" else self.value * base / 100.0
        return max(1, math.floor(steps + 0.5))  # the nearest step, halves up (not Python's round-half-even)

    def _unknown_size_message(self, total_steps: float | None, where: str | None) -> str:
        """Why this length cannot be resolved, and the alternatives that work with what *is* known."""
        argument = f"{self.name}={str(self)!r}" if self.name else f"the length {self}"
        run_known = total_steps is not None and math.isfinite(total_steps) and total_steps > 0
        if self.unit == "epochs":
            what = f"Cannot resolve {argument}: the number of optimizer steps in an epoch is unknown."
            in_fit = "the train dataloader has no length (an IterableDataset without __len__?): give it a __len__"
            in_preview = "pass steps_per_epoch=N, the optimizer steps in an epoch of the run"
            if where == "fit":
                remedy = f" In this fit, {in_fit}."
            elif where == "preview":
                remedy = f" In a preview, {in_preview}."
            else:
                remedy = f" In a fit, {in_fit}; in a preview (plot, schedules, preview_callback), {in_preview}."
            if run_known:
                assert total_steps is not None
                fix = (f" Or give it in steps (an int or 'N steps') or as a share of the run ('P%' of its "
                       f"{int(total_steps)} steps).")
            else:
                fix = (" Or give it in steps (an int or 'N steps'); a share of the run ('P%') also needs a finite "
                       "run (Trainer(max_steps=N)).")
            return what + remedy + fix
        what = (f"Cannot resolve {argument}: the fit's total number of optimizer steps is unknown; the run has no "
                "finite length.")
        fix = ("Give it in steps (an int or 'N steps') or in epochs ('N epochs'), or give the Trainer a finite "
               "run: max_steps=N, or max_epochs with a dataloader that has a length.")
        return f"{what} {fix}"

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
        return spec if spec.name is not None else Length(spec.value, spec.unit, name)
    if isinstance(spec, bool):
        raise ValueError(f"Expected {name} to be {_VALID}, but got {spec!r}.")
    if isinstance(spec, int):
        if spec <= 0:
            raise ValueError(f"Expected {name} to be a positive number of steps, but got {spec!r}.")
        return Length(float(spec), "steps", name)
    if isinstance(spec, float):
        if not math.isfinite(spec) or spec <= 0 or spec != int(spec):
            raise ValueError(
                f"Expected {name} to be a positive whole number of steps, but got {spec!r}. "
                "For a fractional length in epochs write e.g. '2.5 epochs'."
            )
        return Length(spec, "steps", name)
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
        if unit == "percent" and value > 100:
            raise ValueError(
                f"Expected {name} as a share of the run to be at most 100%, but got {spec!r}: a length longer "
                "than the run never ends within it. Give a percentage in (0, 100], or a length in steps or "
                "epochs ('500 steps', '2 epochs') for a cycle longer than the run."
            )
        return Length(value, unit, name)
    raise ValueError(f"Expected {name} to be {_VALID}, but got {spec!r} of type {type(spec).__name__}.")


def parse_optional_length(spec: LengthSpec | Length, name: str) -> Length | None:
    """Parses a length that may be ``0`` (none, e.g. ``warmup=0``): ``None`` for ``0``, else :func:`parse_length`.

    Raises:
        ValueError: if ``spec`` is a negative number or, not ``0``, no positive length in a known unit.
    """
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        if spec == 0:
            return None
        if spec < 0:
            raise ValueError(f"Expected {name} to be 0 (none) or a positive length, but got {spec!r}.")
    return parse_length(spec, name)
