"""What every optimizer does around its update rule, as Keras 3 orders it.

`BaseOptimizer.apply` owns the cross-cutting steps: building slots, dropping
missing gradients, loss-scale division, gradient accumulation, clipping,
decoupled weight decay, the exponential moving average of the weights and the
iteration counter. A subclass supplies only its slots and `_update_group`,
the update rule applied to one flat dtype group (see `flat_state.py`).
"""

import itertools
import operator
import re
import warnings

import numpy as np

from . import config, schedules
from .checks import (check_bool, check_float, check_int, check_name, describe,
                     is_real_number)
from .flat_state import DtypeGroup, PackedGradients
from .kernels import (Scratch, clip_by_norm, decay_weights, moving_average,
                      sum_of_squares)
from .variable import Variable, storage_epoch

_FLOAT_DTYPES = ("float16", "float32", "float64")
_SHAPE = operator.attrgetter("shape")
_DTYPE = operator.attrgetter("dtype")


def _variable_name(variable, index):
    return variable.name if isinstance(variable, Variable) else f"variable_{index}"


def _keras_gradient_dtype(group, unscaled):
    """The dtype Keras' gradients of `group` have when they are clipped.

    A LossScaleOptimizer unscales with `ops.divide(g, dynamic_scale)`, whose
    dtype is result_type(g, float32) (keras/src/optimizers/loss_scale_optimizer.py,
    `_stateful_handle_finite_grads`): float16 gradients become float32. The
    engine stores them back in float16, exactly when the scale is a power of two.
    """
    if unscaled and group.dtype == np.float16:
        return np.dtype(np.float32)
    return group.dtype


def _global_norm_input_dtype(group, unscaled):
    """The dtype in which Keras squares and sums a gradient of `group` for the
    global norm: `ops.square` converts its input with `convert_to_tensor`, and
    Keras' `dtypes.result_type` turns float64 into float32 outside TensorFlow
    (keras/src/backend/common/dtypes.py, BIT64_TO_BIT32_DTYPE, as JAX does).
    An optimizer built with compute_dtype float64 keeps float64."""
    dtype = _keras_gradient_dtype(group, unscaled)
    if dtype == np.float64 and group.policy != np.float64:
        return np.dtype(np.float32)
    return dtype


class BaseOptimizer:
    """Keras' optimizer base class, for NumPy arrays and `rmsprop.Variable`s."""

    _default_name = "optimizer"

    def __init__(self, learning_rate, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, **kwargs):
        if "decay" in kwargs:
            kwargs.pop("decay")
            warnings.warn("`decay` is not supported in Keras 3 optimizers and is ignored; "
                          "use a learning rate schedule instead.", stacklevel=3)
        if kwargs:
            raise ValueError(f"Argument(s) not recognized: {', '.join(sorted(kwargs))}.")
        self.name = check_name("name", name, optional=True) or self._default_name
        self.weight_decay = check_float("weight_decay", weight_decay, low=0, optional=True)
        self.clipnorm = check_float("clipnorm", clipnorm, low=0, low_open=True, optional=True)
        self.clipvalue = check_float("clipvalue", clipvalue, low=0, low_open=True, optional=True)
        self.global_clipnorm = check_float("global_clipnorm", global_clipnorm, low=0,
                                           low_open=True, optional=True)
        clip_arguments = {"clipnorm": self.clipnorm, "clipvalue": self.clipvalue,
                          "global_clipnorm": self.global_clipnorm}
        if sum(v is not None for v in clip_arguments.values()) > 1:
            given = ", ".join(f"{k}={v}" for k, v in clip_arguments.items() if v is not None)
            raise ValueError(f"Only one of `clipnorm`, `clipvalue` and `global_clipnorm` "
                             f"can be set; got {given}.")
        self.use_ema = check_bool("use_ema", use_ema)
        self.ema_momentum = check_float("ema_momentum", ema_momentum, low=0, high=1)
        self.ema_overwrite_frequency = check_int("ema_overwrite_frequency",
                                                 ema_overwrite_frequency, low=1, optional=True)
        self.loss_scale_factor = check_float("loss_scale_factor", loss_scale_factor, low=0,
                                             low_open=True, optional=True)
        if (gradient_accumulation_steps not in (None, 0)
                or isinstance(gradient_accumulation_steps, bool)):
            check_int("gradient_accumulation_steps", gradient_accumulation_steps, low=2)
            gradient_accumulation_steps = int(gradient_accumulation_steps)
        self.gradient_accumulation_steps = gradient_accumulation_steps

        self._iterations = Variable(0, dtype="int64", name="iteration")
        self._learning_rate = None
        self.learning_rate = learning_rate
        self.built = False
        self._trainable_variables = []
        self._exclude_from_decay = ([], ())
        self._scratch = Scratch()
        self._param_override = None     # plain arrays used by stateless_apply
        self._pending_state = None      # optimizer variables restored from a checkpoint

    # ------------------------------------------------------------------
    # Learning rate and iterations
    # ------------------------------------------------------------------
    @property
    def learning_rate(self):
        """The current rate: the stored value, the schedule's value now, or the callable's."""
        return self._read_learning_rate()

    @learning_rate.setter
    def learning_rate(self, value):
        if isinstance(value, schedules.LearningRateSchedule) or (
                callable(value) and not isinstance(value, Variable)):
            self._learning_rate = value
            return
        if isinstance(self._learning_rate, schedules.LearningRateSchedule):
            raise TypeError("This optimizer was created with a learning rate schedule, so its "
                            "learning rate cannot be set to a number; got "
                            f"learning_rate={describe(value)}.")
        if isinstance(value, Variable):
            value = value.numpy()
        if isinstance(value, np.ndarray) and value.ndim == 0:
            value = value[()]
        if not is_real_number(value):
            raise TypeError("`learning_rate` must be a number, a LearningRateSchedule or a "
                            f"callable taking no arguments; got {describe(value)}.")
        number = check_float("learning_rate", value, low=0)
        if isinstance(self._learning_rate, Variable):
            self._learning_rate.assign(number)
        else:
            # Keras stores a numeric rate in a floatx variable: 0.001 becomes
            # 0.0010000000474974513 in float32, and that is what updates see.
            self._learning_rate = Variable(number, dtype=config.floatx(), name="learning_rate")

    def _read_learning_rate(self):
        rate = self._learning_rate
        if isinstance(rate, Variable):
            return rate.value[()]
        if isinstance(rate, schedules.LearningRateSchedule):
            return rate(self._raw_iterations())
        value = rate()
        if isinstance(value, np.ndarray) and value.ndim == 0:
            value = value[()]
        if not is_real_number(value):
            raise TypeError("The `learning_rate` callable must return a number; "
                            f"it returned {describe(value)}.")
        return value

    def _raw_iterations(self):
        return int(self._iterations.value)

    @property
    def iterations(self):
        """Completed optimizer steps (accumulation steps count once per update)."""
        raw = self._raw_iterations()
        return raw // self.gradient_accumulation_steps if self.gradient_accumulation_steps else raw

    # ------------------------------------------------------------------
    # Building
    # ------------------------------------------------------------------
    def _slot_kinds(self):
        """Per-variable slots of the update rule, in Keras' variable order."""
        return ()

    def _all_slot_kinds(self):
        kinds = []
        if self.use_ema:
            kinds.append("average")
        if self.gradient_accumulation_steps:
            kinds.append("gradient_accumulator")
        return kinds + list(self._slot_kinds())

    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        """Exempt variables from weight decay: those in `var_list`, and those whose
        name contains a match of any regular expression in `var_names`."""
        if self.built:
            raise ValueError("`exclude_from_weight_decay()` can only be called before the "
                             "optimizer is built.")
        if isinstance(var_names, str):
            var_names = [var_names]          # one name, not a set of characters
        names = list(var_names or [])
        for item in names:
            if not isinstance(item, str):
                raise TypeError(f"`var_names` must be strings; got {describe(item)}.")
            try:
                re.compile(item)
            except re.error as error:
                raise ValueError(f"`var_names` entry {item!r} is not a valid regular "
                                 f"expression: {error}.") from None
        if var_list is not None and not isinstance(var_list, (list, tuple)):
            raise TypeError(f"`var_list` must be a list of variables; got {describe(var_list)}.")
        variables = list(var_list) if var_list is not None else []
        self._exclude_from_decay = (variables, tuple(names))

    def build(self, variables, compute_dtype=None):
        """Create the slots for `variables` (Variables or writable float NumPy arrays).

        Updates are computed in `compute_dtype`, by default `floatx()` at build
        time, as Keras computes in its float policy; each variable and slot keeps
        its own dtype for storage.
        """
        if self.built:
            raise ValueError(f"Optimizer '{self.name}' is already built; create a new optimizer "
                             "to train other variables.")
        if compute_dtype is None:
            compute_dtype = config.floatx()
        elif compute_dtype not in _FLOAT_DTYPES and not (
                isinstance(compute_dtype, (type, np.dtype))
                and np.dtype(compute_dtype).name in _FLOAT_DTYPES):
            raise ValueError(f"`compute_dtype` must be one of {', '.join(_FLOAT_DTYPES)}; "
                             f"got {describe(compute_dtype)}.")
        variables = list(variables)
        if not variables:
            raise ValueError("`variables` is empty: the optimizer needs at least one variable.")
        seen = set()
        for index, variable in enumerate(variables):
            self._check_trainable(variable, index)
            if id(variable) in seen:
                raise ValueError(f"Variable '{_variable_name(variable, index)}' (position "
                                 f"{index}) appears more than once in `variables`.")
            seen.add(id(variable))
        self._trainable_variables = variables
        self._positions = {id(v): i for i, v in enumerate(variables)}
        self._names = [_variable_name(v, i) for i, v in enumerate(variables)]
        self._shapes = [tuple(np.shape(v)) for v in variables]
        self._dtypes = [np.dtype(v.dtype) for v in variables]

        by_dtype = {}
        for index, dtype in enumerate(self._dtypes):
            by_dtype.setdefault(dtype, []).append(index)
        self._groups = [DtypeGroup(dtype, indices, [self._shapes[i] for i in indices],
                                   compute_dtype)
                        for dtype, indices in by_dtype.items()]
        self._group_of = {}
        for group in self._groups:
            for position, index in enumerate(group.indices):
                self._group_of[index] = (group, position)
            group.rehome([variables[i] for i in group.indices])
        self._epoch_seen = storage_epoch()

        self._slot_variables = {}
        for kind in self._all_slot_kinds():
            for group in self._groups:
                group.add_slot(kind)
            self._slot_variables[kind] = [
                Variable._wrap(self._slot_view(kind, i), f"{self._names[i]}_{kind}")
                for i in range(len(variables))]

        excluded_vars, excluded_names = self._exclude_from_decay
        excluded_ids = {id(v) for v in excluded_vars}
        self._decays = [not (id(v) in excluded_ids or
                             any(re.search(p, self._names[i]) for p in excluded_names))
                        for i, v in enumerate(variables)]
        self.built = True
        if self._pending_state is not None:
            try:
                self._restore_variables(self._pending_state)
            except Exception:
                # Stay unbuilt, checkpoint still pending, so the caller can retry
                # with the right variables.
                self.built = False
                raise
            self._pending_state = None

    def _check_trainable(self, variable, index):
        if isinstance(variable, Variable):
            array, what = variable.value, f"Variable '{variable.name}'"
        elif isinstance(variable, np.ndarray):
            array, what = variable, f"the NumPy array at position {index}"
        else:
            raise TypeError(f"Variables must be rmsprop.Variable objects or writable NumPy float "
                            f"arrays; got {describe(variable)} at position {index}.")
        if array.dtype.name not in _FLOAT_DTYPES:
            raise TypeError(f"{what} has dtype {array.dtype}; only float16, float32 and float64 "
                            "variables can be trained.")
        if not array.flags.writeable:
            raise ValueError(f"{what} is read-only; the optimizer updates variables in place. "
                             "Pass a writable copy (e.g. np.array(x)).")

    def _slot_view(self, kind, index):
        group, position = self._group_of[index]
        return group.slot_view(kind, position)

    @property
    def variables(self):
        """The optimizer's own state, in Keras' order (iteration, learning_rate, slots)."""
        result = [self._iterations]
        if isinstance(self._learning_rate, Variable):
            result.append(self._learning_rate)
        if self.built:
            for kind in self._all_slot_kinds():
                result.extend(self._slot_variables[kind])
        return result

    # ------------------------------------------------------------------
    # Applying gradients
    # ------------------------------------------------------------------
    def apply_gradients(self, grads_and_vars):
        """Keras' `apply_gradients([(grad, variable), ...])`."""
        pairs = list(grads_and_vars)
        grads = [g for g, _ in pairs]
        variables = [v for _, v in pairs]
        self.apply(grads, variables)
        return self.iterations

    def apply(self, grads, trainable_variables=None):
        """Apply one step of `grads` to `trainable_variables` (default: those built on).

        Gradients are only read, never written: read-only arrays are fine.
        """
        self._apply_by_position(self._gradients_by_position(grads, trainable_variables))

    def _gradients_by_position(self, grads, trainable_variables):
        """Build if needed, check, and lay out `grads` by variable position (None = no gradient)."""
        grads = list(grads)
        if trainable_variables is None:
            if not self.built:
                raise ValueError("When `trainable_variables` is not given, the optimizer must "
                                 "already be built (call `build(variables)` first).")
            positions = range(len(self._trainable_variables))
        else:
            trainable_variables = list(trainable_variables)
            if not self.built:
                self.build(trainable_variables)
            if self._same_variables(trainable_variables):
                positions = range(len(self._trainable_variables))
            else:
                positions = self._positions_of(trainable_variables)
        if len(grads) != len(positions):
            raise ValueError(f"Got {len(grads)} gradients for {len(positions)} variables; "
                             "pass one gradient (or None) per variable.")
        if type(positions) is range and self._plain_gradients(grads):
            return grads          # the common case, checked in bulk (see below)
        by_position = [None] * len(self._trainable_variables)
        missing = []
        for grad, index in zip(grads, positions):
            if grad is None:
                missing.append(self._names[index])
            else:
                by_position[index] = self._checked_gradient(grad, index)
        if missing:
            if len(missing) == len(positions):
                raise ValueError("No gradients provided for any variable.")
            warnings.warn(f"Gradients do not exist for variables {missing}; they are left "
                          "unchanged this step.", stacklevel=3)
        return by_position

    def _same_variables(self, variables):
        """True when `variables` are the built-on variables, in build order (the
        usual call): their positions are then 0..n-1 without a lookup each."""
        own = self._trainable_variables
        return len(variables) == len(own) and all(map(operator.is_, variables, own))

    def _plain_gradients(self, grads):
        """True when every gradient is a NumPy array of its variable's shape and a
        numeric dtype: what `_checked_gradient` would accept unchanged (step fast
        path; anything else takes the per-gradient checks and their messages)."""
        # map() with C-level callables: with hundreds of tensors a step, a
        # Python-level loop here costs as much as the update of small tensors.
        if set(map(type, grads)) != {np.ndarray}:
            return False
        return (list(map(_SHAPE, grads)) == self._shapes
                and all(dtype.kind in "fiu" for dtype in set(map(_DTYPE, grads))))

    def _positions_of(self, variables):
        positions = []
        lookup = self._positions
        for index, variable in enumerate(variables):
            position = lookup.get(id(variable))
            if position is None or self._trainable_variables[position] is not variable:
                raise ValueError(
                    f"Unknown variable {_variable_name(variable, index)!r} at position {index}: "
                    f"optimizer '{self.name}' was built with other variables. Use the same "
                    "variable objects it was built with, or a new optimizer.")
            positions.append(position)
        if len(set(positions)) != len(positions):
            raise ValueError("A variable appears more than once in `trainable_variables`.")
        return positions

    def _checked_gradient(self, grad, index):
        array = grad if type(grad) is np.ndarray else np.asarray(grad)
        if array.shape != self._shapes[index]:
            raise ValueError(f"Gradient for variable '{self._names[index]}' has shape "
                             f"{array.shape}, but the variable has shape {self._shapes[index]}.")
        if array.dtype.kind not in "fiu":
            raise TypeError(f"Gradient for variable '{self._names[index]}' must be numeric; got "
                            f"dtype {array.dtype}.")
        return array

    def _param_array(self, index):
        if self._param_override is not None:
            return self._param_override[index]
        variable = self._trainable_variables[index]
        return variable.value if isinstance(variable, Variable) else variable

    def _flat_gradients(self, group, grads, private):
        """The group's gradients as one flat array of its dtype (a private copy if
        `private`, since later steps then write into it), or, when only the
        update rule reads them, as `PackedGradients` that the update gathers
        chunk by chunk."""
        members = group.indices
        if len(members) == 1 and not private:
            grad = grads[members[0]]
            if grad is None:
                return None
            if grad.dtype == group.dtype and grad.flags.c_contiguous:
                return grad.reshape(-1)
        present = [grads[i] for i in members]
        complete = not any(map(operator.is_, present, itertools.repeat(None)))
        if complete and not private:
            packed = group.packed_gradients(grads, self._scratch.gather(group.compute)[0])
            if packed is not None:
                return packed
        buffer = group.grad_buffer()
        if complete:
            # axis=None flattens each input in C order, as reshape(-1) would.
            np.concatenate(present, axis=None, out=buffer, casting="unsafe")
        else:
            for position, grad in enumerate(present):
                if grad is not None:
                    start, stop = group.segment(position)
                    np.copyto(buffer[start:stop], grad.reshape(-1), casting="unsafe")
        return buffer

    def _param_arrays(self):
        """The array each trainable value is stored in, by position."""
        if self._param_override is not None:
            return self._param_override
        variables = self._trainable_variables
        if not any(map(isinstance, variables, itertools.repeat(Variable))):
            return variables
        return [self._param_array(i) for i in range(len(variables))]

    def _flat_params(self, group):
        """(flat parameter array, whether it is a gathered copy to scatter back)."""
        if self._param_override is None and group.param_buffer is not None:
            return group.param_buffer, False
        arrays = [self._param_array(i) for i in group.indices]
        if len(arrays) == 1 and arrays[0].flags.c_contiguous and not group.casts:
            return arrays[0].reshape(-1), False
        buffer = group.gather_buffer()
        np.concatenate(arrays, axis=None, out=buffer, casting="unsafe")
        return buffer, True

    def _scatter_params(self, group, flat, written):
        # Only what the step wrote goes back: a value that was merely read
        # must keep its stored precision.
        for index, view, here in zip(group.indices, group.member_views(flat), written):
            if here:
                np.copyto(self._param_array(index), view, casting="unsafe")

    def _check_storage(self):
        # Another optimizer may have moved our Variables into its own buffers.
        if self._epoch_seen != storage_epoch():
            for group in self._groups:
                members = [self._trainable_variables[i] for i in group.indices]
                if group.param_buffer is not None and not group.owns_storage_of(members):
                    group.param_buffer = None
            self._epoch_seen = storage_epoch()

    def _apply_by_position(self, grads, unscale=None):
        """One step; `grads[i]` is the checked gradient of variable i, or None.

        `unscale` is the dynamic loss scale of a wrapping LossScaleOptimizer.
        """
        self._check_storage()
        steps = self.gradient_accumulation_steps
        raw = self._raw_iterations()
        private = bool(self.loss_scale_factor is not None or unscale is not None or steps
                       or self.clipnorm is not None or self.clipvalue is not None
                       or self.global_clipnorm is not None)
        is_update_step = not steps or (raw + 1) % steps == 0
        # Slots are only read on update steps and for the EMA; accumulation
        # works on the stored accumulators directly.
        touches_slots = is_update_step or self.use_ema
        work = []
        slots = {}
        for group in self._groups:
            present = [grads[i] is not None for i in group.indices]
            work.append((group, present, group.runs(present),
                         self._flat_gradients(group, grads, private)))
            if touches_slots:
                slots[id(group)] = group.load_working_slots()

        if self.loss_scale_factor is not None or unscale is not None:
            # A static factor divides as a weak Python scalar (in the gradient's
            # dtype); a LossScaleOptimizer divides by its float32 scale
            # variable, so half gradients are divided in float32 and rounded back.
            for group, _, runs, flat_grad in work:
                if unscale is None:
                    divisor = group.dtype.type(self.loss_scale_factor)
                    compute = group.dtype
                else:
                    divisor = np.float32(unscale)
                    compute = np.result_type(group.dtype, np.float32)
                for start, stop in runs:
                    np.divide(flat_grad[start:stop], divisor, out=flat_grad[start:stop],
                              dtype=compute, casting="unsafe")

        if steps:
            for group, _, runs, flat_grad in work:
                accumulator = group.slots["gradient_accumulator"]
                for start, stop in runs:
                    g, acc = flat_grad[start:stop], accumulator[start:stop]
                    if is_update_step:       # g = (g + acc) / steps
                        np.add(g, acc, out=g)
                        np.divide(g, group.dtype.type(steps), out=g)
                    else:                    # acc = acc + g
                        np.add(acc, g, out=acc)

        params = {}
        if is_update_step or self.use_ema:
            # Plain arrays are updated chunk by chunk along with their gradients
            # when only the update rule touches them this step.
            pack_params = self.weight_decay is None and not self.use_ema
            for position, (group, present, runs, flat_grad) in enumerate(work):
                if (pack_params and group.param_buffer is None
                        and isinstance(flat_grad, PackedGradients)):
                    packed = flat_grad.with_params(self._param_arrays(),
                                                   self._scratch.gather(group.compute)[1])
                    if packed is not None:
                        work[position] = (group, present, runs, packed)
                        params[id(group)] = (None, False)
                        continue
                params[id(group)] = self._flat_params(group)

        if is_update_step:
            self._clip_gradients(work, unscaled=unscale is not None)
            # A number or a schedule gives the same rate all step: read once. A
            # callable is called as often as Keras reads the rate.
            rate_is_callable = not isinstance(
                self._learning_rate, (Variable, schedules.LearningRateSchedule))
            lr = None if rate_is_callable else self._read_learning_rate()
            if self.weight_decay is not None:
                self._apply_weight_decay(work, params, lr)
            if rate_is_callable:
                lr = self._read_learning_rate()
            for group, _, runs, flat_grad in work:
                if runs:
                    self._update_group(group, slots[id(group)], params[id(group)][0],
                                       group.compute_grads(flat_grad), runs, lr)
            if steps:
                for group in self._groups:
                    group.slots["gradient_accumulator"].fill(0)

        overwrite = False
        if self.use_ema:
            iterations = raw // steps if steps else raw
            overwrite = (self.ema_overwrite_frequency is not None
                         and (iterations + 1) % self.ema_overwrite_frequency == 0)
            for group in self._groups:
                dtype = group.compute.type
                decay = dtype(self.ema_momentum) if iterations != 0 else dtype(0)
                flat_param = params[id(group)][0]
                average = slots[id(group)]["average"]
                moving_average(average, flat_param, decay, dtype(1) - decay,
                               self._scratch.get(group.compute))
                if overwrite:
                    np.copyto(flat_param, average)

        for group, present, _, _ in work:
            if touches_slots:
                group.store_working_slots()
            flat_param, gathered = params.get(id(group), (None, False))
            if gathered and (is_update_step or overwrite):
                self._scatter_params(group, flat_param,
                                     [True] * len(present) if overwrite else present)
        self._iterations.value[()] = raw + 1

    def _clip_gradients(self, work, unscaled=False):
        if self.clipvalue is not None:
            for group, _, runs, flat_grad in work:
                limit = group.dtype.type(self.clipvalue)
                for start, stop in runs:
                    g = flat_grad[start:stop]
                    np.minimum(g, limit, out=g)
                    np.maximum(g, -limit, out=g)
        elif self.clipnorm is not None:
            # Per-tensor clipping matches Keras in the policy dtype (floatx: a
            # float64 or float16 gradient is clipped in float32), unlike the
            # other preprocessing steps; the reference trajectories show this.
            for group, present, _, flat_grad in work:
                scratch = self._scratch.get(group.policy)
                limit = group.policy.type(self.clipnorm)
                for position, here in enumerate(present):
                    if here:
                        start, stop = group.segment(position)
                        clip_by_norm(flat_grad[start:stop], limit, scratch)
        elif self.global_clipnorm is not None:
            self._clip_by_global_norm(work, unscaled)

    def _clip_by_global_norm(self, work, unscaled):
        """Keras' `clip_by_global_norm` (keras/src/optimizers/base_optimizer.py)
        with the dtypes its NumPy backend gives each operation.

        `unscaled` says a LossScaleOptimizer divided the gradients this step.
        """
        present = [(group, flat_grad, [p for p, here in enumerate(flags) if here])
                   for group, flags, _, flat_grad in work if any(flags)]
        # `global_norm`: ops.sum(ops.square(g)) per gradient, in the dtype that
        # `convert_to_tensor` gives it (see `_global_norm_input_dtype`).
        sums = []
        for group, flat_grad, positions in present:
            scratch = self._scratch.get(_global_norm_input_dtype(group, unscaled))
            sums.extend(sum_of_squares(flat_grad[slice(*group.segment(p))], scratch)
                        for p in positions)
        # ops.stack promotes the sums to one dtype (backend.numpy.stack:
        # dtypes.result_type), float16 only when all of them are; ops.sum and
        # ops.sqrt stay in it (sqrt: result_type(x.dtype, float) keeps a float dtype).
        dtype = np.result_type(*{s.dtype for s in sums})
        norm = np.sqrt(np.sum(np.array(sums, dtype=dtype)))
        real = dtype.type
        # scale = clip_norm * minimum(1.0 / norm, 1.0 / clip_norm) + (norm - norm).
        # Keras ran on NumPy 2, where the Python floats are weak: `1.0 / norm`
        # and `clip_norm * ...` round clip_norm and 1.0 to the norm's dtype;
        # ops.minimum converts 1.0 / clip_norm (a double) to it. Every operand is
        # typed here, so NumPy 1.x computes the same. The last term makes the
        # scale NaN when the norm is inf or NaN, poisoning every gradient.
        scale = real(self.global_clipnorm) * np.minimum(
            real(1.0) / norm, real(1.0 / self.global_clipnorm)) + (norm - norm)
        # `g * scale` is NumPy's product of the gradient array and a NumPy
        # scalar: its dtype is the promotion of both (float16 gradients times a
        # float32 scale give float32, rounded to float16 once, where Keras'
        # update step casts the gradient to the variable's dtype).
        for group, _, runs, flat_grad in work:
            compute = np.promote_types(_keras_gradient_dtype(group, unscaled), dtype)
            factor = compute.type(scale)
            for start, stop in runs:
                np.multiply(flat_grad[start:stop], factor, out=flat_grad[start:stop],
                            dtype=compute, casting="unsafe")

    def _apply_weight_decay(self, work, params, lr):
        """var = var - var * weight_decay * lr for the decayed variables with a
        gradient; `lr` None means a callable rate, read once per variable."""
        rate_is_callable = lr is None
        for group, present, _, _ in work:
            flat_param = params[id(group)][0]
            dtype = group.compute.type
            decayed = [here and self._decays[index] for index, here in zip(group.indices, present)]
            if rate_is_callable:
                # Keras reads the rate once per decayed variable; a callable
                # therefore sees one call per variable.
                segments = [group.segment(p) for p, d in enumerate(decayed) if d]
            else:
                segments = group.runs(decayed)
            for start, stop in segments:
                rate = self._read_learning_rate() if rate_is_callable else lr
                decay_weights(flat_param[start:stop], dtype(self.weight_decay), dtype(rate),
                              self._scratch.get(group.compute))

    def _update_group(self, group, slots, flat_param, flat_grad, runs, lr):
        """Apply the update rule to `runs` of one group; `slots` are its flat
        compute-dtype slot arrays by kind."""
        raise NotImplementedError

    # ------------------------------------------------------------------
    # Functional use, EMA, loss scaling
    # ------------------------------------------------------------------
    def stateless_apply(self, optimizer_variables, grads, trainable_variables):
        """Compute one step without changing anything given: returns
        (new trainable values, new optimizer variable values) as NumPy arrays."""
        if not self.built:
            raise ValueError("`stateless_apply` needs a built optimizer: call `build()` first.")
        own = self.variables
        optimizer_variables = list(optimizer_variables)
        trainable_variables = list(trainable_variables)
        if len(optimizer_variables) != len(own):
            raise ValueError(f"`optimizer_variables` has {len(optimizer_variables)} entries; "
                             f"this optimizer has {len(own)} variables.")
        if len(trainable_variables) != len(self._trainable_variables):
            raise ValueError(f"`trainable_variables` has {len(trainable_variables)} entries; the "
                             f"optimizer was built on {len(self._trainable_variables)}.")
        values = []
        for index, value in enumerate(trainable_variables):
            array = np.array(value, dtype=self._dtypes[index], copy=True)
            if array.shape != self._shapes[index]:
                raise ValueError(f"`trainable_variables[{index}]` has shape {array.shape}; "
                                 f"expected {self._shapes[index]}.")
            values.append(array)
        saved = [v.numpy() for v in own]
        try:
            for variable, value in zip(own, optimizer_variables):
                variable.assign(value)
            self._param_override = values
            self.apply(grads)
            new_state = [v.numpy() for v in own]
        finally:
            self._param_override = None
            for variable, value in zip(own, saved):
                variable.assign(value)
        return values, new_state

    def finalize_variable_values(self, var_list=None):
        """With `use_ema`, overwrite the variables with their moving averages."""
        if not self.use_ema or not self.built:
            return
        variables = self._trainable_variables if var_list is None else list(var_list)
        for index in self._positions_of(variables):
            np.copyto(self._param_array(index), self._slot_view("average", index))

    def scale_loss(self, loss):
        """Multiply the loss by `loss_scale_factor` (when set)."""
        return loss if self.loss_scale_factor is None else loss * self.loss_scale_factor

    # ------------------------------------------------------------------
    # Config and checkpoints
    # ------------------------------------------------------------------
    def get_config(self):
        rate = self._learning_rate
        if isinstance(rate, Variable):
            rate = float(rate.value)
        elif isinstance(rate, schedules.LearningRateSchedule):
            rate = schedules.serialize(rate)
        return {
            "name": self.name,
            "learning_rate": rate,
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "global_clipnorm": self.global_clipnorm,
            "clipvalue": self.clipvalue,
            "use_ema": self.use_ema,
            "ema_momentum": self.ema_momentum,
            "ema_overwrite_frequency": self.ema_overwrite_frequency,
            "loss_scale_factor": self.loss_scale_factor,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """Rebuild from `get_config()`, as Keras' `Optimizer.from_config`: a schedule
        is found by class name among the built-in ones or in `custom_objects`."""
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"],
                                                            custom_objects=custom_objects)
        return cls(**config)

    def _variable_specs(self):
        return [{"name": n, "shape": list(s), "dtype": d.name}
                for n, s, d in zip(self._names, self._shapes, self._dtypes)]

    def _checkpoint_payload(self):
        """(variable specs or None when unbuilt, values of `variables`) for a checkpoint."""
        if self._pending_state is not None:
            return self._pending_state["variable_specs"], self._pending_state["values"]
        specs = self._variable_specs() if self.built else None
        return specs, [v.numpy() for v in self.variables]

    def _restore_checkpoint(self, specs, values):
        """Take checkpointed values now, or when built on variables matching `specs`."""
        state = {"variable_specs": specs, "values": values}
        if specs is None:
            self._assign_state(values)
        elif self.built:
            self._restore_variables(state)
        else:
            # The counters exist before building: take them now, so that
            # `iterations` and a schedule's rate are right straight away;
            # the slots follow when the optimizer is built.
            self._assign_state(values, leading_only=True)
            self._pending_state = state

    def _assign_state(self, values, leading_only=False):
        """Assign checkpointed `values` to `self.variables`, in order: all of
        them, or with `leading_only` those that exist so far."""
        own = self.variables
        if len(values) != len(own) and not (leading_only and len(values) > len(own)):
            raise ValueError(f"The checkpoint holds {len(values)} optimizer variables; this "
                             f"optimizer has {len(own)}.")
        for variable, value in zip(own, values):
            variable.assign(value)

    def _restore_variables(self, state):
        """Adopt checkpointed optimizer variables once built on matching variables."""
        expected = state["variable_specs"]
        actual = self._variable_specs()
        if len(expected) != len(actual):
            raise ValueError(f"The checkpoint was saved for {len(expected)} variables; the "
                             f"optimizer is being built on {len(actual)}.")
        for index, (want, got) in enumerate(zip(expected, actual)):
            if want["shape"] != got["shape"] or want["dtype"] != got["dtype"]:
                raise ValueError(
                    f"Variable {index} ('{got['name']}') has shape {tuple(got['shape'])} and "
                    f"dtype {got['dtype']}, but the checkpoint holds shape "
                    f"{tuple(want['shape'])} and dtype {want['dtype']} for it.")
        self._assign_state(state["values"])

    def __repr__(self):
        return (f"<{type(self).__name__} name={self.name!r} learning_rate={self.learning_rate!r} "
                f"iterations={self.iterations} built={self.built}>")
