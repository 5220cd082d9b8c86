"""The steps of one optimizer step around the update rule, in Keras' order.

`BaseOptimizer._apply_checked` calls them one after another (Keras 3,
`BaseOptimizer.apply` and `_backend_apply_gradients`):

    unscale -> accumulate -> clip -> decay_weights -> (the rule) -> moving_average

Each works on the flat arrays of a step (`flat_state.GroupStep`: one per
dtype group) and on scalars it is given; none reads the optimizer. Every one
writes in place, so each rounds exactly where Keras rounds.

clip_by_value, decay_weights and moving_average are element-wise: a rule
that can (the compiled kernel) does them for a group in its own pass
(`fusable` says which, per group); they then run here only for the other
groups.
"""

from typing import List, Optional, Sequence

import numpy as np

from . import kernels
from .flat_state import GroupStep, Scratch
from .kernel_choice import FusedSteps


def unscale(work: List[GroupStep], loss_scale_factor: Optional[float],
            dynamic_scale: Optional[np.float32]) -> None:
    """g = g / scale (Keras: `apply` divides by `loss_scale_factor`; a
    LossScaleOptimizer divides by its scale variable).

    A static factor divides as a weak Python scalar, in the gradient's dtype;
    a dynamic scale is a float32 variable, so half gradients are divided in
    float32 and rounded back (`ops.divide`'s promotion).
    """
    for step in work:
        group, grads = step.group, step.grads
        if dynamic_scale is None:
            divisor = group.dtype.type(loss_scale_factor)
            compute = group.dtype
        else:
            divisor = np.float32(dynamic_scale)
            compute = np.result_type(group.dtype, np.float32)
        for start, stop in step.runs:
            np.divide(grads[start:stop], divisor, out=grads[start:stop], dtype=compute,
                      casting="unsafe")


def accumulate(work: List[GroupStep]) -> None:
    """accumulator = accumulator + g, on steps that only accumulate (Keras'
    `_backend_increment_gradient_accumulators`)."""
    for step in work:
        grads, accumulator = step.grads, step.accumulator
        for start, stop in step.runs:
            np.add(accumulator[start:stop], grads[start:stop], out=accumulator[start:stop])


def add_accumulated(work: List[GroupStep], steps: int) -> None:
    """g = (g + accumulator) / steps, on the step that updates (Keras'
    `_update_step_fn` inside `_backend_apply_gradients`)."""
    for step in work:
        grads, accumulator = step.grads, step.accumulator
        divisor = step.group.dtype.type(steps)
        for start, stop in step.runs:
            g = grads[start:stop]
            np.add(g, accumulator[start:stop], out=g)
            np.divide(g, divisor, out=g)


def reset_accumulators(work: List[GroupStep]) -> None:
    """Keras' `_backend_reset_gradient_accumulators`."""
    for step in work:
        step.accumulator.fill(0)


def clip_by_value(work: List[GroupStep], clipvalue: float) -> None:
    """g = clip(g, -clipvalue, clipvalue), in the gradient's dtype."""
    for step in work:
        limit = step.group.dtype.type(clipvalue)
        for start, stop in step.runs:
            g = step.grads[start:stop]
            np.minimum(g, limit, out=g)
            np.maximum(g, -limit, out=g)


def clip_by_norm(work: List[GroupStep], clipnorm: float, scratch: Scratch) -> None:
    """Per-tensor clipping (Keras' `clip_by_norm`).

    It matches Keras in the policy dtype (floatx: a float64 or float16
    gradient is clipped in float32), unlike the other preprocessing steps;
    the reference trajectories show this.
    """
    for step in work:
        group = step.group
        math = scratch.math(group.policy)
        limit = group.policy.type(clipnorm)
        for position, here in enumerate(step.present):
            if here:
                start, stop = group.segment(position)
                kernels.clip_by_norm(step.grads[start:stop], limit, math)


def clip_by_global_norm(work: List[GroupStep], global_clipnorm: float, unscaled: bool,
                        scratch: Scratch) -> None:
    """Keras' `clip_by_global_norm` (keras/src/optimizers/base_optimizer.py)
    with the dtypes its NumPy backend gives each operation.

    `unscaled` says a LossScaleOptimizer divided the gradients this step.
    """
    present = [(step.group, step.grads, [p for p, here in enumerate(step.present) if here])
               for step in work if any(step.present)]
    # `global_norm`: ops.sum(ops.square(g)) per gradient, in the dtype that
    # `convert_to_tensor` gives it (see `_global_norm_input_dtype`).
    sums: List[np.generic] = []
    for group, flat_grad, positions in present:
        math = scratch.math(_global_norm_input_dtype(group, unscaled))
        sums.extend(kernels.sum_of_squares(flat_grad[slice(*group.segment(p))], math)
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
    scale = real(global_clipnorm) * np.minimum(
        real(1.0) / norm, real(1.0 / global_clipnorm)) + (norm - norm)
    # `g * scale` is NumPy's product of the gradient array and a NumPy
    # scalar: its dtype is the promotion of both (float16 gradients times a
    # float32 scale give float32, rounded to float16 once, where Keras'
    # update step casts the gradient to the variable's dtype).
    for step in work:
        compute = np.promote_types(_keras_gradient_dtype(step.group, unscaled), dtype)
        factor = compute.type(scale)
        for start, stop in step.runs:
            np.multiply(step.grads[start:stop], factor, out=step.grads[start:stop],
                        dtype=compute, casting="unsafe")


def decay_weights(work: List[GroupStep], decays: Sequence[bool], weight_decay: float,
                  rates: Sequence, scratch: Scratch) -> None:
    """var = var - var * weight_decay * lr for the variables that have a
    gradient and are not excluded (`decays`, by optimizer position); Keras'
    `_apply_weight_decay`.

    `rates[i]` is the learning rate variable i decays with (Keras reads the
    rate once per decayed variable, which a callable rate notices).
    """
    for step in work:
        group = step.group
        dtype = group.compute.type
        math = scratch.math(group.compute)
        decay = dtype(weight_decay)
        runs: List[list] = []    # [start, stop, rate]: neighbours with one rate merged
        for position, (index, here) in enumerate(zip(group.indices, step.present)):
            if here and decays[index]:
                start, stop = group.segment(position)
                rate = rates[index]
                if runs and runs[-1][1] == start and runs[-1][2] is rate:
                    runs[-1][1] = stop
                else:
                    runs.append([start, stop, rate])
        for start, stop, rate in runs:
            kernels.decay_weights(step.params[start:stop], decay, dtype(rate), math)


def moving_average(work: List[GroupStep], ema_momentum: float, first: bool,
                   overwrite: bool, scratch: Scratch,
                   averaged: Sequence[bool] = ()) -> None:
    """average = m * average + (1 - m) * var for every variable (m = 0 on the
    first step), then var = average when `overwrite`; Keras'
    `_update_model_variables_moving_average` and
    `_overwrite_model_variables_with_average_value`. `averaged[i]`: the
    rule already updated the average of `work[i]` in its pass (fused)."""
    for index, step in enumerate(work):
        group = step.group
        average = step.slots["average"]
        if not (averaged and averaged[index]):
            decay, one_minus_decay = _ema_factors(group, ema_momentum, first)
            kernels.moving_average(average, step.params, decay, one_minus_decay,
                                   scratch.math(group.compute))
        if overwrite:
            np.copyto(step.params, average)


def _ema_factors(group, ema_momentum, first):
    """(m, 1 - m) in the compute dtype, m = 0 on the first step: Keras
    multiplies ema_momentum by the cast `iterations != 0` in the variable's
    dtype, and subtracts it from 1 there."""
    dtype = group.compute.type
    decay = dtype(0) if first else dtype(ema_momentum)
    return decay, dtype(1) - decay


def fusable(step: GroupStep, *, clipvalue: Optional[float], weight_decay: Optional[float],
            decays: Sequence[bool], decay_rates: Optional[Sequence], learning_rate,
            ema_momentum: Optional[float], first: bool) -> Optional[FusedSteps]:
    """The steps of an update step that the rule may do for group `step` in
    its own pass, with the values the unfused steps would use; None when
    none can. Given only what is set (clipvalue None: no clipping, ...).

    Each is fused only where it rounds exactly as unfused: every member has
    a gradient (the rule then covers every member, as the EMA must); the
    compute dtype is float32 or float64 (what the compiled kernel takes);
    clipping when the gradients are stored in the compute dtype (it runs in
    the storage dtype); weight decay when every member decays, with the
    rate of the update (a callable rate read once per variable may differ).
    """
    group = step.group
    if not step.whole or group.compute.itemsize < 4:
        return None
    dtype = group.compute.type
    clip = None
    if clipvalue is not None and not group.casts:
        clip = dtype(clipvalue)
    decay = None
    if weight_decay is not None and decay_rates is not None and all(
            decays[i] and decay_rates[i] is learning_rate for i in group.indices):
        decay = dtype(weight_decay)
    if ema_momentum is None:
        if clip is None and decay is None:
            return None
        return FusedSteps(clip=clip, weight_decay=decay)
    ema_decay, ema_one_minus_decay = _ema_factors(group, ema_momentum, first)
    return FusedSteps(clip=clip, weight_decay=decay, ema_average=step.slots["average"],
                      ema_decay=ema_decay, ema_one_minus_decay=ema_one_minus_decay)


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
