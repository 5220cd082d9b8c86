"""Learning-rate schedules with the semantics of ``keras.optimizers.schedules``.

A schedule maps the optimizer's raw iteration count to a learning rate. The
built-in schedules reproduce Keras 3's float32 arithmetic operation by
operation, so their rates agree with Keras bit for bit, on NumPy 1.x and 2.x
alike, and their configs use Keras' keys so configs can travel between the
two. A schedule also takes an array of steps (for plotting) and returns the
rate of each step.
"""

import contextlib
import math
import threading
from typing import Iterator
import numbers

import numpy as np

from . import registry
from .checks import argument_error, describe
from .registry import register

__all__ = [
    "LearningRateSchedule",
    "ExponentialDecay",
    "PiecewiseConstantDecay",
    "PolynomialDecay",
    "InverseTimeDecay",
    "CosineDecay",
    "CosineDecayRestarts",
    "serialize",
    "deserialize",
]

# The `class_name` that marks a Python function in a config (Keras' own
# marker for functions in `serialize_keras_object`).
FUNCTION = "function"

# The float type the built-in schedules compute in: float32, Keras' default
# float policy, unless an optimizer computing in float64 asks for float64
# (`computing_in`), as Keras' schedules compute in float64 under floatx
# "float64" (their operands come from `convert_to_tensor`, which gives floatx).
_precision = threading.local()


def _float_type():
    return getattr(_precision, "type", np.float32)


@contextlib.contextmanager
def computing_in(dtype) -> Iterator[None]:
    """Evaluate the built-in schedules in `dtype` (float32 or float64) inside
    the block, in this thread."""
    previous = getattr(_precision, "type", np.float32)
    _precision.type = np.dtype(dtype).type
    try:
        yield
    finally:
        _precision.type = previous


# Hard-coded rather than taken from `__module__`, so the serialized form does
# not depend on how this file happened to be imported.
_MODULE = "rmsprop.schedules"


class LearningRateSchedule:
    """Base class: subclasses implement ``__call__(step)`` and ``get_config()``.

    ``step`` is the optimizer's raw iteration count; the optimizer casts
    whatever is returned to each variable's dtype.
    """

    def __call__(self, step):
        raise NotImplementedError(
            f"Learning rate schedule '{type(self).__name__}' must override "
            "`__call__(self, step)`."
        )

    def get_config(self):
        raise NotImplementedError(
            f"Learning rate schedule '{type(self).__name__}' must override "
            "`get_config()`."
        )

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        try:
            config = self.get_config()
        except NotImplementedError:
            return object.__repr__(self)
        args = ", ".join(f"{k}={v!r}" for k, v in config.items())
        return f"{type(self).__name__}({args})"


# ---------------------------------------------------------------------------
# Argument checks


def _is_real(value):
    # bool is an Integral to Python, but True as a decay rate is a mistake.
    return isinstance(value, numbers.Real) and not isinstance(
        value, (bool, np.bool_)
    )


def _plain(value):
    # NumPy scalars are normalised to Python numbers so that get_config()
    # stays JSON-serialisable; ints stay ints.
    if isinstance(value, numbers.Integral):
        return int(value)
    return float(value)


def _real(name, value):
    if not _is_real(value):
        raise argument_error(TypeError, name, "a real number", value)
    if not math.isfinite(value):
        raise argument_error(ValueError, name, "a finite number", value)
    return _plain(value)


def _positive(name, value):
    value = _real(name, value)
    if value <= 0:
        raise argument_error(ValueError, name, "> 0", value)
    return value


def _non_negative(name, value):
    value = _real(name, value)
    if value < 0:
        raise argument_error(ValueError, name, ">= 0", value)
    return value


def _flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise argument_error(TypeError, name, "True or False", value)
    return bool(value)


def _name(value):
    if not isinstance(value, str):
        raise argument_error(TypeError, "name", "a string", value)
    return value


def _real_list(name, value):
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise argument_error(TypeError, name, "a list of numbers", value)
    items = list(value)
    for i, item in enumerate(items):
        if not _is_real(item) or not math.isfinite(item):
            # The position is Python's (0-based): not in `detail`, which R shows.
            error = argument_error(TypeError, name, "finite real numbers", value)
            error.args = (f"{error.args[0][:-1]} ({name}[{i}] is {describe(item)}).",)
            raise error
    return [_plain(item) for item in items]


def _steps(step):
    """``step`` as a NumPy array of real numbers (any shape), checked."""
    array = np.asarray(step)
    if array.dtype.kind not in "iuf":
        raise argument_error(TypeError, "step", "a number or an array of numbers", step)
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise argument_error(ValueError, "step", "finite", step)
    return array


def _step(step):
    """``step`` as float32, the way Keras casts the iteration count
    (``ops.cast(step, dtype)``); an array of steps stays an array."""
    return _steps(step).astype(_float_type())


def _result(value):
    """A float32 scalar for a single step, a float32 array for an array of steps."""
    array = np.asarray(value, dtype=_float_type())
    return array[()] if array.ndim == 0 else array


def _power(base, exponent):
    """float32 ``base ** exponent`` (Keras' ``ops.power``), rounded once from
    double precision. NumPy's own float32 power is computed by different code
    on different NumPy versions and CPUs and may be 1 ulp away from the exact
    result (PolynomialDecay(0.1, 5, 0.01, 0.5) at step 3: 0x3d890de0 instead
    of Keras' 0x3d890de1); the double result rounded to float32 is the
    correctly rounded float32 value on every platform."""
    power = np.power(np.asarray(base, np.float64), np.asarray(exponent, np.float64))
    return power.astype(_float_type())


def _cos(x):
    """float32 ``cos(x)`` (Keras' ``ops.cos``), rounded once from double (see `_power`)."""
    return np.cos(np.asarray(x, np.float64)).astype(_float_type())


def _log(x):
    """float32 ``log(x)`` (Keras' ``ops.log``), rounded once from double (see `_power`)."""
    return np.log(np.asarray(x, np.float64)).astype(_float_type())


# ---------------------------------------------------------------------------
# Built-in schedules. Every operand is cast to float32 explicitly: NumPy 1.x
# promotes `float32 scalar * Python number` to float64, whereas Keras (and
# NumPy 2) keep float32, and the rates must round the way Keras' do. They work
# element-wise, so an array of steps gives the array of the rates each step
# gives alone (branches are `np.where`, not `if`).


class _StepDecay(LearningRateSchedule):
    """What ExponentialDecay and InverseTimeDecay share: their arguments, config
    and the progress ``step / decay_steps`` (floored when ``staircase``)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase, name):
        self.initial_learning_rate = _real(
            "initial_learning_rate", initial_learning_rate
        )
        self.decay_steps = _positive("decay_steps", decay_steps)
        self.decay_rate = _real("decay_rate", decay_rate)
        self.staircase = _flag("staircase", staircase)
        self.name = _name(name)

    def _progress(self, step):
        p = _step(step) / _float_type()(self.decay_steps)
        return np.floor(p) if self.staircase else p

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
            "name": self.name,
        }


@register("schedule")
class ExponentialDecay(_StepDecay):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)``.

    Args:
        initial_learning_rate: the rate at step 0.
        decay_steps: > 0; the rate is multiplied by `decay_rate` every
            `decay_steps` steps.
        decay_rate: the decay factor.
        staircase: if True, `step / decay_steps` is floored (the rate
            changes in steps).
        name: a string.
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="ExponentialDecay"):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def __call__(self, step):
        lr0 = _float_type()(self.initial_learning_rate)
        return _result(lr0 * _power(_float_type()(self.decay_rate), self._progress(step)))


@register("schedule")
class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[i]`` on the i-th interval ``(boundaries[i-1], boundaries[i]]``.

    Args:
        boundaries: at least one number, in increasing order.
        values: one more number than `boundaries`: the rate up to and
            including the first boundary, ..., after the last one.
        name: a string.
    """

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        boundaries = _real_list("boundaries", boundaries)
        values = _real_list("values", values)
        if len(boundaries) != len(values) - 1:
            raise ValueError(
                "`boundaries` must have one element fewer than `values`; got "
                f"{len(boundaries)} boundar{'y' if len(boundaries) == 1 else 'ies'} and "
                f"{len(values)} value{'' if len(values) == 1 else 's'}."
            )
        if not boundaries:
            # Keras would fail on the first call; fail at construction.
            raise argument_error(ValueError, "boundaries", "at least one number", boundaries)
        # Keras does not check the order, but with unordered boundaries it
        # sums several values; equal neighbours only make an empty interval.
        for lo, hi in zip(boundaries, boundaries[1:]):
            if hi < lo:
                raise argument_error(ValueError, "boundaries", "in increasing order",
                                     boundaries)
        self.boundaries = boundaries
        self.values = values
        self.name = _name(name)

    def __call__(self, step):
        steps = _steps(step)
        # Keras converts the step with convert_to_tensor (an integer step stays
        # an integer, a float one becomes float32) and casts the boundaries
        # (float32 when given as floats) to the step's dtype, which truncates
        # fractional boundaries when the step is an integer.
        if steps.dtype.kind in "iu":
            bounds = np.array([b if isinstance(b, int) else int(_float_type()(b))
                               for b in self.boundaries], dtype=np.int64)
        else:
            bounds = np.array(self.boundaries, dtype=_float_type())
            steps = steps.astype(_float_type())
        # values[i] where boundaries[i-1] < step <= boundaries[i]: i is the
        # number of boundaries below the step (they are in increasing order).
        index = np.searchsorted(bounds, steps, side="left")
        return _result(np.array(self.values, dtype=_float_type())[index])

    def get_config(self):
        return {
            "boundaries": list(self.boundaries),
            "values": list(self.values),
            "name": self.name,
        }


@register("schedule")
class PolynomialDecay(LearningRateSchedule):
    """Polynomial decay from ``initial_learning_rate`` to ``end_learning_rate``.

    ``(initial - end) * (1 - step / decay_steps) ** power + end``, with the
    step capped at `decay_steps`, or with `cycle` the period stretched to the
    first multiple of `decay_steps` reaching the step.

    Args:
        initial_learning_rate: the rate at step 0.
        decay_steps: > 0; the steps the decay takes.
        end_learning_rate: the final rate (default 0.0001).
        power: the polynomial's power (default 1.0, linear).
        cycle: whether to restart the decay after `decay_steps`.
        name: a string.
    """

    def __init__(
        self,
        initial_learning_rate,
        decay_steps,
        end_learning_rate=0.0001,
        power=1.0,
        cycle=False,
        name="PolynomialDecay",
    ):
        self.initial_learning_rate = _real(
            "initial_learning_rate", initial_learning_rate
        )
        self.decay_steps = _positive("decay_steps", decay_steps)
        self.end_learning_rate = _real("end_learning_rate", end_learning_rate)
        self.power = _real("power", power)
        self.cycle = _flag("cycle", cycle)
        self.name = _name(name)

    def __call__(self, step):
        lr0 = _float_type()(self.initial_learning_rate)
        end = _float_type()(self.end_learning_rate)
        s = _step(step)
        d = _float_type()(self.decay_steps)
        if self.cycle:
            # Stretch the period to the first multiple of decay_steps that is
            # >= step; at step 0 that multiple is 1, not 0.
            multiplier = np.where(s == 0, _float_type()(1.0), np.ceil(s / d))
            d = d * multiplier
        else:
            s = np.minimum(s, d)
        p = s / d
        one, power = _float_type()(1.0), _float_type()(self.power)
        return _result((lr0 - end) * _power(one - p, power) + end)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "end_learning_rate": self.end_learning_rate,
            "power": self.power,
            "cycle": self.cycle,
            "name": self.name,
        }


@register("schedule")
class InverseTimeDecay(_StepDecay):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)``.

    Args:
        initial_learning_rate: the rate at step 0.
        decay_steps: > 0; how often the decay is applied.
        decay_rate: the decay factor.
        staircase: if True, `step / decay_steps` is floored.
        name: a string.
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="InverseTimeDecay"):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def __call__(self, step):
        lr0 = _float_type()(self.initial_learning_rate)
        one, rate = _float_type()(1.0), _float_type()(self.decay_rate)
        return _result(lr0 / (one + rate * self._progress(step)))


@register("schedule")
class CosineDecay(LearningRateSchedule):
    """Cosine decay to ``alpha`` times the peak, with optional linear warmup.

    The warmup runs only when ``warmup_target`` is set; ``warmup_steps`` is
    ignored otherwise, as in Keras.

    Args:
        initial_learning_rate: the rate at step 0.
        decay_steps: > 0; the steps the cosine decay takes.
        alpha: the final rate as a fraction of the peak (default 0).
        name: a string.
        warmup_target: None, or the peak reached by a linear warmup from
            `initial_learning_rate`.
        warmup_steps: >= 0; the warmup's length.
    """

    def __init__(
        self,
        initial_learning_rate,
        decay_steps,
        alpha=0.0,
        name="CosineDecay",
        warmup_target=None,
        warmup_steps=0,
    ):
        self.initial_learning_rate = _real(
            "initial_learning_rate", initial_learning_rate
        )
        self.decay_steps = _positive("decay_steps", decay_steps)
        self.alpha = _real("alpha", alpha)
        self.name = _name(name)
        self.warmup_target = (
            None if warmup_target is None else _real("warmup_target", warmup_target)
        )
        self.warmup_steps = _non_negative("warmup_steps", warmup_steps)

    def _decay(self, s, d, peak):
        fraction = s / d
        cosine = _float_type()(0.5) * (_float_type()(1.0) + _cos(_float_type()(math.pi) * fraction))
        # Keras forms `1 - alpha` in Python double precision before it meets
        # the float32 tensor; rounding it once from float64 matches that.
        decayed = _float_type()(1 - self.alpha) * cosine + _float_type()(self.alpha)
        return peak * decayed

    def __call__(self, step):
        lr0 = _float_type()(self.initial_learning_rate)
        d = _float_type()(self.decay_steps)
        s = _step(step)
        if self.warmup_target is None:
            return _result(self._decay(np.minimum(s, d), d, lr0))
        target = _float_type()(self.warmup_target)
        w = _float_type()(self.warmup_steps)
        s = np.minimum(s, d + w)
        warming = s < w
        # Both branches are computed for every step (as Keras' ops.cond would
        # for one); the warmup's 0 / 0 when warmup_steps is 0 is never chosen.
        with np.errstate(divide="ignore", invalid="ignore"):
            warmup = (target - lr0) * (s / w) + lr0
        return _result(np.where(warming, warmup, self._decay(s - w, d, target)))

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "alpha": self.alpha,
            "name": self.name,
            "warmup_target": self.warmup_target,
            "warmup_steps": self.warmup_steps,
        }


@register("schedule")
class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decay with warm restarts (SGDR).

    Period ``i`` lasts ``first_decay_steps * t_mul**i`` steps and peaks at
    ``initial_learning_rate * m_mul**i``.

    Args:
        initial_learning_rate: the rate at step 0.
        first_decay_steps: > 0; the first period's length.
        t_mul: > 0; each period is `t_mul` times longer than the previous.
        m_mul: > 0; each period's peak is `m_mul` times the previous one.
        alpha: the minimum rate as a fraction of the peak (default 0).
        name: a string.
    """

    def __init__(
        self,
        initial_learning_rate,
        first_decay_steps,
        t_mul=2.0,
        m_mul=1.0,
        alpha=0.0,
        name="SGDRDecay",
    ):
        self.initial_learning_rate = _real(
            "initial_learning_rate", initial_learning_rate
        )
        self.first_decay_steps = _positive("first_decay_steps", first_decay_steps)
        self.t_mul = _positive("t_mul", t_mul)
        self.m_mul = _positive("m_mul", m_mul)
        self.alpha = _real("alpha", alpha)
        self.name = _name(name)

    def __call__(self, step):
        lr0 = _float_type()(self.initial_learning_rate)
        alpha = _float_type()(self.alpha)
        t_mul = _float_type()(self.t_mul)
        m_mul = _float_type()(self.m_mul)
        one = _float_type()(1.0)
        fraction = _step(step) / _float_type()(self.first_decay_steps)
        if t_mul == one:
            restart = np.floor(fraction)
            fraction = fraction - restart
        else:
            # Periods grow geometrically; invert the partial sum of the
            # series to find which period `fraction` falls in.
            restart = np.floor(_log(one - fraction * (one - t_mul)) / _log(t_mul))
            done = (one - _power(t_mul, restart)) / (one - t_mul)
            fraction = (fraction - done) / _power(t_mul, restart)
        peak = _float_type()(0.5) * _power(m_mul, restart)
        cosine = peak * (one + _cos(_float_type()(math.pi) * fraction))
        return _result(lr0 * ((one - alpha) * cosine + alpha))

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "first_decay_steps": self.first_decay_steps,
            "t_mul": self.t_mul,
            "m_mul": self.m_mul,
            "alpha": self.alpha,
            "name": self.name,
        }


# ---------------------------------------------------------------------------
# Serialization


def serialize(schedule):
    """Return the Keras-style dict describing ``schedule``."""
    if not isinstance(schedule, LearningRateSchedule):
        raise argument_error(TypeError, "schedule", "a LearningRateSchedule", schedule,
                             f" (of type {type(schedule).__name__})")
    cls = type(schedule)
    module = _MODULE if registry.get("schedule", cls.__name__) is cls else cls.__module__
    return {
        "module": module,
        "class_name": cls.__name__,
        "config": schedule.get_config(),
        "registered_name": None,
    }


def deserialize(config, custom_objects=None):
    """Rebuild a schedule from the dict made by `serialize` (or by Keras).

    The built-in schedules are found by class name. Any other schedule loads
    only when its class is passed in `custom_objects` (a dict mapping class
    names to `LearningRateSchedule` subclasses), as in Keras; the recorded
    module is never imported, so a config cannot make us run code.
    """
    if not isinstance(config, dict) or "class_name" not in config:
        raise argument_error(TypeError, "config",
                             "a dict with keys 'class_name' and 'config'", config)
    class_name = config["class_name"]
    inner = config.get("config") or {}
    if not isinstance(inner, dict):
        raise argument_error(TypeError, "config['config']", "a dict", inner)
    cls = registry.lookup("schedule", class_name, (LearningRateSchedule,), custom_objects)
    return cls.from_config(inner)


def serialize_function(function):
    """The JSON-ready entry standing for a callable learning rate in a config.

    A function cannot travel in a config (Keras marshals lambdas' bytecode;
    we never do), so the entry only names it, marked with class_name
    "function" as Keras marks functions: `{"module": ..., "class_name":
    "function", "config": {"name": ...}, "registered_name": ...}`. Loading
    it needs the function itself, passed in `custom_objects` under that name.
    """
    name = getattr(function, "__qualname__", None) or getattr(function, "__name__", None) \
        or type(function).__name__
    return {
        "module": getattr(function, "__module__", None),
        "class_name": FUNCTION,
        "config": {"name": str(name)},
        "registered_name": str(name),
    }


def deserialize_function(config, custom_objects=None):
    """The callable a `serialize_function` entry names, from `custom_objects`.

    Raises:
        ValueError: when `custom_objects` does not hold a callable under that
            name: a config cannot hold the function itself.
    """
    inner = config.get("config")
    name = inner.get("name") if isinstance(inner, dict) else None
    function = registry.check_custom_objects(custom_objects).get(name)
    if not callable(function):
        raise ValueError(
            f"`learning_rate` in this config is a Python function ({name!r}), which a config "
            "does not hold. Pass the function as from_config(config, "
            f"custom_objects={{{name!r}: function}}), or use a number or a schedule."
        )
    return function
