"""The optimizer's own counter and learning rate, as Keras 3's Variables.

Keras keeps both in variables (`BaseOptimizer.__init__`: "iteration", an int
variable, and "learning_rate", a floatx variable), so that
`opt.iterations.numpy()` and `opt.learning_rate.assign(0.1)` work. Here they
are `Variable`s whose `assign` (and `assign_add`/`assign_sub`) checks the new
value as the optimizer's constructor checks the argument: a bad rate or count
is an error naming it, before anything changes, never a NaN steps later.
"""

import numpy as np

from . import config
from .checks import argument_error, check_float, check_int, is_real_number
from .variable import Variable

# The counter is an int64 variable, as in Keras (TensorFlow's "int").
MAX_ITERATIONS = np.iinfo(np.int64).max


def checked_learning_rate(value, dtype=None):
    """A numeric learning rate as a Python float, checked as the constructor
    checks `learning_rate` (a number >= 0 that `dtype`, by default floatx,
    can hold); a Variable or 0-d array holding one is accepted."""
    if isinstance(value, Variable):
        value = value.numpy()
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if not is_real_number(value):
        raise argument_error(TypeError, "learning_rate", "a number, a LearningRateSchedule "
                             "or a callable taking no arguments", value)
    return check_float("learning_rate", value, low=0, dtype=dtype)


class LearningRateVariable(Variable):
    """The numeric learning rate: a scalar float variable (floatx, as Keras
    stores it) that remembers the number it was given, so that an optimizer
    computing in float64 can hold that number unrounded (`_recast`)."""

    def __init__(self, number: float) -> None:
        super().__init__(number, dtype=config.floatx(), trainable=False, name="learning_rate")
        self._number = number

    def _check(self, value):
        dtype = None if self._value.dtype == np.dtype(config.floatx()) else self._value.dtype
        return checked_learning_rate(value, dtype)

    def assign(self, value):
        """Set the rate (checked as the `learning_rate` argument); the next step uses it."""
        number = self._check(value)
        self._value[()] = number
        self._number = number
        return self._value.copy()

    def assign_add(self, value):
        """`assign(self + value)`, computed in the variable's dtype."""
        return self.assign(np.add(self._value, np.asarray(value, dtype=self._value.dtype)))

    def assign_sub(self, value):
        """`assign(self - value)`, computed in the variable's dtype."""
        return self.assign(np.subtract(self._value, np.asarray(value, dtype=self._value.dtype)))

    def _recast(self, dtype) -> None:
        """Hold the rate in `dtype` from now on: the number as last given, not
        its floatx rounding (an optimizer built to compute in float64)."""
        self._value = np.array(self._number, dtype=dtype)


class IterationVariable(Variable):
    """The step counter: a scalar int64 variable ("iteration", as Keras names
    it). Users may `assign` it, as in Keras (schedules and the accumulation
    cycle follow the new count at the next step); the value must be an
    integer in [0, 2**63 - 2], so that the next step can still be counted."""

    def __init__(self) -> None:
        super().__init__(0, dtype="int64", trainable=False, name="iteration")

    def assign(self, value):
        """Set the counter to an integer in [0, 2**63 - 2]; returns the new value."""
        source = value.numpy() if isinstance(value, Variable) else value
        if isinstance(source, np.ndarray) and source.ndim == 0:
            source = source[()]
        if isinstance(source, (float, np.floating)) and float(source).is_integer():
            source = int(source)     # 3.0 (R's whole numbers, a float array) is 3
        number = check_int("iterations", source, low=0)
        if number >= MAX_ITERATIONS:
            raise argument_error(ValueError, "iterations", f"an integer <= {MAX_ITERATIONS - 1}",
                                 value, " (the next step must be countable in int64)")
        self._value[()] = number
        return self._value.copy()

    def assign_add(self, value):
        """`assign(self + value)`; returns the new value."""
        return self.assign(int(self._value) + _integer(value))

    def assign_sub(self, value):
        """`assign(self - value)`; returns the new value."""
        return self.assign(int(self._value) - _integer(value))


def _integer(value):
    value = np.asarray(value)
    if value.ndim != 0 or value.dtype.kind not in "iu":
        raise argument_error(TypeError, "iterations", "changed by an integer", value)
    return int(value)


def counter_snapshot(count: int) -> Variable:
    """The completed updates under gradient accumulation: Keras returns
    `ops.floor_divide(iterations, steps)`, a tensor computed from the counter,
    not the counter itself; here a read-only int64 Variable (so that
    `.numpy()` works as on the counter, and `assign` fails loudly instead of
    changing a copy)."""
    snapshot = Variable(np.int64(count), dtype="int64", trainable=False, name="iterations")
    snapshot._value.flags.writeable = False
    return snapshot
