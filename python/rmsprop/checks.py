"""Argument checks shared by the optimizers and schedules.

Every check raises a ValueError or TypeError that names the argument and
shows the offending value, and returns the value in canonical Python form, so
that nothing reaches the numerics unchecked.
"""

import math
import numbers

import numpy as np


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


def check_float(name, value, *, low=None, high=None, low_open=False, optional=False):
    """A finite real number within [low, high] (or (low, high] with low_open)."""
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
    return number


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
