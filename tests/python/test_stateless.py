"""stateless_apply and apply_to_values (the positional interface used by R)."""

import numpy as np
import pytest

import rmsprop
from rmsprop_reference import ReferenceRMSprop, assert_close, stored_rate

INIT = [np.linspace(-1, 1, 6).reshape(2, 3), np.array([0.5, -0.25]), np.array(2.0)]
RNG = np.random.default_rng(17)
GRADS = [[RNG.uniform(-1, 1, np.shape(v)) for v in INIT] for _ in range(6)]

CONFIGS = [
    {},
    dict(momentum=0.9, centered=True),
    dict(use_ema=True, ema_momentum=0.5, ema_overwrite_frequency=2,
         gradient_accumulation_steps=2, weight_decay=0.1),
    dict(clipnorm=0.3, loss_scale_factor=2.0),
    dict(global_clipnorm=0.5, rho=0.5),
]


def read_only(array):
    array = np.array(array)
    array.setflags(write=False)
    return array


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("config", CONFIGS)
def test_stateless_apply_matches_apply_and_changes_nothing(config, dtype):
    stateful = rmsprop.RMSprop(learning_rate=0.05, **config)
    stateful_vars = [rmsprop.Variable(v, dtype=dtype, name=f"v{i}") for i, v in enumerate(INIT)]
    stateless = rmsprop.RMSprop(learning_rate=0.05, **config)
    own_vars = [rmsprop.Variable(v, dtype=dtype, name=f"v{i}") for i, v in enumerate(INIT)]
    stateless.build(own_vars)
    initial_state = [v.numpy() for v in stateless.variables]

    params = [read_only(np.asarray(v, dtype=dtype)) for v in INIT]
    opt_state = [read_only(v) for v in initial_state]
    for grads in GRADS:
        grads = [read_only(np.asarray(g, dtype=dtype)) for g in grads]
        copies = ([g.copy() for g in grads], [p.copy() for p in params],
                  [s.copy() for s in opt_state])
        new_params, new_state = stateless.stateless_apply(opt_state, grads, params)
        for given, copy in zip(grads + params + opt_state, sum(copies, [])):
            np.testing.assert_array_equal(given, copy)
        stateful.apply(grads, stateful_vars)
        for new, var in zip(new_params, stateful_vars):
            assert new.dtype == np.dtype(dtype)
            np.testing.assert_array_equal(new, var.numpy())
        for new, var in zip(new_state, stateful.variables):
            np.testing.assert_array_equal(new, var.numpy())
        params = [read_only(p) for p in new_params]
        opt_state = [read_only(s) for s in new_state]

    # The optimizer's own state and its variables were never touched.
    for var, value in zip(stateless.variables, initial_state):
        np.testing.assert_array_equal(var.numpy(), value)
    assert stateless.iterations == 0
    for var, value in zip(own_vars, INIT):
        np.testing.assert_array_equal(var.numpy(), np.asarray(value, dtype=dtype))
    assert stateful.iterations > 0


def test_stateless_apply_errors():
    optimizer = rmsprop.RMSprop()
    with pytest.raises(ValueError, match="build"):
        optimizer.stateless_apply([], [np.ones(2)], [np.ones(2)])
    optimizer.build([rmsprop.Variable([1.0, 2.0])])
    state = [v.numpy() for v in optimizer.variables]
    with pytest.raises(ValueError, match="optimizer_variables"):
        optimizer.stateless_apply(state[:1], [np.ones(2)], [np.ones(2)])
    with pytest.raises(ValueError, match="trainable_variables"):
        optimizer.stateless_apply(state, [np.ones(2)], [np.ones(2), np.ones(2)])
    with pytest.raises(ValueError, match=r"\(3,\)"):
        optimizer.stateless_apply(state, [np.ones(2)], [np.ones(3)])
    for var, value in zip(optimizer.variables, state):
        np.testing.assert_array_equal(var.numpy(), value)


# ---------------------------------------------------------------------------
# apply_to_values


def test_apply_to_values_float64_matches_reference_and_keeps_slots():
    config = dict(momentum=0.5, centered=True, use_ema=True, ema_overwrite_frequency=3)
    optimizer = rmsprop.RMSprop(learning_rate=0.1, **config)
    # apply_to_values computes in float64: the rate is the double given (the
    # optimizer is built as Keras under floatx "float64").
    reference = ReferenceRMSprop(INIT, learning_rate=0.1, **config)
    values = [read_only(v) for v in INIT]
    for grads in GRADS:
        grads = [read_only(g) for g in grads]
        copies = [v.copy() for v in values], [g.copy() for g in grads]
        out = rmsprop.apply_to_values(optimizer, grads, values)
        for given, copy in zip(values + grads, copies[0] + copies[1]):
            np.testing.assert_array_equal(given, copy)
        reference.step(grads)
        assert len(out) == len(INIT)
        for new, want, old in zip(out, reference.vars, values):
            assert type(new) is np.ndarray and new.dtype == np.float64
            assert new.shape == np.shape(old)
            assert_close(new, want, "float64")
        values = [read_only(v) for v in out]
    assert optimizer.iterations == len(GRADS)


def test_apply_to_values_accepts_python_numbers_and_lists():
    optimizer = rmsprop.RMSprop(learning_rate=0.5)
    out = rmsprop.apply_to_values(optimizer, [[1.0, 6.0, 7.0, 2.0]], [[1.0, 2.0, 3.0, 4.0]])
    np.testing.assert_allclose(out[0], [-0.5811, 0.4189, 1.4189, 2.4189], atol=1e-4)
    scalar = rmsprop.RMSprop(learning_rate=0.1)
    out = rmsprop.apply_to_values(scalar, [10.0], [10.0])
    assert out[0].shape == () and round(float(out[0]), 6) == 9.683772


def test_apply_to_values_float32():
    optimizer = rmsprop.RMSprop(learning_rate=0.1, momentum=0.5)
    reference = ReferenceRMSprop(INIT, dtype="float32", learning_rate=stored_rate(0.1),
                                 momentum=0.5)
    values = INIT
    for grads in GRADS:
        values = rmsprop.apply_to_values(optimizer, grads, values, dtype="float32")
        reference.step(grads)
    for new, want in zip(values, reference.vars):
        assert new.dtype == np.float64
        np.testing.assert_array_equal(new, want.astype(np.float64))


def test_apply_to_values_uses_the_given_values_each_call():
    optimizer = rmsprop.RMSprop(learning_rate=0.1)
    rmsprop.apply_to_values(optimizer, [np.ones(2)], [np.zeros(2)])
    out = rmsprop.apply_to_values(optimizer, [np.zeros(2)], [np.array([5.0, 6.0])])
    # Zero gradient: the values pass through unchanged (velocity keeps decaying).
    np.testing.assert_array_equal(out[0], [5.0, 6.0])


def test_apply_to_values_names():
    optimizer = rmsprop.RMSprop()
    rmsprop.apply_to_values(optimizer, [np.ones(2), np.ones(1)], [np.ones(2), np.ones(1)],
                            names=["kernel", "bias"])
    assert [v.name for v in optimizer.variables][2:] == ["kernel_velocity", "bias_velocity"]


def test_apply_to_values_structure_changes():
    optimizer = rmsprop.RMSprop()
    rmsprop.apply_to_values(optimizer, [np.ones(2), np.ones((2, 2))],
                            [np.zeros(2), np.zeros((2, 2))])
    state = [v.numpy() for v in optimizer.variables]
    with pytest.raises(ValueError):
        rmsprop.apply_to_values(optimizer, [np.ones(2)], [np.zeros(2)])
    with pytest.raises(ValueError, match=r"\(3,\)"):
        rmsprop.apply_to_values(optimizer, [np.ones(3), np.ones((2, 2))],
                                [np.zeros(3), np.zeros((2, 2))])
    with pytest.raises(ValueError):
        rmsprop.apply_to_values(optimizer, [np.ones(2)], [np.zeros(2), np.zeros((2, 2))])
    with pytest.raises(ValueError, match="float32"):
        rmsprop.apply_to_values(optimizer, [np.ones(2), np.ones((2, 2))],
                                [np.zeros(2), np.zeros((2, 2))], dtype="float32")
    for var, value in zip(optimizer.variables, state):
        np.testing.assert_array_equal(var.numpy(), value)
    built = rmsprop.RMSprop()
    built.build([rmsprop.Variable([1.0])])
    with pytest.raises(ValueError, match="already built"):
        rmsprop.apply_to_values(built, [np.ones(1)], [np.zeros(1)])


def test_apply_to_values_names_of_wrong_length():
    optimizer = rmsprop.RMSprop()
    with pytest.raises(ValueError, match="names"):
        rmsprop.apply_to_values(optimizer, [np.ones(2), np.ones(3)],
                                [np.zeros(2), np.zeros(3)], names=["kernel"])
    assert not optimizer.built
    out = rmsprop.apply_to_values(optimizer, [np.ones(2), np.ones(3)],
                                  [np.zeros(2), np.zeros(3)])
    assert [o.shape for o in out] == [(2,), (3,)]


@pytest.mark.parametrize("wrap", [False, True])
def test_a_refused_first_call_leaves_the_optimizer_as_it_was(tmp_path, wrap):
    # The first call builds the optimizer, then its step is refused (a
    # gradient of the wrong shape): nothing may remain of that call, so the
    # next one may bring another structure, and a loaded checkpoint is still
    # taken up by the call that succeeds.
    def make():
        inner = rmsprop.RMSprop(learning_rate=0.1)
        return rmsprop.LossScaleOptimizer(inner) if wrap else inner

    saved = make()
    rmsprop.apply_to_values(saved, [np.full(3, 0.5)], [np.zeros(3)])
    path = rmsprop.save_optimizer(saved, tmp_path / "opt.rmsprop")
    for optimizer in (make(), rmsprop.load_optimizer(path)):
        rate = getattr(optimizer, "inner_optimizer", optimizer).learning_rate
        before_rate = rate.value.dtype
        before_iterations = int(optimizer.iterations.numpy())
        with pytest.raises(ValueError):
            rmsprop.apply_to_values(optimizer, [np.ones(2), np.ones(3)],
                                    [np.zeros(2), np.zeros(4)])
        assert not optimizer.built
        assert rate.value.dtype == before_rate      # not left recast to float64
        assert int(optimizer.iterations.numpy()) == before_iterations
        out = rmsprop.apply_to_values(optimizer, [np.full(3, 0.5)], [np.zeros(3)])
        expected = make() if before_iterations == 0 else rmsprop.load_optimizer(path)
        np.testing.assert_array_equal(
            out[0], rmsprop.apply_to_values(expected, [np.full(3, 0.5)], [np.zeros(3)])[0])
        assert int(optimizer.iterations.numpy()) == before_iterations + 1


def test_finalized_values_are_the_moving_averages_and_change_nothing():
    optimizer = rmsprop.RMSprop(learning_rate=0.1, use_ema=True, ema_momentum=0.5)
    values = [np.array([1.0, 2.0]), np.array(3.0)]
    grads = [np.array([0.5, -0.5]), np.array(1.0)]
    for _ in range(3):
        values = rmsprop.apply_to_values(optimizer, grads, values)
    from rmsprop.positional import TRAINERS
    variables = TRAINERS.trainer(optimizer).variables
    before = [v.numpy() for v in optimizer.variables + variables]
    finalized = rmsprop.finalized_values(optimizer)
    after = optimizer.variables + variables
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(before, after))
    # finalize_variable_values on the same variables gives the same numbers
    optimizer.finalize_variable_values(variables)
    for got, variable in zip(finalized, variables):
        assert got.dtype == np.float64
        assert np.array_equal(got, variable.numpy())
    assert not np.array_equal(finalized[0], values[0])     # the average differs from the last value


def test_finalized_values_without_ema_are_the_current_values():
    optimizer = rmsprop.RMSprop()
    values = rmsprop.apply_to_values(optimizer, [np.ones(2)], [np.zeros(2)])
    assert np.array_equal(rmsprop.finalized_values(optimizer)[0], values[0])
    with pytest.raises(ValueError, match="apply_to_values"):
        rmsprop.finalized_values(rmsprop.RMSprop())


def _r_vector(*shape):
    """What reticulate hands Python for a fresh R double array: a read-only,
    column-major view of memory the caller may write."""
    array = np.zeros(shape, order="F")[...]      # a view: memory owned elsewhere
    array.flags.writeable = False
    return array


def test_apply_for_r_writes_results_into_r_vectors_and_returns_errors():
    from rmsprop.positional import apply_for_r
    optimizer = rmsprop.RMSprop(learning_rate=0.1)
    twin = rmsprop.RMSprop(learning_rate=0.1)
    grads = [np.array([0.5, -2.0]), np.arange(1.0, 7.0).reshape(2, 3), np.full(70, 0.25)]
    values = [np.array([1.0, 2.0]), np.ones((2, 3)), np.zeros(70)]
    pack = _r_vector(8)                  # the two short results, column-major
    long = _r_vector(70)
    assert apply_for_r(optimizer, grads, values, "float64", ["a", "b", "c"],
                       [None, None, long, pack], 0, 1, True) is None
    expected = rmsprop.apply_to_values(twin, grads, values)
    np.testing.assert_array_equal(pack[:2], expected[0])
    np.testing.assert_array_equal(pack[2:].reshape(2, 3, order="F"), expected[1])
    np.testing.assert_array_equal(long, expected[2])
    assert not pack.flags.writeable and not long.flags.writeable
    assert optimizer.variables[-1].name == "c_velocity"
    # The values returned last time, named by their step number, are not sent again.
    pack2, long2 = _r_vector(8), _r_vector(70)
    assert apply_for_r(optimizer, grads, [], "float64", ["a", "b", "c"],
                       [None, None, long2, pack2], 1, 2, True) is None
    expected = rmsprop.apply_to_values(twin, grads, expected)
    np.testing.assert_array_equal(long2, expected[2])
    np.testing.assert_array_equal(pack2[:2], expected[0])
    # ... unless another step came in between (or the number is another)
    fresh = [None, None, _r_vector(70), _r_vector(8)]
    assert apply_for_r(optimizer, grads, [], "float64", None, fresh, 1, 3, True) == ("stale",)
    # Non-finite input: the position, before anything changes.
    state = [v.numpy() for v in optimizer.variables]
    bad = [grads[0], grads[1], np.where(np.arange(70) == 3, np.nan, 0.25)]
    assert apply_for_r(optimizer, bad, values, "float64", None,
                       [None, None, _r_vector(70), _r_vector(8)], 0, 4, True) == ("grads", 3)
    bad_values = [values[0], np.array([[1.0, np.inf, 1.0], [1.0, 1.0, 1.0]]), values[2]]
    assert apply_for_r(optimizer, grads, bad_values, "float64", None,
                       [None, None, _r_vector(70), _r_vector(8)], 0, 4, True) == ("params", 2)
    # An engine error comes back as the exception.
    error = apply_for_r(optimizer, [np.ones(3)], [np.zeros(3)], "float64", "w",
                        [_r_vector(3)], 0, 5, True)
    assert isinstance(error, ValueError) and "parameters" in str(error)
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(state, optimizer.variables))
    # A result that is not finite: its position (R warns).
    zero_eps = rmsprop.RMSprop(epsilon=0.0)
    out = _r_vector(2)
    assert apply_for_r(zero_eps, [np.array([0.0, 1.0])], [np.ones(2)], "float64", "w",
                       [None, out], 0, 6, True) == ("results", [1])
    assert np.isnan(out[0])


def test_non_finite_checks_every_element_when_the_sum_overflows():
    from rmsprop.positional import non_finite
    huge = np.full(4, np.finfo(np.float64).max)
    with np.errstate(over="ignore"):          # as in apply_for_r
        assert not non_finite(huge)
        huge[2] = np.inf
        assert non_finite(huge)
    assert not non_finite(np.array([1, 2], dtype=np.int32))
    assert not non_finite(None)
    assert non_finite(np.array([[1.0, np.nan]]))
