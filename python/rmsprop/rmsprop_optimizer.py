"""Keras 3's RMSprop update rule on top of `BaseOptimizer`."""

from .base_optimizer import BaseOptimizer
from .checks import check_bool, check_float
from .flat_state import update_pieces
from .kernels import rmsprop_update


class RMSprop(BaseOptimizer):
    """RMSprop, exactly as Keras 3 computes it (see SPEC: "The RMSprop update").

    Keeps a moving average of squared gradients (`rho`) and divides each
    gradient by its root; optionally with plain momentum and centering.
    Arguments, defaults and order are Keras'.
    """

    _default_name = "rmsprop"

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

    def _slot_kinds(self):
        kinds = ["velocity"]
        if self.momentum > 0:
            kinds.append("momentum")
        if self.centered:
            kinds.append("average_gradient")
        return kinds

    def _update_group(self, group, slots, flat_param, flat_grad, runs, lr):
        dtype = group.compute.type
        velocity = slots["velocity"]
        momentum_slot = slots.get("momentum")
        average_grad = slots.get("average_gradient")
        # Python-float hyperparameters act as weak scalars in Keras: cast to
        # the variable's dtype, with 1 - rho computed in double first.
        scalars = (dtype(lr), dtype(self.rho), dtype(1 - self.rho), dtype(self.epsilon),
                   dtype(self.momentum))
        scratch = self._scratch.get(group.compute)
        for start, stop in runs:
            rmsprop_update(update_pieces(flat_param, flat_grad, start, stop), velocity,
                           average_grad, momentum_slot, *scalars, scratch)

    def get_config(self):
        config = super().get_config()
        config.update(rho=self.rho, momentum=self.momentum, epsilon=self.epsilon,
                      centered=self.centered)
        return config
