"""Argument checks shared by the optimizers and schedules.

Every check raises a ValueError or TypeError that names the argument and
shows the offending value, and returns the value in canonical Python form, so
that nothing reaches the numerics unchecked.

One message style for every argument error of the package:

    `<argument>` must be <requirement>; got <value>[<detail>].

(`<argument>[0]` for an element of a list argument)

made by `argument_error()`, which also keeps the parts on the exception
(`argument`, `requirement`, `value`, `detail`) so that the R package can show
the value the way R writes it (`NA`, `NaN`, `TRUE`, `NULL`, `c(1, 2)`)
instead of Python's repr.
"""

import math
import numbers

import numpy as np

from . import config


def describe(value):
    """A short repr for error messages."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def argument_error(error_type, name, requirement, value, detail="", *, index=None, hint=""):
    """The exception for a bad argument `name`, in the package's one style.

    `requirement` completes "must be ..."; `detail` (language-neutral text,
    e.g. ", which is inf in float32") follows the value. `index` (an int or
    a tuple of ints, 0-based) makes it the error of an element of `name`,
    written `name[0]` (`name[0][1]` for a tuple); R writes it `name[[1]]`.
    `hint` is advice in Python's terms (e.g. "pass np.array(x)"), appended
    to Python's message only. The parts stay on the exception for the R
    bridge (R/convert.R, `engine_abort()`), which writes its own message
    from them.
    """
    if isinstance(index, int):
        index = (index,)
    label = name + "".join(f"[{i}]" for i in index or ())
    error = error_type(f"`{label}` must be {requirement}; got {describe(value)}{detail}."
                       + (f" {hint}" if hint else ""))
    error.argument = name
    error.requirement = requirement
    error.value = value
    error.detail = detail
    error.index = index
    return error


def bounds_text(low=None, high=None, low_open=False):
    """The range as a requirement: "in [0, 1]", "> 0", ">= 0" or "<= 1"."""
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low}, {high}]"
    if low is not None:
        return f"{'>' if low_open else '>='} {low}"
    return f"<= {high}"


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
        raise argument_error(TypeError, name, "a number", value)
    if not is_real_number(value):
        raise argument_error(TypeError, name, "a number", value)
    number = float(value)
    if not math.isfinite(number):
        raise argument_error(ValueError, name, "a finite number", value)
    too_low = low is not None and (number <= low if low_open else number < low)
    too_high = high is not None and number > high
    if too_low or too_high:
        raise argument_error(ValueError, name, bounds_text(low, high, low_open), value)
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
        raise argument_error(ValueError, name, f"representable in {dtype.name}{where} (largest: "
                             f"{info.max})", number, f", which is inf in {dtype.name}")
    smallest = info.tiny if normal else info.smallest_subnormal
    if number != 0 and (cast == 0 or abs(cast) < smallest):
        raise argument_error(ValueError, name, f"representable in {dtype.name}{where} (smallest "
                             f"{'normal ' if normal else ''}number: {smallest})", number,
                             f", which is {float(cast)!r} in {dtype.name}")


def check_int(name, value, *, low=None, optional=False):
    """An integer (Python or NumPy; not bool, not a float) that is >= low."""
    if value is None:
        if optional:
            return None
        raise argument_error(TypeError, name, "an integer", value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise argument_error(TypeError, name, "an integer", value)
    number = int(value)
    if low is not None and number < low:
        raise argument_error(ValueError, name, f"an integer >= {low}", value)
    return number


def check_bool(name, value):
    """True or False exactly: 1, "yes" and None are refused rather than guessed at."""
    if not isinstance(value, (bool, np.bool_)):
        raise argument_error(TypeError, name, "True or False", value)
    return bool(value)


def check_name(name, value, *, optional=False):
    """A non-empty string."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise argument_error(TypeError, name, "a non-empty string", value)
    return value
