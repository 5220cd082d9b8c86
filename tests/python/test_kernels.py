"""Direct tests of kernels.py: the NumPy math over flat arrays.

Expected values are whole-array NumPy expressions of the formulas, written
out here with every operand in the arrays' dtype; the kernels compute the
same operations in place, chunk by chunk, with scratch buffers, so the two
must agree bit for bit.
"""

import numpy as np
import pytest

from rmsprop import kernels
from rmsprop.kernels import CHUNK, ChunkScratch

SIZES = [1, 7, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 123]


def arrays(rng, size, dtype, count):
    return [rng.standard_normal(size).astype(dtype) for _ in range(count)]


def expected_rmsprop(param, grad, velocity, average, momentum_slot, lr, rho, eps, momentum):
    t = param.dtype.type
    one_minus_rho = t(1 - rho)
    velocity = t(rho) * velocity + one_minus_rho * (grad * grad)
    if average is not None:
        average = t(rho) * average + one_minus_rho * grad
        denominator = velocity - average * average + t(eps)
    else:
        denominator = velocity + t(eps)
    increment = (grad * t(lr)) / np.sqrt(denominator)
    if momentum_slot is not None:
        momentum_slot = momentum_slot * t(momentum) + increment
        param = param - momentum_slot
    else:
        param = param - increment
    return param, velocity, average, momentum_slot


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("centered, with_momentum", [(False, False), (True, False),
                                                     (False, True), (True, True)])
def test_rmsprop_rule_is_the_formula_over_arrays_of_any_length(rng, dtype, size, centered,
                                                               with_momentum):
    param, grad, velocity, average, momentum_slot = arrays(rng, size, dtype, 5)
    velocity = np.abs(velocity) + np.asarray(average * average, dtype)   # keeps v - a^2 >= 0
    average = average if centered else None
    momentum_slot = momentum_slot if with_momentum else None
    lr, rho, eps, momentum = 0.01, 0.9, 1e-7, 0.5
    with np.errstate(invalid="ignore"):
        want = expected_rmsprop(param, grad, velocity, average, momentum_slot, lr, rho, eps,
                                momentum)
    t = np.dtype(dtype).type
    scalars = [np.asarray(t(x)) for x in (lr, rho, 1 - rho, eps, momentum)]
    with np.errstate(invalid="ignore"):     # float16: v - a^2 may round below 0 (NaN)
        kernels.rmsprop_rule(param, grad, velocity, average, momentum_slot, *scalars,
                             ChunkScratch.empty(dtype))
    for got, expected in zip((param, velocity, average, momentum_slot), want):
        if expected is not None:
            assert got.tobytes() == expected.tobytes()


def test_rmsprop_rule_split_anywhere_gives_the_same_bits(rng):
    # Chunk boundaries do not change any number: one call over the whole
    # array equals calls over two pieces cut at an arbitrary point.
    size = 3 * CHUNK + 17
    whole = arrays(rng, size, "float32", 4)
    whole[2] = np.abs(whole[2])
    parts = [a.copy() for a in whole]
    scalars = [np.asarray(np.float32(x)) for x in (0.1, 0.9, 0.1, 1e-7, 0.9)]
    scratch = ChunkScratch.empty("float32")
    kernels.rmsprop_rule(whole[0], whole[1], whole[2], None, whole[3], *scalars, scratch)
    for cut in (slice(0, 40000), slice(40000, size)):
        kernels.rmsprop_rule(parts[0][cut], parts[1][cut], parts[2][cut], None, parts[3][cut],
                             *scalars, scratch)
    for a, b in zip(whole, parts):
        assert a.tobytes() == b.tobytes()


def test_rmsprop_rule_reads_the_gradient_before_writing_the_parameter(rng):
    # The documented promise that lets a gradient be its own parameter.
    size = CHUNK + 5
    param = rng.standard_normal(size).astype("float32")
    copy = param.copy()
    v1, v2 = np.ones(size, "float32"), np.ones(size, "float32")
    scalars = [np.asarray(np.float32(x)) for x in (0.1, 0.9, 0.1, 1e-7, 0.0)]
    kernels.rmsprop_rule(param, param, v1, None, None, *scalars, ChunkScratch.empty("float32"))
    kernels.rmsprop_rule(copy, copy.copy(), v2, None, None, *scalars,
                         ChunkScratch.empty("float32"))
    assert param.tobytes() == copy.tobytes() and v1.tobytes() == v2.tobytes()


@pytest.mark.parametrize("size", SIZES)
def test_decay_weights_and_moving_average(rng, size):
    param, average = arrays(rng, size, "float32", 2)
    t = np.float32
    want_param = param - (param * t(0.1)) * t(0.01)
    scratch = ChunkScratch.empty("float32")
    kernels.decay_weights(param, t(0.1), t(0.01), scratch)
    assert param.tobytes() == want_param.tobytes()
    one_minus = t(1) - t(0.99)         # as the EMA step computes it (Keras: 1 - momentum)
    want_average = t(0.99) * average + one_minus * param
    kernels.moving_average(average, param, t(0.99), one_minus, scratch)
    assert average.tobytes() == want_average.tobytes()


@pytest.mark.parametrize("size", [0, 1, 8191, 8192, 8193, 3 * 8192 + 5, CHUNK + 9])
@pytest.mark.parametrize("source, dtype", [("float32", "float32"), ("float64", "float64"),
                                           ("float64", "float32"), ("float16", "float32")])
def test_sum_of_squares_rounds_as_numpy_sums_the_squares(rng, size, source, dtype):
    # Keras computes norms as np.sum(np.square(g)); the kernel must round the
    # same way, without the temporary.
    values = (rng.standard_normal(size) * 3).astype(source)
    want = np.sum(np.square(values.astype(dtype)))
    got = kernels.sum_of_squares(values, ChunkScratch.empty(dtype))
    assert np.asarray(got).dtype == np.dtype(dtype)
    assert np.asarray(got).tobytes() == np.asarray(want).tobytes()


@pytest.mark.parametrize("scale", [0.0, 1e-3, 10.0, np.inf])
def test_clip_by_norm_is_keras_formula(rng, scale):
    grad = (rng.standard_normal(CHUNK + 3) * scale).astype("float32")
    limit = np.float32(1.5)
    with np.errstate(invalid="ignore"):
        squares = np.sum(np.square(grad))
        norm = np.sqrt(squares) if squares > 0 else squares
        want = grad * limit / np.maximum(norm, limit)
        kernels.clip_by_norm(grad, limit, ChunkScratch.empty("float32"))
    np.testing.assert_array_equal(grad, want)     # NaN where Keras has NaN


def test_clip_by_norm_of_half_gradients_runs_in_the_scratch_dtype(rng):
    grad = (rng.standard_normal(100) * 100).astype("float16")
    limit = np.float32(1.0)
    wide = grad.astype("float32")
    want = (wide * limit / np.maximum(np.sqrt(np.sum(np.square(wide))), limit)).astype("float16")
    kernels.clip_by_norm(grad, limit, ChunkScratch.empty("float32"))
    assert grad.tobytes() == want.tobytes()


@pytest.mark.parametrize("bad", [None, np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("where", [0, CHUNK - 1, CHUNK, 2 * CHUNK + 1])
def test_all_finite(bad, where):
    values = np.ones(2 * CHUNK + 2, "float32")
    if bad is not None:
        values[where] = bad
    assert kernels.all_finite(values, np.empty(CHUNK, bool)) == (bad is None)


def test_chunk_scratch_has_two_named_buffers_of_a_chunk():
    scratch = ChunkScratch.empty("float64")
    assert scratch.work.shape == scratch.increment.shape == (CHUNK,)
    assert scratch.work.dtype == np.float64
    assert not np.shares_memory(scratch.work, scratch.increment)
