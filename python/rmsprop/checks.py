"""Argument checks shared by the optimizers and schedules.

Every check raises a ValueError or TypeError that names the argument and
shows the offending value, and returns the value in canonical Python form, so
that nothing reaches the numerics unchecked.
"""

import math
import numbers

import numpy as np

from . import config


def describe(value):
    """A short repr for error messages."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def is_real_number(value):
    """True for Python and NumPy real scalars, but not for bools (a common typo for flags)."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, np.ndarray):
        return value.ndim == 0 and value.dtype.kind in "fiu"
    return isinstance(value, numbers.Real)


def check_float(name, value, *, low=None, high=None, low_open=False, optional=False,
                dtype=None, normal=False):
    """A finite real number within [low, high] (or (low, high] with low_open).

    It must also be representable in `dtype` (default: `config.floatx()`, the
    float policy the optimizer computes in): a value that overflows to inf,
    or a non-zero value that rounds to 0 there, is refused; with `normal`,
    so is a non-zero value below the smallest normal number (a scale whose
    reciprocal would overflow).
    """
    if value is None:
        if optional:
            return None
        raise TypeError(f"`{name}` must be a number; got None.")
    if not is_real_number(value):
        raise TypeError(f"`{name}` must be a number; got {describe(value)}.")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"`{name}` must be a finite number; got {describe(value)}.")
    too_low = low is not None and (number <= low if low_open else number < low)
    too_high = high is not None and number > high
    if too_low or too_high:
        lower = "(" if low_open else "["
        bounds = f"{lower}{'-inf' if low is None else low}, {'inf' if high is None else high}]"
        raise ValueError(f"`{name}` must be in {bounds}; got {describe(value)}.")
    check_representable(name, number, dtype, normal=normal)
    return number


def check_representable(name, number, dtype=None, *, normal=False):
    """Refuse `number` when `dtype` (default floatx) cannot hold it (see check_float)."""
    where = "" if dtype is not None else ", the float type the optimizer computes in"
    dtype = np.dtype(config.floatx() if dtype is None else dtype)
    info = np.finfo(dtype)
    with np.errstate(over="ignore", under="ignore"):
        cast = dtype.type(number)
    if not np.isfinite(cast):
        raise ValueError(f"`{name}` must be representable in {dtype.name}{where} (largest: "
                         f"{info.max}); got {number!r}, which is inf in {dtype.name}.")
    smallest = info.tiny if normal else info.smallest_subnormal
    if number != 0 and (cast == 0 or abs(cast) < smallest):
        raise ValueError(f"`{name}` must be representable in {dtype.name}{where} (smallest "
                         f"{'normal ' if normal else ''}number: {smallest}); got {number!r}, "
                         f"which is {float(cast)!r} in {dtype.name}.")


def check_int(name, value, *, low=None, optional=False):
    """An integer (Python or NumPy; not bool, not a float) that is >= low."""
    if value is None:
        if optional:
            return None
        raise TypeError(f"`{name}` must be an integer; got None.")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"`{name}` must be an integer; got {describe(value)}.")
    number = int(value)
    if low is not None and number < low:
        raise ValueError(f"`{name}` must be an integer >= {low}; got {describe(value)}.")
    return number


def check_bool(name, value):
    """True or False exactly: 1, "yes" and None are refused rather than guessed at."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be True or False; got {describe(value)}.")
    return bool(value)


def check_name(name, value, *, optional=False):
    """A non-empty string."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise TypeError(f"`{name}` must be a non-empty string; got {describe(value)}.")
    return value
