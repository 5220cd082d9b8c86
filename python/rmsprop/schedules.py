"""Learning-rate schedules with the semantics of ``keras.optimizers.schedules``.

A schedule maps the optimizer's raw iteration count to a learning rate. The
built-in schedules reproduce Keras 3's float32 arithmetic operation by
operation, so their rates agree with Keras to the last bit or so, and their
configs use Keras' keys so configs can travel between the two.
"""

import math
import numbers

import numpy as np

from . import registry
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

_F32 = np.float32

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
        raise TypeError(
            f"Argument `{name}` must be a real number. "
            f"Received: {name}={value!r} (of type {type(value).__name__})"
        )
    if not math.isfinite(value):
        raise ValueError(
            f"Argument `{name}` must be finite. Received: {name}={value!r}"
        )
    return _plain(value)


def _positive(name, value):
    value = _real(name, value)
    if value <= 0:
        raise ValueError(
            f"Argument `{name}` must be > 0. Received: {name}={value!r}"
        )
    return value


def _non_negative(name, value):
    value = _real(name, value)
    if value < 0:
        raise ValueError(
            f"Argument `{name}` must be >= 0. Received: {name}={value!r}"
        )
    return value


def _flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(
            f"Argument `{name}` must be a bool. Received: {name}={value!r}"
        )
    return bool(value)


def _name(value):
    if not isinstance(value, str):
        raise TypeError(f"Argument `name` must be a string. Received: name={value!r}")
    return value


def _real_list(name, value):
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(
            f"Argument `{name}` must be a list of numbers. "
            f"Received: {name}={value!r}"
        )
    items = list(value)
    for i, item in enumerate(items):
        if not _is_real(item) or not math.isfinite(item):
            raise TypeError(
                f"Argument `{name}` must contain only finite real numbers. "
                f"Received: {name}={value!r} ({name}[{i}]={item!r})"
            )
    return [_plain(item) for item in items]


def _step(step):
    """Return ``step`` as float32, the way Keras casts the iteration count."""
    if isinstance(step, (bool, np.bool_)):
        raise TypeError(f"`step` must be a number. Received: step={step!r}")
    array = np.asarray(step)
    if array.ndim != 0 or array.dtype.kind not in "iuf":
        raise TypeError(
            f"`step` must be a scalar integer or float. Received: step={step!r}"
        )
    return _F32(array)


# ---------------------------------------------------------------------------
# Built-in schedules. Every operand is cast to float32 explicitly: NumPy 1.x
# promotes `float32 scalar * Python number` to float64, whereas Keras (and
# NumPy 2) keep float32, and the rates must round the way Keras' do.


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
        p = _step(step) / _F32(self.decay_steps)
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
    """``initial_learning_rate * decay_rate ** (step / decay_steps)``."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="ExponentialDecay"):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def __call__(self, step):
        lr0 = _F32(self.initial_learning_rate)
        return _F32(lr0 * np.power(_F32(self.decay_rate), self._progress(step)))


@register("schedule")
class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[i]`` on the i-th interval ``(boundaries[i-1], boundaries[i]]``."""

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        boundaries = _real_list("boundaries", boundaries)
        values = _real_list("values", values)
        if len(boundaries) != len(values) - 1:
            raise ValueError(
                "The length of `boundaries` must be 1 less than the length of "
                f"`values`. Received: boundaries={boundaries} of length "
                f"{len(boundaries)}, and values={values} of length "
                f"{len(values)}."
            )
        if not boundaries:
            # Keras would fail on the first call; fail at construction.
            raise ValueError(
                "Argument `boundaries` must hold at least one boundary. "
                f"Received: boundaries={boundaries}"
            )
        # Keras does not check the order, but with unordered boundaries it
        # sums several values; equal neighbours only make an empty interval.
        for lo, hi in zip(boundaries, boundaries[1:]):
            if hi < lo:
                raise ValueError(
                    "Argument `boundaries` must be in increasing order. "
                    f"Received: boundaries={boundaries}"
                )
        self.boundaries = boundaries
        self.values = values
        self.name = _name(name)

    def __call__(self, step):
        _step(step)  # validates
        step = np.asarray(step)
        # Keras casts the boundaries to the step's dtype, which truncates
        # fractional boundaries when the step is an integer.
        if step.dtype.kind in "iu":
            bounds = [int(b) for b in self.boundaries]
            step = int(step)
        else:
            bounds = [float(b) for b in self.boundaries]
            step = float(step)
        index = 0
        while index < len(bounds) and step > bounds[index]:
            index += 1
        return _F32(self.values[index])

    def get_config(self):
        return {
            "boundaries": list(self.boundaries),
            "values": list(self.values),
            "name": self.name,
        }


@register("schedule")
class PolynomialDecay(LearningRateSchedule):
    """Polynomial decay from ``initial_learning_rate`` to ``end_learning_rate``."""

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
        lr0 = _F32(self.initial_learning_rate)
        end = _F32(self.end_learning_rate)
        s = _step(step)
        d = _F32(self.decay_steps)
        if self.cycle:
            # Stretch the period to the first multiple of decay_steps that is
            # >= step; at step 0 that multiple is 1, not 0.
            multiplier = _F32(1.0) if s == 0 else np.ceil(s / d)
            d = d * multiplier
        else:
            s = np.minimum(s, d)
        p = s / d
        return _F32((lr0 - end) * np.power(_F32(1.0) - p, _F32(self.power)) + end)

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
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)``."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="InverseTimeDecay"):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def __call__(self, step):
        lr0 = _F32(self.initial_learning_rate)
        return _F32(lr0 / (_F32(1.0) + _F32(self.decay_rate) * self._progress(step)))


@register("schedule")
class CosineDecay(LearningRateSchedule):
    """Cosine decay to ``alpha`` times the peak, with optional linear warmup.

    The warmup runs only when ``warmup_target`` is set; ``warmup_steps`` is
    ignored otherwise, as in Keras.
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
        cosine = _F32(0.5) * (_F32(1.0) + np.cos(_F32(math.pi) * fraction))
        # Keras forms `1 - alpha` in Python double precision before it meets
        # the float32 tensor; rounding it once from float64 matches that.
        decayed = _F32(1 - self.alpha) * cosine + _F32(self.alpha)
        return peak * decayed

    def __call__(self, step):
        lr0 = _F32(self.initial_learning_rate)
        d = _F32(self.decay_steps)
        s = _step(step)
        if self.warmup_target is None:
            return _F32(self._decay(np.minimum(s, d), d, lr0))
        target = _F32(self.warmup_target)
        w = _F32(self.warmup_steps)
        s = np.minimum(s, d + w)
        if s < w:
            return _F32((target - lr0) * (s / w) + lr0)
        return _F32(self._decay(s - w, d, target))

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
        lr0 = _F32(self.initial_learning_rate)
        alpha = _F32(self.alpha)
        t_mul = _F32(self.t_mul)
        m_mul = _F32(self.m_mul)
        one = _F32(1.0)
        fraction = _step(step) / _F32(self.first_decay_steps)
        if t_mul == one:
            restart = np.floor(fraction)
            fraction = fraction - restart
        else:
            # Periods grow geometrically; invert the partial sum of the
            # series to find which period `fraction` falls in.
            restart = np.floor(
                np.log(one - fraction * (one - t_mul)) / np.log(t_mul)
            )
            done = (one - np.power(t_mul, restart)) / (one - t_mul)
            fraction = (fraction - done) / np.power(t_mul, restart)
        peak = _F32(0.5) * np.power(m_mul, restart)
        cosine = peak * (one + np.cos(_F32(math.pi) * fraction))
        return _F32(lr0 * ((one - alpha) * cosine + alpha))

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
        raise TypeError(
            "`serialize` expects a LearningRateSchedule. "
            f"Received: {schedule!r} (of type {type(schedule).__name__})"
        )
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
        raise TypeError(
            "`deserialize` expects a dict with keys 'class_name' and 'config'. "
            f"Received: {config!r}"
        )
    class_name = config["class_name"]
    inner = config.get("config") or {}
    if not isinstance(inner, dict):
        raise TypeError(
            f"The 'config' entry must be a dict. Received: config={inner!r}"
        )
    cls = registry.lookup("schedule", class_name, (LearningRateSchedule,), custom_objects)
    return cls.from_config(inner)
