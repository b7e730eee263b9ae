"""Argument checks, written once and shared by the schedules, the callbacks, the tuner and the CLI.

Each check raises ``ValueError`` naming the argument, the value and what is valid, in the house form
``Expected <name> to be <valid>, but got <value>.``; a ``bool`` is never taken for a number. Pure Python:
no torch, no Lightning, so the schedules stay light to import.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = [
    "ANNEAL_STRATEGIES",
    "AUTO",
    "CYCLIC_MODES",
    "check_bool",
    "check_bound",
    "check_choice",
    "check_int",
    "check_momentum_bounds",
    "check_number",
    "is_number",
]

AUTO = "auto"
"""The value of a bound that an :class:`~lightning_clr.LRRangeTest` suggests."""
CYCLIC_MODES: tuple[str, ...] = ("triangular", "triangular2", "exp_range")
"""Smith's CLR policies, as torch's ``CyclicLR`` names them."""
ANNEAL_STRATEGIES: tuple[str, ...] = ("cos", "linear")
"""The 1cycle annealing shapes, as torch's ``OneCycleLR`` names them."""


def is_number(value: Any) -> bool:
    """Whether ``value`` is a real ``int`` or ``float`` (not a ``bool``) and finite."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _fail(name: str, valid: str, value: Any) -> ValueError:
    return ValueError(f"Expected {name} to be {valid}, but got {value!r}.")


def check_bool(value: Any, name: str) -> bool:
    """``value`` if it is a ``bool``."""
    if not isinstance(value, bool):
        raise _fail(name, "True or False", value)
    return value


def check_int(value: Any, name: str, minimum: int = 1, what: str = "", *, allow_none: bool = False,
              noun: str = "") -> Any:
    """``value`` if it is an ``int`` (not a ``bool``) of at least ``minimum`` (or ``None``, if allowed).

    Args:
        value: the argument.
        name: its name, for the message.
        minimum: the smallest valid value.
        what: what it counts, e.g. `"steps"`, for the message ("a positive int number of steps", "an int of
            at least 10 steps").
        allow_none: whether `None` is valid too.
        noun: what it is, e.g. `"index"`, for the message ("a non-negative int index").
    """
    if allow_none and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        if minimum in (0, 1):
            kind = ("a positive int" if minimum == 1 else "a non-negative int") + (f" {noun}" if noun else "")
            kind += f" number of {what}" if what else ""
        else:  # "an int of at least 10 steps", not "an int >= 10 number of steps"
            kind = f"an int{f' {noun}' if noun else ''} of at least {minimum}{f' {what}' if what else ''}"
        raise _fail(name, ("None or " if allow_none else "") + kind, value)
    return value


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is None and high is None:
        return "a finite number"
    if high is None:
        return f"a number {'>' if low_open else '>='} {low:g}"
    if low is None:
        return f"a number {'<' if high_open else '<='} {high:g}"
    return f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def check_number(
    value: Any,
    name: str,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    why: str = "",
) -> float:
    """``value`` as a float, if it is a finite number within the interval.

    Args:
        value: the argument.
        name: its name, for the message.
        low: the lower end, or `None` for none.
        high: the upper end, or `None` for none.
        low_open: whether `low` itself is excluded.
        high_open: whether `high` itself is excluded.
        why: a reason shown after the interval, e.g. `"gamma > 1 grows the amplitude without bound"`.
    """
    ok = is_number(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        valid = _interval(low, high, low_open, high_open) + (f" ({why})" if why else "")
        raise _fail(name, valid, value)
    return float(value)


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``."""
    if value not in choices:
        raise _fail(name, f"one of {tuple(choices)}", value)
    return value


def check_bound(value: Any, name: str, *, allow_auto: bool = False, positive: bool = False) -> None:
    """Checks a rate bound: a finite non-negative float (positive if asked), a list of them (one per param
    group), or ``"auto"`` if allowed. For a list, the message names the offending group."""
    if allow_auto and value == AUTO:
        return
    items: Sequence[Any] = value if isinstance(value, (list, tuple)) else [value]
    valid = "a positive float" if positive else "a non-negative float"
    valid += ", a list of them (one per param group)" + (" or 'auto'" if allow_auto else "")
    if not items:
        raise ValueError(f"Expected {name} to be {valid}, but got an empty list.")
    for index, item in enumerate(items):
        if not is_number(item) or item < 0 or (positive and item == 0):
            where = f" (param group {index}: {item!r})" if isinstance(value, (list, tuple)) else ""
            raise ValueError(f"Expected {name} to be {valid}, but got {value!r}{where}.")


def check_momentum_bounds(base_momentum: Any, max_momentum: Any) -> None:
    """Checks a momentum range: both in [0, 1) and ``base_momentum <= max_momentum``."""
    for name, value in (("base_momentum", base_momentum), ("max_momentum", max_momentum)):
        if not is_number(value) or not 0 <= value < 1:
            raise ValueError(f"Expected {name} in [0, 1), but got {name}={value!r}.")
    if base_momentum > max_momentum:
        raise ValueError(
            f"Expected base_momentum <= max_momentum, but got base_momentum={base_momentum!r}, "
            f"max_momentum={max_momentum!r}."
        )
