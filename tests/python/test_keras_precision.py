"""Keras' dtype rules for global gradient clipping, derived from Keras' source.

Keras 3.15.1 on its NumPy backend (the backend of the recordings in
tests/data) computes `clip_by_global_norm` (keras/src/optimizers/
base_optimizer.py) as

    squared_norms = [ops.sum(ops.square(v)) for v in value_list]
    norm = ops.sqrt(ops.sum(ops.stack(squared_norms)))
    scale = clip_norm * ops.minimum(1.0 / norm, 1.0 / clip_norm) + (norm - norm)
    return [v * scale for v in value_list]

and the dtype of each operation follows from keras/src/backend/numpy/numpy.py
and keras/src/backend/common/dtypes.py:
- `ops.square` calls `convert_to_tensor`, whose `result_type` maps float64 to
  float32 outside TensorFlow (BIT64_TO_BIT32_DTYPE): float64 gradients are
  squared and summed in float32;
- `ops.stack` promotes the sums to one dtype (float16 only if all are float16);
- `1.0 / norm` and `clip_norm * ...` are NumPy operators with a Python float,
  weak under NumPy 2 (Keras' recordings ran on NumPy 2.4);
- `v * scale` is NumPy's product of an array and a NumPy scalar (float16
  gradients times a float32 scale give float32), cast to the variable's dtype
  by the update step (`ops.cast(gradient, variable.dtype)` in RMSprop);
- a LossScaleOptimizer unscales with `ops.divide(g, dynamic_scale)` and a
  float32 scale, so float16 gradients reach the clipping as float32
  (keras/src/optimizers/loss_scale_optimizer.py).

`keras_clip_by_global_norm` below writes these rules out with explicit dtypes
(so that it computes the same under NumPy 1.x and 2.x), and the tests read the
clipped gradient back from the optimizer: with rho = 0 and centered = True,
the first step sets average_gradient = (1 - 0) * g, the clipped gradient in
the dtype the update computes in.
"""

import warnings

import numpy as np
import pytest

import rmsprop


def keras_clip_by_global_norm(grads, clip_norm, squash_float64=True):
    tensors = [g.astype(np.float32) if squash_float64 and g.dtype == np.float64 else g
               for g in grads]
    sums = [np.sum(np.square(t)) for t in tensors]
    dtype = np.result_type(*[s.dtype for s in sums])
    real = dtype.type
    norm = np.sqrt(np.sum(np.array(sums, dtype=dtype)))
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = real(clip_norm) * np.minimum(real(1.0) / norm, real(1.0 / clip_norm)) \
            + (norm - norm)
    # NumPy 2's promotion of array * NumPy scalar, written out for NumPy 1.x.
    products = [np.promote_types(g.dtype, dtype) for g in grads]
    return [g.astype(p) * p.type(scale) for g, p in zip(grads, products)]


def float64_norm_clip(grads, clip_norm):
    """The rule the engine used before: everything in the gradients' dtype."""
    dtype = grads[0].dtype.type
    norm = np.sqrt(np.sum([np.sum(np.square(g)) for g in grads]))
    scale = dtype(clip_norm) * np.minimum(dtype(1) / norm, dtype(1.0 / clip_norm))
    return [g * dtype(scale) for g in grads]


def clipped_gradients(optimizer, variables, grads, wrapper=None):
    """One step with rho=0, centered: the average_gradient slots then hold the
    clipped gradients, rounded to the dtype the update computes in."""
    (wrapper or optimizer).apply(grads, variables)
    slots = {v.name: v for v in optimizer.variables}
    return [slots[f"{v.name}_average_gradient"].numpy() for v in variables]


def make(dtypes, grads, **config):
    variables = [rmsprop.Variable(np.zeros_like(g), dtype=d, name=f"v{i}")
                 for i, (g, d) in enumerate(zip(grads, dtypes))]
    optimizer = rmsprop.RMSprop(rho=0.0, centered=True, **config)
    return optimizer, variables


def gradients(dtypes, seed, scale=3.0):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=n) * scale).astype(d) for n, d in zip((7, 5, 11), dtypes)]


def bits(array):
    return np.asarray(array).tobytes().hex()


def test_float64_gradients_take_their_global_norm_in_float32():
    grads = gradients(["float64"] * 3, seed=0)
    optimizer, variables = make(["float64"] * 3, grads, global_clipnorm=0.5)
    got = clipped_gradients(optimizer, variables, grads)
    # The update computes in float32 (the float policy); float64 slots store
    # those float32 values.
    want = [g.astype(np.float32).astype(np.float64)
            for g in keras_clip_by_global_norm(grads, 0.5)]
    assert all(bits(a) == bits(b) for a, b in zip(got, want))
    # The test tells the rules apart: a float64 norm rounds differently here.
    old = [g.astype(np.float32).astype(np.float64) for g in float64_norm_clip(grads, 0.5)]
    assert any(bits(a) != bits(b) for a, b in zip(old, want))


def test_float64_with_compute_dtype_float64_keeps_a_float64_norm():
    grads = gradients(["float64"] * 3, seed=1)
    optimizer, variables = make(["float64"] * 3, grads, global_clipnorm=0.5)
    optimizer.build(variables, compute_dtype="float64")
    got = clipped_gradients(optimizer, variables, grads)
    want = keras_clip_by_global_norm(grads, 0.5, squash_float64=False)
    assert all(bits(a) == bits(b) for a, b in zip(got, want))


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_one_dtype_clips_in_that_dtype(dtype):
    grads = gradients([dtype] * 3, seed=2)
    optimizer, variables = make([dtype] * 3, grads, global_clipnorm=0.5)
    got = clipped_gradients(optimizer, variables, grads)
    want = keras_clip_by_global_norm(grads, 0.5)
    for a, b in zip(got, want):
        assert a.dtype == b.dtype == np.dtype(dtype)
        assert bits(a) == bits(b)


def test_float16_with_float32_takes_a_float32_scale():
    dtypes = ["float16", "float32", "float16"]
    grads = gradients(dtypes, seed=3)
    optimizer, variables = make(dtypes, grads, global_clipnorm=0.5)
    got = clipped_gradients(optimizer, variables, grads)
    # float16 * float32 scale is float32 in Keras, cast to float16 by the update.
    want = [g.astype(d) for g, d in zip(keras_clip_by_global_norm(grads, 0.5), dtypes)]
    assert all(bits(a) == bits(b) for a, b in zip(got, want))
    # Rounding the scale to float16 first (the engine's former rule) differs.
    norm = np.sqrt(sum(np.sum(np.square(g.astype(np.float32))) for g in grads))
    scale16 = np.float16(np.float32(0.5) * np.minimum(np.float32(1) / norm, np.float32(2.0)))
    old = [g * scale16 for g in grads[::2]]
    assert any(bits(a) != bits(b) for a, b in zip(old, want[::2]))


def test_float16_under_loss_scaling_clips_the_float32_unscaled_gradients():
    grads = gradients(["float16"] * 3, seed=4, scale=3000.0)
    optimizer, variables = make(["float16"] * 3, grads, global_clipnorm=0.5)
    wrapper = rmsprop.LossScaleOptimizer(optimizer, initial_scale=1024, dynamic_growth_steps=2)
    got = clipped_gradients(optimizer, variables, grads, wrapper)
    # ops.divide(g, dynamic_scale): float16 / float32 variable -> float32.
    unscaled = [g.astype(np.float32) / np.float32(1024) for g in grads]
    want = [g.astype(np.float16) for g in keras_clip_by_global_norm(unscaled, 0.5)]
    assert all(bits(a) == bits(b) for a, b in zip(got, want))
    # A float16 norm (the engine's former rule) gives other gradients.
    old = float64_norm_clip([g.astype(np.float16) for g in unscaled], 0.5)
    assert any(bits(a) != bits(b) for a, b in zip(old, want))


# ---------------------------------------------------------------------------
# NaN poisoning: `+ (norm - norm)` makes the scale NaN when the norm is inf or
# NaN, and every gradient, finite or not, becomes NaN (issue: Keras' rule, in
# clip_by_global_norm). Without that term the scale would be 0 for an infinite
# norm and finite gradients would pass as zeros.


@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_a_non_finite_gradient_poisons_every_variable(bad):
    grads = [np.array([1.0, bad, 2.0], np.float32), np.array([0.5, -0.5], np.float32)]
    optimizer, variables = make(["float32", "float32"], grads, global_clipnorm=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        got = clipped_gradients(optimizer, variables, grads)
    for value in got:
        assert np.isnan(value).all()
    for variable in variables:
        assert np.isnan(variable.numpy()).all()


def test_a_global_norm_that_overflows_float16_poisons_every_variable():
    # Each gradient is finite, but 300**2 = 90000 is beyond float16's 65504:
    # Keras sums the squares in float16, the norm is inf and the scale NaN.
    grads = [np.array([300.0, 1.0], np.float16), np.array([0.25], np.float16)]
    optimizer, variables = make(["float16", "float16"], grads, global_clipnorm=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        got = clipped_gradients(optimizer, variables, grads)
    assert all(np.isnan(value).all() for value in got)


def test_loss_scaling_does_not_shield_from_an_overflowing_norm():
    # Finite gradients pass the loss-scale check; their squares overflow
    # float32, so Keras' NaN scale poisons the step, which still counts as a
    # good one for the dynamic scale.
    grads = [np.array([3e19, 1.0], np.float32), np.array([2.0], np.float32)]
    optimizer, variables = make(["float32", "float32"], grads, global_clipnorm=1.0)
    wrapper = rmsprop.LossScaleOptimizer(optimizer, initial_scale=1.0, dynamic_growth_steps=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        got = clipped_gradients(optimizer, variables, grads, wrapper)
    assert all(np.isnan(value).all() for value in got)
    assert all(np.isnan(v.numpy()).all() for v in variables)
    assert int(wrapper.step_counter.value) == 1 and float(wrapper.dynamic_scale.value) == 1.0
    assert wrapper.iterations == 1


def test_loss_scaling_skips_non_finite_gradients_before_any_clipping():
    grads = [np.array([np.inf, 1.0], np.float32), np.array([2.0], np.float32)]
    optimizer, variables = make(["float32", "float32"], grads, global_clipnorm=1.0)
    wrapper = rmsprop.LossScaleOptimizer(optimizer, initial_scale=8.0)
    wrapper.apply(grads, variables)
    assert all((v.numpy() == 0).all() for v in variables)
    assert float(wrapper.dynamic_scale.value) == 4.0 and wrapper.iterations == 0
