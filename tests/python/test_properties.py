"""Property tests: random configurations agree with the one-line-per-formula
reference (rmsprop_reference.py) and never write to the gradients."""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rmsprop
from rmsprop.kernels import CHUNK
from rmsprop_reference import ReferenceRMSprop, floatx_as, stored_rate

SETTINGS = settings(max_examples=60, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

shapes = st.lists(st.sampled_from([(), (1,), (3,), (2, 3), (4, 1), (2, 2, 2)]),
                  min_size=1, max_size=3)
# Longer than one kernel chunk, so that chunk boundaries, members read in
# place and small members packed around them are exercised.
long_shapes = st.lists(st.sampled_from([(3,), (CHUNK + 7,), (2, CHUNK // 2 + 3), (5000,)]),
                       min_size=1, max_size=3)
LONG_SETTINGS = settings(max_examples=12, deadline=None, database=None,
                         suppress_health_check=[HealthCheck.too_slow])


@st.composite
def configurations(draw):
    config = dict(
        # rho is kept away from 0 for centered runs: there v - avg^2 cancels
        # catastrophically in float32 and rounding noise, not a bug, would dominate.
        rho=draw(st.one_of(st.just(0.0), st.just(1.0), st.floats(0.5, 0.999))),
        # width=32: values a float32 policy can hold (tiny doubles are refused).
        momentum=draw(st.one_of(st.just(0.0), st.floats(0.0, 0.9899999499320984, width=32))),
        epsilon=draw(st.sampled_from([1e-7, 1e-4, 0.1, 1.0])),
        centered=draw(st.booleans()),
    )
    if config["centered"] and config["rho"] == 0.0:
        config["rho"] = 0.9
    clip = draw(st.sampled_from([None, "clipnorm", "clipvalue", "global_clipnorm"]))
    if clip:
        config[clip] = draw(st.floats(0.05, 3.0))
    if draw(st.booleans()):
        config["weight_decay"] = draw(st.floats(0.0, 0.5, width=32))
    if draw(st.booleans()):
        config["gradient_accumulation_steps"] = draw(st.integers(2, 3))
    if draw(st.booleans()):
        config["use_ema"] = True
        config["ema_momentum"] = draw(st.floats(0.0, 1.0, width=32))
        config["ema_overwrite_frequency"] = draw(st.one_of(st.none(), st.integers(1, 3)))
    if draw(st.booleans()):
        config["loss_scale_factor"] = draw(st.sampled_from([0.5, 2.0, 1024.0]))
    return config


@st.composite
def problems(draw, shape_lists=shapes, max_steps=6, min_steps=1):
    dtype = draw(st.sampled_from(["float32", "float64"]))
    config = draw(configurations())
    lr = draw(st.floats(1e-3, 0.5))
    var_shapes = draw(shape_lists)
    n_steps = draw(st.integers(min_steps, max_steps))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    init = [rng.uniform(-2, 2, s) for s in var_shapes]
    steps = []
    for _ in range(n_steps):
        grads = [rng.uniform(-3, 3, s) for s in var_shapes]
        if len(grads) > 1 and rng.random() < 0.3:
            grads[int(rng.integers(len(grads)))] = None
        steps.append(grads)
    order = draw(st.sampled_from(["C", "F"]))
    plain_arrays = draw(st.booleans())
    return dtype, config, lr, init, steps, order, plain_arrays


def frozen(array):
    array.setflags(write=False)
    return array


def check_close(actual, expected, dtype, what, scale=1.0):
    """Relative tolerance, with an absolute floor proportional to `scale`, the
    largest magnitude the trajectory went through: rounding errors made while a
    value was large remain when it comes back towards zero (rho = 1 with a tiny
    epsilon takes steps of lr * g / sqrt(epsilon), for example)."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    tolerance = 1e-12 if dtype == "float64" else 2e-6
    np.testing.assert_allclose(actual, expected, rtol=tolerance, atol=tolerance * scale,
                               err_msg=what)


def magnitude(values, scale):
    return max([scale] + [float(np.max(np.abs(v), initial=0.0)) for v in values])


@SETTINGS
@given(problems())
def test_random_configurations_match_reference_and_keep_gradients(problem):
    check_against_reference(problem)


@LONG_SETTINGS
@given(problems(long_shapes, max_steps=3))
def test_arrays_longer_than_a_chunk_match_reference(problem):
    check_against_reference(problem)


@settings(LONG_SETTINGS, max_examples=25)
@given(problems(st.one_of(shapes, long_shapes), max_steps=3, min_steps=2), st.booleans())
def test_gradients_sharing_memory_with_their_variables_act_as_copies(problem, only_the_rule):
    """The gradient of 0.5 * |w|^2 is w itself: passing the variable's own
    storage (or a view of it) as gradient gives the results of a copy, bit for
    bit, whatever the configuration."""
    dtype, config, lr, init, steps, order, plain_arrays = problem
    if only_the_rule:
        # No step copies the gradients before weight decay and the rule
        # write the variables.
        for key in ("clipnorm", "clipvalue", "global_clipnorm", "gradient_accumulation_steps",
                    "loss_scale_factor"):
            config.pop(key, None)
        config.setdefault("weight_decay", 0.25)
    with floatx_as(dtype):
        results = []
        for aliased in (True, False):
            optimizer = rmsprop.RMSprop(learning_rate=lr, **config)
            if plain_arrays:
                variables = [np.array(v, dtype=dtype, order=order) for v in init]
            else:
                variables = [rmsprop.Variable(v, dtype=dtype) for v in init]
            for raw_grads in steps:
                arrays = [v if plain_arrays else v.value for v in variables]
                grads = [None if g is None else (a[...] if aliased else a.copy())
                         for g, a in zip(raw_grads, arrays)]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    optimizer.apply(grads, variables)
            results.append([np.asarray(v).tobytes() for v in variables]
                           + [np.asarray(v).tobytes() for v in optimizer.variables])
        assert results[0] == results[1]


def check_against_reference(problem):
    dtype, config, lr, init, steps, order, plain_arrays = problem
    with floatx_as(dtype):   # float64 runs compute in float64 with an exact rate
        optimizer = rmsprop.RMSprop(learning_rate=lr, **config)
        if plain_arrays:
            variables = [np.array(v, dtype=dtype, order=order) for v in init]
        else:
            variables = [rmsprop.Variable(v, dtype=dtype, name=f"v{i}")
                         for i, v in enumerate(init)]
        reference = ReferenceRMSprop(init, dtype=dtype, learning_rate=stored_rate(lr), **config)
        scale = magnitude(reference.vars, 1.0)
        for number, raw_grads in enumerate(steps):
            grads = [None if g is None else frozen(np.array(g, dtype=dtype, order=order))
                     for g in raw_grads]
            copies = [None if g is None else g.copy() for g in grads]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                optimizer.apply(grads, variables)
            reference.step(grads)
            scale = magnitude(reference.vars, scale)
            for g, copy in zip(grads, copies):
                if g is not None:
                    np.testing.assert_array_equal(g, copy)
            assert optimizer.iterations == reference.iterations
            for index, (var, want) in enumerate(zip(variables, reference.vars)):
                check_close(np.asarray(var), want, dtype, f"step {number + 1} variable {index}",
                            scale)
        optimizer.finalize_variable_values(variables)
        reference.finalize()
        for index, (var, want) in enumerate(zip(variables, reference.vars)):
            assert np.asarray(var).dtype == np.dtype(dtype)
            check_close(np.asarray(var), want, dtype, f"finalized variable {index}", scale)


@SETTINGS
@given(problems(), st.integers(1, 2 ** 14))
def test_loss_scale_optimizer_matches_reference_on_scaled_gradients(problem, scale_exponent):
    dtype, config, lr, init, steps, order, plain_arrays = problem
    config.pop("loss_scale_factor", None)
    loss_scale = float(2 ** (scale_exponent % 12))
    with floatx_as(dtype):
        optimizer = rmsprop.LossScaleOptimizer(rmsprop.RMSprop(learning_rate=lr, **config),
                                               initial_scale=loss_scale,
                                               dynamic_growth_steps=1000)
        variables = [rmsprop.Variable(v, dtype=dtype) for v in init]
        reference = ReferenceRMSprop(init, dtype=dtype, learning_rate=stored_rate(lr), **config)
        scale = magnitude(reference.vars, 1.0)
        for raw_grads in steps:
            scaled = [None if g is None else
                      frozen(np.array(np.array(g, dtype=dtype) * dtype_type(dtype)(loss_scale)))
                      for g in raw_grads]
            copies = [None if g is None else g.copy() for g in scaled]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                optimizer.apply(scaled, variables)
            reference.step([None if g is None else np.array(g, dtype=dtype) for g in raw_grads])
            scale = magnitude(reference.vars, scale)
            for g, copy in zip(scaled, copies):
                if g is not None:
                    np.testing.assert_array_equal(g, copy)
        for index, (var, want) in enumerate(zip(variables, reference.vars)):
            check_close(var.numpy(), want, dtype, f"variable {index}", scale)


def dtype_type(dtype):
    return np.dtype(dtype).type


# ---------------------------------------------------------------------------
# Read-only gradients in every configuration (a deterministic sweep that also
# covers float16 and the wrappers).

SWEEP_CONFIGS = [
    {}, dict(momentum=0.9), dict(centered=True), dict(clipnorm=0.5), dict(clipvalue=0.5),
    dict(global_clipnorm=0.5), dict(weight_decay=0.1), dict(loss_scale_factor=4.0),
    dict(gradient_accumulation_steps=2), dict(use_ema=True, ema_overwrite_frequency=1),
    dict(momentum=0.5, centered=True, global_clipnorm=1.0, weight_decay=0.1,
         loss_scale_factor=2.0, gradient_accumulation_steps=2, use_ema=True),
]


def _sweep_case(config, dtype, how):
    rng = np.random.default_rng(3)
    init = [rng.uniform(-1, 1, (3, 2)), rng.uniform(-1, 1, (4,)), rng.uniform(-1, 1, ())]
    grads = [frozen(rng.uniform(-2, 2, np.shape(v)).astype(dtype)) for v in init]
    grads[0] = frozen(np.asfortranarray(grads[0]))
    copies = [g.copy() for g in grads]
    optimizer = rmsprop.RMSprop(learning_rate=0.1, **config)
    if how == "loss_scale":
        config = dict(config)
        config.pop("loss_scale_factor", None)
        optimizer = rmsprop.LossScaleOptimizer(rmsprop.RMSprop(learning_rate=0.1, **config),
                                               initial_scale=2.0)
    variables = [rmsprop.Variable(v, dtype=dtype) for v in init]
    if how == "arrays":
        variables = [np.array(v, dtype=dtype) for v in init]
    for _ in range(3):
        if how == "stateless":
            if not optimizer.built:
                optimizer.build(variables)
                state = [v.numpy() for v in optimizer.variables]
                values = [v.numpy() for v in variables]
            values, state = optimizer.stateless_apply(state, grads, values)
        elif how == "positional":
            rmsprop.apply_to_values(optimizer, grads, init, dtype=dtype)
        elif how == "variables":
            optimizer.apply_gradients(zip(grads, variables))
        else:
            optimizer.apply(grads, variables)
    if how == "stateless":
        assert int(state[0]) == 3 and optimizer.iterations == 0
    else:
        assert int(optimizer.variables[0 if how != "loss_scale" else 2].numpy()) == 3
    return grads, copies


@pytest.mark.parametrize("how", ["variables", "arrays", "loss_scale", "stateless", "positional"])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("config", SWEEP_CONFIGS, ids=[str(sorted(c)) for c in SWEEP_CONFIGS])
def test_read_only_gradients_are_never_written(config, dtype, how):
    grads, copies = _sweep_case(config, dtype, how)
    for g, copy in zip(grads, copies):
        assert not g.flags.writeable
        np.testing.assert_array_equal(g, copy)
