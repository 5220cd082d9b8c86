"""Keras 3's RMSprop update rule on top of `BaseOptimizer`."""

import numpy as np

from . import kernel_choice, kernels
from .base_optimizer import BaseOptimizer, _check_slots_exist
from .checks import check_bool, check_float
from .registry import register


def _check_momentum(optimizer, value):
    value = check_float("momentum", value, low=0)
    if value > 0:
        _check_slots_exist(optimizer, "momentum", value, "momentum", "momentum slots")
    return value


def _check_centered(optimizer, value):
    value = check_bool("centered", value)
    if value:
        _check_slots_exist(optimizer, "centered", value, "average_gradient",
                           "average-gradient slots")
    return value


@register("optimizer")
class RMSprop(BaseOptimizer):
    """RMSprop, exactly as Keras 3 computes it (`keras.optimizers.RMSprop`).

    Keeps a moving average of squared gradients (`rho`) and divides each
    gradient by its root; optionally with plain momentum and centering.
    Arguments, defaults and order are Keras'.

    Args:
        learning_rate: a float (stored in floatx, as Keras stores it), a
            `schedules.LearningRateSchedule`, or a callable taking no
            arguments that returns the rate. Default 0.001.
        rho: discounting factor of the moving average of squared gradients,
            in [0, 1]. Default 0.9.
        momentum: >= 0; with momentum > 0 a momentum slot accumulates the
            increments. Default 0.0.
        epsilon: >= 0, added to the denominator for numerical stability.
            Default 1e-7.
        centered: if True, gradients are normalised by their estimated
            variance (also keeps a moving average of the gradients).
        weight_decay: None or >= 0: decoupled weight decay,
            `var -= var * weight_decay * learning_rate` before the update.
        clipnorm: None or > 0: clip each gradient to this L2 norm.
        clipvalue: None or > 0: clip each gradient element to [-v, v].
        global_clipnorm: None or > 0: scale all gradients so that their
            joint L2 norm is at most this. At most one of the three
            clipping arguments may be set.
        use_ema: keep an exponential moving average of the variables.
        ema_momentum: in [0, 1]; the average's momentum (with `use_ema`).
        ema_overwrite_frequency: None or an integer >= 1: every that many
            steps the variables are overwritten by their averages.
        loss_scale_factor: None or > 0: gradients are divided by it
            (`scale_loss()` multiplies the loss by it).
        gradient_accumulation_steps: None or an integer >= 2: gradients
            are averaged over that many calls before one update.
        name: a string; default "rmsprop".

    Every float argument must also be representable in the float policy
    (`floatx()`): 1e39 (inf in float32) is refused. Bad arguments raise a
    ValueError or TypeError naming the argument and the value.
    """

    _default_name = "rmsprop"

    _HYPERPARAMETERS = dict(
        BaseOptimizer._HYPERPARAMETERS,
        rho=lambda opt, v: check_float("rho", v, low=0, high=1),
        epsilon=lambda opt, v: check_float("epsilon", v, low=0),
        momentum=lambda opt, v: _check_momentum(opt, v),
        centered=lambda opt, v: _check_centered(opt, v),
    )

    # The rule over flat arrays (see `kernels.rmsprop_rule` for its
    # signature), by the kernel of the step: the compiled one (which hands
    # arrays it does not take to the NumPy one), or the NumPy one.
    compiled_rule = staticmethod(kernel_choice.rmsprop_rule)
    numpy_rule = staticmethod(kernels.rmsprop_rule)

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 centered=False, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, **kwargs):
        # Checked first so that a bad rule argument is reported before the
        # base class builds anything.
        rho = check_float("rho", rho, low=0, high=1)
        momentum = check_float("momentum", momentum, low=0)
        epsilon = check_float("epsilon", epsilon, low=0)
        centered = check_bool("centered", centered)
        super().__init__(
            learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
            clipvalue=clipvalue, global_clipnorm=global_clipnorm, use_ema=use_ema,
            ema_momentum=ema_momentum, ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps, name=name, **kwargs)
        self.rho = rho
        self.momentum = momentum
        self.epsilon = epsilon
        self.centered = centered
        self._scalar_cache = {}

    def _slot_kinds(self):
        kinds = ["velocity"]
        if self.momentum > 0:
            kinds.append("momentum")
        if self.centered:
            kinds.append("average_gradient")
        return kinds

    def _rule_slots(self):
        # The rule's slot arguments, in its order; None where the rule should
        # not use one (Keras' update_step tests `centered` and `momentum > 0`
        # at every step).
        return ("velocity", "average_gradient" if self.centered else None,
                "momentum" if self.momentum > 0 else None)

    def _update_group(self, step, learning_rate, compiled):
        arrays, numbers = self._rule_scalars(step.group.compute, learning_rate)
        # On a compiled step, the whole group in one call when the kernel
        # takes its arrays (the usual step); else the rule over the group's
        # runs and packs, which hands arrays the kernel declines to NumPy.
        if compiled and self._storage.apply_fused_rule(step, self.compiled_rule,
                                                       self._rule_slots(), numbers, None):
            return
        self._storage.apply_rule(step, self.compiled_rule if compiled else self.numpy_rule,
                                 self._rule_slots(), arrays)

    def _update_in_place(self, plan):
        return plan.compiled and self._storage.update_in_place(
            plan.grads, self.compiled_rule, self._rule_slots(),
            lambda dtype: self._rule_scalars(dtype, plan.learning_rate)[1],
            self._param_override)

    def _fuses_steps(self):
        return True

    def _update_group_fused(self, step, learning_rate, fused):
        return self._storage.apply_fused_rule(
            step, self.compiled_rule, self._rule_slots(),
            self._rule_scalars(step.group.compute, learning_rate)[1], fused)

    def _rule_scalars(self, dtype, lr):
        """lr, rho, 1 - rho, epsilon and momentum rounded to `dtype`, as 0-d
        arrays (for the NumPy rule) and as Python floats holding the same
        values (the compiled kernel reads floats faster, and rounds them back
        to `dtype` exactly); kept while they stay the same (small steps feel
        the cost of making them)."""
        key = (lr, self.rho, self.epsilon, self.momentum)
        cached = self._scalar_cache.get(dtype)
        if cached is None or cached[0] != key:
            # Python-float hyperparameters act as weak scalars in Keras: cast to
            # the variable's dtype, with 1 - rho computed in double first.
            values = (lr, self.rho, 1 - self.rho, self.epsilon, self.momentum)
            arrays = tuple(np.asarray(dtype.type(v)) for v in values)
            cached = (key, (arrays, tuple(map(float, arrays))))
            self._scalar_cache[dtype] = cached
        return cached[1]

    def get_config(self):
        config = super().get_config()
        config.update(rho=self.rho, momentum=self.momentum, epsilon=self.epsilon,
                      centered=self.centered)
        return config
