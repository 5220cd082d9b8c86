"""Dynamic loss scaling around another optimizer, as Keras' LossScaleOptimizer.

The loss is multiplied by a scale before differentiation so that small
gradients survive in low precision; the gradients are divided by it again
before the inner optimizer sees them. A step with any inf/NaN gradient is
skipped and the scale halved; after `dynamic_growth_steps` good steps in a row
the scale doubles.
"""

import threading

import numpy as np

from .base_optimizer import BaseOptimizer
from .checks import argument_error, check_float, check_int, check_name
from .kernels import CHUNK
from .registry import lookup, register
from .variable import Variable

# The base optimizer's arguments and their defaults, which Keras accepts from
# older configs (LossScaleOptimizer.__init__, "Backwards compatibility").
_BASE_DEFAULTS = {"weight_decay": None, "clipnorm": None, "global_clipnorm": None,
                  "clipvalue": None, "use_ema": False, "ema_momentum": 0.99,
                  "ema_overwrite_frequency": None, "loss_scale_factor": None,
                  "gradient_accumulation_steps": None}
_BASE_ARGUMENTS = ("learning_rate", "weight_decay", "clipnorm", "clipvalue", "global_clipnorm",
                   "use_ema", "ema_momentum", "ema_overwrite_frequency", "loss_scale_factor",
                   "gradient_accumulation_steps")


@register("optimizer")
class LossScaleOptimizer:
    """Wraps `inner_optimizer` (e.g. an RMSprop) with dynamic loss scaling.

    Multiply the loss by the current scale (`scale_loss(loss)`) before taking
    gradients, and pass those gradients to `apply`/`apply_gradients`: they are
    divided by the scale and applied when all are finite; otherwise the step
    is skipped and the scale halved. After `dynamic_growth_steps` applied
    steps in a row the scale doubles.

    Args:
        inner_optimizer: the optimizer that applies the unscaled gradients
            (its own `loss_scale_factor` is switched off).
        initial_scale: the starting scale, a positive float32 number
            (default 2**15).
        dynamic_growth_steps: how many applied steps in a row double the
            scale (default 2000).
        name: a string; by default "loss_scale_optimizer".

    The scale has no floor and no ceiling, as in Keras. After many skipped
    steps in a row (165 from 2**15) it reaches 0 and stays 0: `scale_loss`
    then returns 0, gradients become 0 / 0 = NaN when unscaled, and the
    variables become NaN. With `dynamic_growth_steps=1` and gradients that
    stay finite (e.g. all zero) it reaches inf after about 113 steps and stays
    there: every gradient is divided to 0 and training silently stops. Watch
    `dynamic_scale`; to recover, remove the cause of the non-finite gradients,
    `dynamic_scale.assign(2.0 ** 15)` (any usable scale), and reload the
    variables from a checkpoint if they became NaN.
    """

    def __init__(self, inner_optimizer, initial_scale=2.0 ** 15, dynamic_growth_steps=2000,
                 name=None, **kwargs):
        # Keras' messages and leniency: `dynamic=False` is gone, and the base
        # optimizer's arguments at their defaults (as older configs carry
        # them) are accepted and ignored.
        if not kwargs.pop("dynamic", True):
            raise ValueError("LossScaleOptimizer no longer supports `dynamic=False`. Instead, "
                             "simply set `loss_scale_factor` directly on the `inner_optimizer`.")
        for key, default in _BASE_DEFAULTS.items():
            if key in kwargs:
                value = kwargs.pop(key)
                if value is not default and value != default:
                    raise ValueError(f"LossScaleOptimizer does not support `{key}`. Instead, "
                                     f"set `{key}` on the `inner_optimizer`.")
        for key in kwargs:
            if key in _BASE_ARGUMENTS:
                raise ValueError(f"LossScaleOptimizer does not accept `{key}`; set it on the "
                                 "inner optimizer instead.")
        if kwargs:
            raise ValueError(f"Argument(s) not recognized: {', '.join(sorted(kwargs))}.")
        if not isinstance(inner_optimizer, BaseOptimizer):
            raise argument_error(TypeError, "inner_optimizer",
                                 "an optimizer such as rmsprop.RMSprop", inner_optimizer)
        self.inner_optimizer = inner_optimizer
        self.initial_scale = check_float("initial_scale", initial_scale, low=0, low_open=True,
                                         dtype="float32", normal=True)
        self.dynamic_growth_steps = check_int("dynamic_growth_steps", dynamic_growth_steps, low=1)
        self.name = check_name("name", name, optional=True) or "loss_scale_optimizer"
        # The scale is applied here; a second, static division would scale twice.
        inner_optimizer.loss_scale_factor = None
        # Keras' wrapper is an optimizer itself, with its own (unused)
        # iteration counter and learning rate among its variables.
        self._own_iterations = Variable(0, dtype="int64", name="iteration")
        self._own_learning_rate = Variable(0.0, dtype="float32", name="learning_rate")
        self.step_counter = Variable(0, dtype="int64", name="step_counter")
        self.dynamic_scale = Variable(self.initial_scale, dtype="float32", name="dynamic_scale")
        self._finite_flags = np.empty(CHUNK, dtype=bool)
        self._lock = threading.RLock()     # one step at a time, as the inner optimizer

    def __setattr__(self, name, value):
        # Checked as in the constructor; the inner optimizer's arguments
        # belong to it (set here, they would be silently ignored).
        if name == "initial_scale":
            value = check_float("initial_scale", value, low=0, low_open=True)
        elif name == "dynamic_growth_steps":
            value = check_int("dynamic_growth_steps", value, low=1)
        elif name == "name":
            value = check_name("name", value)
        elif (name != "learning_rate" and name in _BASE_ARGUMENTS) or name in getattr(
                type(getattr(self, "inner_optimizer", None)), "_HYPERPARAMETERS", ()):
            raise AttributeError(f"`{name}` belongs to the inner optimizer: set "
                                 f"`inner_optimizer.{name}` instead.")
        object.__setattr__(self, name, value)

    # -- what Keras users reach through the wrapper --------------------------
    @property
    def built(self):
        return self.inner_optimizer.built

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        self.inner_optimizer.learning_rate = value

    @property
    def variables(self):
        """Keras' order: [iteration, learning_rate, step_counter, dynamic_scale]
        (the wrapper's own), then the inner optimizer's variables."""
        return ([self._own_iterations, self._own_learning_rate, self.step_counter,
                 self.dynamic_scale] + self.inner_optimizer.variables)

    def stateless_apply(self, optimizer_variables, grads, trainable_variables):
        """Keras' `stateless_apply`: one step (skipped on non-finite gradients)
        computed without changing anything given; returns (new trainable
        values, new values of `variables`)."""
        with self._lock:
            return self.inner_optimizer._stateless_run(
                self.variables, optimizer_variables, trainable_variables,
                lambda: self.apply(grads))

    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        """The inner optimizer's (it is the one that decays)."""
        self.inner_optimizer.exclude_from_weight_decay(var_list=var_list, var_names=var_names)

    def build(self, variables, compute_dtype=None):
        self.inner_optimizer.build(variables, compute_dtype=compute_dtype)

    def _state_before_build(self):
        return self.inner_optimizer._state_before_build()

    def _unbuild(self, before) -> None:
        self.inner_optimizer._unbuild(before)

    def scale_loss(self, loss):
        """The loss multiplied by the current scale (differentiate this one)."""
        return loss * self.dynamic_scale.value[()]

    def finalize_variable_values(self, var_list=None):
        self.inner_optimizer.finalize_variable_values(var_list)

    # Keras' (grad, variable)-pairs form: the same as the base optimizer's,
    # which calls `apply` and returns `_counter()`.
    apply_gradients = BaseOptimizer.apply_gradients

    def _counter(self):
        # Keras' wrapper returns its own `_iterations`, which its `apply`
        # never increments (always 0); the inner optimizer's counter is the
        # one that counts the steps, as the wrapper's `iterations` does.
        return self.inner_optimizer._counter()

    def apply(self, grads, trainable_variables=None):
        """Unscale and apply `grads` when all are finite; otherwise skip the step
        (Keras' `LossScaleOptimizer.apply`). All-or-nothing, like the inner
        optimizer's step: the scale and counter change only once it succeeded."""
        with self._lock:
            scale = self.dynamic_scale.value
            counter = int(self.step_counter.value)
            applied = self.inner_optimizer._apply_unscaled(grads, trainable_variables, scale[()],
                                                           self._finite_flags)
            if applied is None:            # no gradients at all: a no-op, as in Keras
                return
            if not applied:
                self.step_counter.value[()] = 0
                scale *= np.float32(0.5)
            elif counter == self.dynamic_growth_steps - 1:
                self.step_counter.value[()] = 0
                with np.errstate(over="ignore"):   # float32 overflow gives inf, as in Keras
                    scale *= np.float32(2)
            else:
                self.step_counter.value[()] = counter + 1

    # -- config and checkpoints ----------------------------------------------
    def get_config(self):
        return {
            "name": self.name,
            "inner_optimizer": {"class_name": type(self.inner_optimizer).__name__,
                                "config": self.inner_optimizer.get_config()},
            "initial_scale": self.initial_scale,
            "dynamic_growth_steps": self.dynamic_growth_steps,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """Rebuild from `get_config()`; the inner optimizer's class is looked up by
        name among the engine's optimizers or in `custom_objects`."""
        config = dict(config)
        inner = config.pop("inner_optimizer")
        if isinstance(inner, dict):
            inner_class = lookup("optimizer", inner.get("class_name"), (BaseOptimizer,),
                                 custom_objects)
            inner = inner_class.from_config(inner.get("config"), custom_objects=custom_objects)
        return cls(inner, **config)

    def __repr__(self):
        return (f"<LossScaleOptimizer name={self.name!r} dynamic_scale="
                f"{float(self.dynamic_scale.value)} inner={self.inner_optimizer!r}>")
