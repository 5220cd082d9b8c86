"""`Optimizer`: Keras 3's extension point, for update rules written by users.

A subclass writes its rule as in Keras (`keras.optimizers.Optimizer`): `build`
makes its slots with `add_variable_from_reference` (or `add_optimizer_variables`,
and `add_variable` for anything else), and `update_step(gradient, variable,
learning_rate)` updates one variable with `assign`/`assign_add`/`assign_sub`.
Everything around the rule comes from `BaseOptimizer`, as for RMSprop:
gradient accumulation, clipping, weight decay, the moving average of the
weights, loss scaling (`LossScaleOptimizer`), all-or-nothing steps,
`stateless_apply` and checkpoints.

Slots live in the same flat per-dtype storage as RMSprop's (a slot kind is
one buffer per dtype group, each variable's slot a view of it), so
accumulation, EMA and checkpoints treat them alike. Only the rule differs:
`_update_group` calls `update_step` once per variable that has a gradient,
on the step's own arrays, in the order the variables were built.
"""

import re
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import config
from .base_optimizer import BaseOptimizer
from .checks import check_name, describe
from .flat_state import PREPROCESSING_SLOTS
from .variable import Variable

# Kinds the base class makes itself (EMA, gradient accumulation).
_RESERVED_KINDS = ("average", "gradient_accumulator")

Initializer = Union[str, Callable]


def _snake_case(name: str) -> str:
    """The default name of an optimizer of class `name`, as Keras makes it
    (`keras.src.utils.naming.to_snake_case`: "SGD" -> "sgd", "MyAdam" -> "my_adam")."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower() or "optimizer"


class Optimizer(BaseOptimizer):
    """The base class for your own optimizer, with Keras 3's hooks.

    Override `build` (call `super().build(variables)` first, then make the
    slots) and `update_step`; add your hyperparameters to `__init__` and
    `get_config`. For example, SGD with momentum:

    ```python
    class SGD(rmsprop.Optimizer):
        def __init__(self, learning_rate=0.01, momentum=0.9, **kwargs):
            super().__init__(learning_rate=learning_rate, **kwargs)
            self.momentum = momentum

        def build(self, variables):
            if self.built:
                return
            super().build(variables)
            self.momentums = [self.add_variable_from_reference(v, "momentum")
                              for v in variables]

        def update_step(self, gradient, variable, learning_rate):
            lr = np.asarray(learning_rate, dtype=variable.dtype)
            m = self.momentums[self._get_variable_index(variable)]
            self.assign(m, m * np.asarray(self.momentum, variable.dtype) - gradient * lr)
            self.assign_add(variable, m)

        def get_config(self):
            return {**super().get_config(), "momentum": self.momentum}
    ```

    Differences from Keras, all of them from the flat storage:

    * A slot kind (the `name` given to `add_variable_from_reference`) is one
      slot per built-on variable: the first call for a kind makes it for
      every variable (zeros), and each call returns that variable's slot.
      `variables` lists the slots kind by kind, in the order the kinds were
      made (Keras lists them in the order of the calls), after the counter,
      the learning rate and the EMA and accumulator slots, then the
      variables of `add_variable`.
    * In `update_step`, `variable` is the built-on Variable when its storage
      is what the step updates; otherwise (plain NumPy arrays as variables,
      a float64 variable computed in float32, `stateless_apply`) a stand-in
      Variable over the step's copy, with the same name, which
      `_get_variable_index` knows. Write to it with `assign*`, never keep it.
    * Inside `update_step`, the gradient, the variable and its slots are in
      the dtype the optimizer computes that variable in (`compute_dtype`, as
      for RMSprop: float64 variables under the float32 policy are computed in
      float32); `learning_rate` is a NumPy scalar of the rate's dtype.
    * Checkpoints hold the variables of `add_variable` after the slots;
      loading checks that the class makes the same ones (name, dtype,
      shape, in order), in `__init__` or in `build`.
    * A step is all-or-nothing for what the base class checks (gradients,
      the learning rate, writable variables), not for an exception raised
      by your `update_step`: the variables updated before it keep their
      update.

    Load a checkpoint of your class with
    `rmsprop.load_optimizer(path, custom_objects={"SGD": SGD})`; nothing
    else builds it.

    Args: those of `RMSprop` other than its rule's (`learning_rate`,
        `weight_decay`, `clipnorm`, `clipvalue`, `global_clipnorm`,
        `use_ema`, `ema_momentum`, `ema_overwrite_frequency`,
        `loss_scale_factor`, `gradient_accumulation_steps`, `name`); the
        default name is the class name in snake case ("SGD" -> "sgd"), as
        in Keras (without Keras' "_1", "_2" suffixes).
    """

    _reads_gradients_in_place = False
    _declares_slots = False

    def __init__(self, learning_rate, **kwargs) -> None:
        if kwargs.get("name") is None:
            kwargs["name"] = _snake_case(type(self).__name__)
        super().__init__(learning_rate, **kwargs)
        self._extra_variables: List[Variable] = []
        self._claimed: Dict[str, set] = {}
        # The stand-ins of a step by id, each with its position; holding the
        # stand-in keeps its id from going to another object during the step.
        self._stand_ins: Dict[int, Tuple[Variable, int]] = {}

    # -- Keras' hooks ----------------------------------------------------------
    def build(self, variables, compute_dtype=None) -> None:
        """Make the base class's slots (EMA, accumulators) for `variables`.

        Override it to make your own slots after `super().build(variables)`;
        Keras' own optimizers start with `if self.built: return`.

        Args:
            variables: the Variables (or writable float NumPy arrays) to train.
            compute_dtype: the dtype updates are computed in (default floatx).
        """
        if self.built:
            super().build(variables, compute_dtype=compute_dtype)   # returns, or refuses others
            return
        self._claimed = {}
        super().build(variables, compute_dtype=compute_dtype)

    def update_step(self, gradient: np.ndarray, variable: Variable, learning_rate) -> None:
        """Update `variable` from `gradient`: your rule (Keras' `update_step`).

        Args:
            gradient: the gradient of `variable`, a NumPy array of its shape,
                unscaled, accumulated, clipped as configured.
            variable: the variable to update (see the class notes).
            learning_rate: the rate of this step (a NumPy scalar).
        """
        raise NotImplementedError(f"{type(self).__name__} must define "
                                  "`update_step(gradient, variable, learning_rate)`.")

    def add_variable_from_reference(self, reference_variable, name: Optional[str] = None,
                                    initializer: Initializer = "zeros") -> Variable:
        """The slot `name` of `reference_variable`, made now (Keras'
        `add_variable_from_reference`), named `"{variable name}_{name}"`.

        Args:
            reference_variable: a variable the optimizer is built on.
            name: the slot kind, e.g. "momentum" (default "var").
            initializer: "zeros", "ones", or a callable
                `initializer(shape, dtype=dtype)` returning the initial value.

        Returns:
            The slot, a Variable of the reference's shape and dtype.

        Raises:
            ValueError: before `super().build()`, for a variable the
                optimizer is not built on, a name the base class uses
                ("average", "gradient_accumulator"), or a slot made twice.
        """
        if not self.built:
            raise ValueError("`add_variable_from_reference` needs the optimizer's storage: call "
                             "`super().build(variables)` first in your `build`.")
        name = "var" if name is None else check_name("name", name)
        if name in _RESERVED_KINDS or "/" in name:
            raise ValueError(f"`name` {name!r} cannot name a slot: "
                             f"{', '.join(map(repr, _RESERVED_KINDS))} are the base class's "
                             "and `/` is not allowed.")
        index = self._get_variable_index(reference_variable)
        if name not in self._slot_variables:
            views = self._storage.add_slot(name)
            self._slot_variables[name] = [Variable._wrap(view, f"{self._names[i]}_{name}")
                                          for i, view in enumerate(views)]
            self._generic_kinds.append(name)
        claimed = self._claimed.setdefault(name, set())
        if index in claimed:
            raise ValueError(f"Variable '{self._names[index]}' already has a slot named "
                             f"{name!r}.")
        claimed.add(index)
        slot = self._slot_variables[name][index]
        if not (isinstance(initializer, str) and initializer == "zeros"):
            slot.assign(Variable(initializer, shape=slot.shape, dtype=slot.dtype,
                                 name="initial_value").value)
        return slot

    def add_optimizer_variables(self, trainable_variables: Sequence, name: str,
                                initializer: Initializer = "zeros") -> List[Variable]:
        """Keras' `add_optimizer_variables`: the slot `name` of each variable."""
        return [self.add_variable_from_reference(v, name, initializer)
                for v in trainable_variables]

    def add_variable(self, shape, initializer: Initializer = "zeros", dtype=None,
                     aggregation: str = "none", name: Optional[str] = None) -> Variable:
        """A variable of the optimizer's own, not tied to a trained variable
        (Keras' `add_variable`), listed last in `variables`.

        Args:
            shape: its shape.
            initializer: "zeros", "ones" or a callable `f(shape, dtype=dtype)`.
            dtype: its dtype (default floatx).
            aggregation: Keras' aggregation value (stored only).
            name: its name.

        Returns:
            The new Variable (checkpoints hold it; see the class notes).
        """
        variable = Variable(initializer, shape=shape,
                            dtype=config.floatx() if dtype is None else dtype,
                            trainable=False, aggregation=aggregation, name=name)
        self._extra_variables.append(variable)
        return variable

    def assign(self, variable: Variable, value) -> None:
        """`variable.assign(value)` (Keras routes updates through these three)."""
        variable.assign(value)

    def assign_add(self, variable: Variable, value) -> None:
        """`variable.assign_add(value)`."""
        variable.assign_add(value)

    def assign_sub(self, variable: Variable, value) -> None:
        """`variable.assign_sub(value)`."""
        variable.assign_sub(value)

    def _get_variable_index(self, variable) -> int:
        """The position of `variable` (a built-on variable, or the stand-in
        `update_step` was given) among the variables the optimizer is built on."""
        stand_in = self._stand_ins.get(id(variable))
        index = stand_in[1] if stand_in is not None and stand_in[0] is variable else None
        if index is None:
            index = self._positions.get(id(variable)) if self.built else None
            if index is None or self._trainable_variables[index] is not variable:
                raise ValueError(f"Unknown variable {describe(variable)}: optimizer "
                                 f"'{self.name}' is not built on it.")
        return index

    @property
    def variables(self) -> list:
        """Keras' order: iteration, learning_rate, slots (see the class notes),
        then the variables of `add_variable`."""
        return super().variables + list(self._extra_variables)

    # -- the generic path --------------------------------------------------------
    def _slot_kinds(self):
        return list(self._generic_kinds)

    def _update_group(self, step, learning_rate, compiled):
        """Call `update_step` for each member of the group that has a gradient,
        on the step's arrays in the compute dtype (the kernel plays no part)."""
        group = step.group
        grads = step.grads
        if group.casts:
            grads = group.compute_grad_buffer()
            np.copyto(grads, step.grads, casting="unsafe")
        params = group.member_views(step.params)
        own = (not step.gathered and self._param_override is None)
        variables = self._trainable_variables
        rebound = self._slots_in_compute_dtype(step) if group.casts else []
        try:
            for position, (index, here) in enumerate(zip(group.indices, step.present)):
                if not here:
                    continue
                start, stop = group.segment(position)
                gradient = grads[start:stop].reshape(group.shapes[position])
                variable = variables[index]
                if not (own and isinstance(variable, Variable)):
                    variable = Variable._wrap(params[position], self._names[index])
                    self._stand_ins[id(variable)] = (variable, index)
                self.update_step(gradient, variable, learning_rate)
        finally:
            self._stand_ins.clear()
            for slot, value in rebound:
                slot._value = value

    def _slots_in_compute_dtype(self, step):
        """Point the group's slot Variables at the step's compute-dtype copies
        (stored back, rounded, after the step); returns what to restore."""
        group = step.group
        rebound = []
        for kind in self._generic_kinds:
            if kind in PREPROCESSING_SLOTS:
                continue
            working = step.slots[kind]
            for position, index in enumerate(group.indices):
                slot = self._slot_variables[kind][index]
                rebound.append((slot, slot._value))
                start, stop = group.segment(position)
                slot._value = working[start:stop].reshape(group.shapes[position])
        return rebound

    def _checkpoint_state(self):
        """The base class's state, plus the variables of `add_variable`
        ("optimizer_variables": name, dtype, shape and value of each)."""
        state = super()._checkpoint_state()
        if self._pending_checkpoint is None and self._extra_variables:
            state = dict(state, optimizer_variables=[
                {"name": v.name, "dtype": v.dtype, "shape": list(v.shape), "value": v.value}
                for v in self._extra_variables])
        return state

    def _restore_checkpoint_state(self, state, pending=None):
        super()._restore_checkpoint_state(state, pending)
        if pending is None:         # checked against these by checkpoint.py
            for variable, entry in zip(self._extra_variables,
                                       state.get("optimizer_variables", ())):
                np.copyto(variable.value, entry["value"])
