"""LossScaleOptimizer: unscaling, skipped steps, growth, scale_loss, config, and
the inner optimizer's loss_scale_factor / scale_loss."""

import numpy as np
import pytest

import rmsprop
from rmsprop_reference import ReferenceRMSprop, assert_close, floatx_as

INIT = [np.array([1.0, -2.0, 0.5]), np.array([[0.25, 3.0], [-1.0, 2.0]])]
RNG = np.random.default_rng(9)
GRADS = [[RNG.uniform(-1, 1, v.shape) for v in INIT] for _ in range(6)]


def variables(dtype="float64"):
    return [rmsprop.Variable(v, dtype=dtype, name=n) for v, n in zip(INIT, ["w", "b"])]


def test_unscales_gradients_like_a_plain_step():
    with floatx_as("float64"):
        inner = rmsprop.RMSprop(learning_rate=0.1, momentum=0.5)
        optimizer = rmsprop.LossScaleOptimizer(inner, initial_scale=64.0,
                                               dynamic_growth_steps=100)
        vs = variables()
        reference = ReferenceRMSprop(INIT, learning_rate=0.1, momentum=0.5)
        for grads in GRADS:
            optimizer.apply([g * 64.0 for g in grads], vs)
            reference.step(grads)
        for v, want in zip(vs, reference.vars):
            assert_close(v.numpy(), want, "float64")
        assert optimizer.iterations == inner.iterations == len(GRADS)
        assert float(optimizer.dynamic_scale.numpy()) == 64.0


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_non_finite_step_is_skipped_and_scale_halves(bad):
    inner = rmsprop.RMSprop(learning_rate=0.1, momentum=0.5, use_ema=True,
                            gradient_accumulation_steps=2)
    optimizer = rmsprop.LossScaleOptimizer(inner, initial_scale=1024.0, dynamic_growth_steps=10)
    vs = variables("float32")
    optimizer.apply([np.float32(g) for g in GRADS[0]], vs)
    assert int(optimizer.step_counter.numpy()) == 1
    before_vars = [v.numpy() for v in vs]
    before_state = [v.numpy() for v in inner.variables]
    grads = [np.float32(g) for g in GRADS[1]]
    grads[1][0, 1] = bad
    optimizer.apply(grads, vs)
    assert float(optimizer.dynamic_scale.numpy()) == 512.0
    assert int(optimizer.step_counter.numpy()) == 0
    for v, b in zip(vs, before_vars):
        np.testing.assert_array_equal(v.numpy(), b)
    for v, b in zip(inner.variables, before_state):     # raw iterations too
        np.testing.assert_array_equal(v.numpy(), b)
    # A None gradient alongside a bad one changes nothing either.
    with pytest.warns(UserWarning, match="'w'"):
        optimizer.apply([None, grads[1]], vs)
    assert float(optimizer.dynamic_scale.numpy()) == 256.0
    assert int(inner.variables[0].numpy()) == 1


def test_scale_grows_after_dynamic_growth_steps():
    optimizer = rmsprop.LossScaleOptimizer(rmsprop.RMSprop(), initial_scale=8.0,
                                           dynamic_growth_steps=3)
    vs = variables("float32")
    scales, counters = [], []
    for grads in GRADS:
        optimizer.apply([np.float32(g) for g in grads], vs)
        scales.append(float(optimizer.dynamic_scale.numpy()))
        counters.append(int(optimizer.step_counter.numpy()))
    assert scales == [8.0, 8.0, 16.0, 16.0, 16.0, 32.0]
    assert counters == [1, 2, 0, 1, 2, 0]
    assert optimizer.dynamic_scale.dtype == "float32"


def test_growth_counter_resets_after_skip():
    optimizer = rmsprop.LossScaleOptimizer(rmsprop.RMSprop(), initial_scale=8.0,
                                           dynamic_growth_steps=2)
    vs = variables("float32")
    good = [np.float32(g) for g in GRADS[0]]
    bad = [np.full(v.shape, np.nan, dtype=np.float32) for v in INIT]
    scales = []
    for grads in [good, bad, good, good, bad, bad, good]:
        optimizer.apply(grads, vs)
        scales.append(float(optimizer.dynamic_scale.numpy()))
    assert scales == [8.0, 4.0, 4.0, 8.0, 4.0, 2.0, 2.0]
    assert optimizer.iterations == 4


def test_scale_loss_and_delegation():
    inner = rmsprop.RMSprop(learning_rate=0.3)
    optimizer = rmsprop.LossScaleOptimizer(inner, initial_scale=2.0 ** 15)
    assert optimizer.scale_loss(1.5) == 1.5 * 32768.0
    assert optimizer.initial_scale == 32768.0 and optimizer.dynamic_growth_steps == 2000
    assert optimizer.name == "loss_scale_optimizer"
    assert float(optimizer.learning_rate) == pytest.approx(0.3)
    optimizer.learning_rate = 0.125
    assert float(inner.learning_rate) == 0.125
    vs = variables("float32")
    optimizer.apply([np.float32(g) for g in GRADS[0]], vs)
    assert optimizer.iterations == inner.iterations == 1 and optimizer.built
    names = [v.name for v in optimizer.variables]
    # Keras' order: the wrapper's own variables, then the inner optimizer's.
    assert names[:4] == ["iteration", "learning_rate", "step_counter", "dynamic_scale"]
    assert names[4:] == [v.name for v in inner.variables]


def test_inner_loss_scale_factor_disabled():
    inner = rmsprop.RMSprop(loss_scale_factor=1000.0)
    optimizer = rmsprop.LossScaleOptimizer(inner, initial_scale=4.0)
    assert inner.loss_scale_factor is None
    vs = variables("float32")
    plain_vars = variables("float32")
    plain = rmsprop.RMSprop()
    for grads in GRADS:
        optimizer.apply([np.float32(g * 4.0) for g in grads], vs)
        plain.apply([np.float32(g) for g in grads], plain_vars)
    for a, b in zip(vs, plain_vars):
        assert_close(a.numpy(), b.numpy(), "float32")


def test_config_round_trip():
    from rmsprop import schedules
    for inner in (rmsprop.RMSprop(learning_rate=0.01, momentum=0.9, centered=True),
                  rmsprop.RMSprop(learning_rate=schedules.ExponentialDecay(0.1, 4, 0.5))):
        optimizer = rmsprop.LossScaleOptimizer(inner, initial_scale=128.0,
                                               dynamic_growth_steps=7, name="lso")
        config = optimizer.get_config()
        assert config["initial_scale"] == 128.0 and config["dynamic_growth_steps"] == 7
        assert config["name"] == "lso"
        assert config["inner_optimizer"]["class_name"] == "RMSprop"
        rebuilt = rmsprop.LossScaleOptimizer.from_config(config)
        assert rebuilt.get_config() == config
        assert isinstance(rebuilt.inner_optimizer, rmsprop.RMSprop)
        assert rebuilt.inner_optimizer.get_config() == inner.get_config()


# ---------------------------------------------------------------------------
# loss_scale_factor on the optimizer itself


def test_loss_scale_factor_scale_loss_and_division():
    with floatx_as("float64"):
        optimizer = rmsprop.RMSprop(learning_rate=0.1, loss_scale_factor=16.0)
        assert optimizer.scale_loss(2.0) == 32.0
        assert rmsprop.RMSprop().scale_loss(2.0) == 2.0
        vs = variables()
        reference = ReferenceRMSprop(INIT, learning_rate=0.1)   # no factor: grads pre-divided
        for grads in GRADS:
            optimizer.apply([g * 16.0 for g in grads], vs)
            reference.step(grads)
        for v, want in zip(vs, reference.vars):
            assert_close(v.numpy(), want, "float64")


# ---------------------------------------------------------------------------
# Keras' dynamic scale has no floor and no ceiling
# (keras/src/optimizers/loss_scale_optimizer.py: a skipped step assigns
# dynamic_scale * 0.5, `growth_steps` good steps in a row dynamic_scale * 2.0,
# both float32 products). Pinned here, hazards included; the README's loss
# scaling section says what a user sees and how to recover.


def test_the_scale_halves_down_to_zero_and_stays_there():
    inner = rmsprop.RMSprop(learning_rate=0.1)
    optimizer = rmsprop.LossScaleOptimizer(inner, initial_scale=2.0 ** 15)
    w = rmsprop.Variable([1.0, 2.0], dtype="float32", name="w")
    expected = np.float32(2.0 ** 15)
    for step in range(170):
        optimizer.apply([np.array([np.nan, 1.0], np.float32)], [w])
        expected = np.float32(expected * np.float32(0.5))
        assert float(optimizer.dynamic_scale.numpy()) == float(expected), step
    # 2**15 halved 164 times is 2**-149, float32's smallest number; once more is 0.
    assert expected == 0 and inner.iterations == 0
    np.testing.assert_array_equal(w.numpy(), [1.0, 2.0])
    # Now scale_loss gives 0, so gradients are 0, and 0 / 0 is NaN: Keras
    # applies the NaN gradients (they were finite before unscaling).
    assert optimizer.scale_loss(3.0) == 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        optimizer.apply([np.zeros(2, np.float32)], [w])
    assert np.isnan(w.numpy()).all() and inner.iterations == 1
    assert float(optimizer.dynamic_scale.numpy()) == 0.0


def test_the_scale_doubles_up_to_inf_and_stays_there():
    inner = rmsprop.RMSprop(learning_rate=0.1)
    optimizer = rmsprop.LossScaleOptimizer(inner, initial_scale=2.0 ** 15, dynamic_growth_steps=1)
    w = rmsprop.Variable([1.0, 2.0], dtype="float32", name="w")
    expected = np.float32(2.0 ** 15)
    with np.errstate(over="ignore"):
        for step in range(115):
            optimizer.apply([np.zeros(2, np.float32)], [w])
            expected = np.float32(expected * np.float32(2.0))
            assert float(optimizer.dynamic_scale.numpy()) == float(expected), step
    # 2**15 doubled 113 times is 2**128: inf in float32.
    assert np.isinf(expected) and inner.iterations == 115
    # A skipped step halves inf to inf; a good gradient divided by inf is 0,
    # so the variables stop moving while the iterations still count.
    optimizer.apply([np.array([np.inf, 0.0], np.float32)], [w])
    assert np.isinf(float(optimizer.dynamic_scale.numpy()))
    optimizer.apply([np.array([5.0, -7.0], np.float32)], [w])
    np.testing.assert_array_equal(w.numpy(), [1.0, 2.0])
    assert inner.iterations == 116


def test_resetting_the_scale_recovers():
    # The documented recovery: assign a usable scale again.
    inner = rmsprop.RMSprop(learning_rate=0.1)
    optimizer = rmsprop.LossScaleOptimizer(inner, initial_scale=2.0 ** -126)
    w = rmsprop.Variable([1.0, 2.0], dtype="float32", name="w")
    for _ in range(24):
        optimizer.apply([np.array([np.inf, 1.0], np.float32)], [w])
    assert float(optimizer.dynamic_scale.numpy()) == 0.0
    optimizer.dynamic_scale.assign(2.0 ** 15)
    optimizer.apply([np.array([2.0 ** 15, -(2.0 ** 15)], np.float32)], [w])
    assert np.isfinite(w.numpy()).all() and w.numpy()[0] < 1.0 < w.numpy()[1] - 0.5


def test_stateless_apply_of_the_wrapper_computes_apply_and_changes_nothing():
    # Keras' LossScaleOptimizer.stateless_apply (issue 16, point 5).
    def make():
        optimizer = rmsprop.LossScaleOptimizer(rmsprop.RMSprop(learning_rate=0.1, momentum=0.5),
                                               initial_scale=4.0, dynamic_growth_steps=2)
        values = [rmsprop.Variable(np.array([1.0, -2.0], dtype="float32"))]
        optimizer.build(values)
        return optimizer, values

    optimizer, values = make()
    reference, reference_values = make()
    grads = [np.array([4.0, 8.0], dtype="float32")]
    state = [v.numpy() for v in optimizer.variables]
    new_values, new_state = optimizer.stateless_apply(state, grads, [v.numpy() for v in values])
    assert all(np.array_equal(v.numpy(), s) for v, s in zip(optimizer.variables, state))
    reference.apply(grads, reference_values)
    assert new_values[0].tobytes() == reference_values[0].numpy().tobytes()
    expected_state = [v.numpy().tobytes() for v in reference.variables]
    assert [s.tobytes() for s in new_state] == expected_state
    # A non-finite gradient: the values stay, the scale halves.
    skipped, skipped_state = optimizer.stateless_apply(state, [np.array([np.inf, 1.0])],
                                                       [v.numpy() for v in values])
    assert skipped[0].tobytes() == values[0].numpy().tobytes()
    assert float(skipped_state[3]) == 2.0


def test_the_wrapper_delegates_weight_decay_exclusions():
    inner = rmsprop.RMSprop(learning_rate=0.1, weight_decay=0.5)
    optimizer = rmsprop.LossScaleOptimizer(inner, initial_scale=1.0)
    optimizer.exclude_from_weight_decay(var_names=["bias"])
    kernel, bias = rmsprop.Variable([1.0], name="kernel"), rmsprop.Variable([1.0], name="bias")
    optimizer.apply([np.zeros(1), np.zeros(1)], [kernel, bias])
    assert float(bias.numpy()[0]) == 1.0 and float(kernel.numpy()[0]) < 1.0


def test_the_wrapper_takes_old_configs_defaults_and_refuses_other_values_as_keras():
    rmsprop.LossScaleOptimizer(rmsprop.RMSprop(), weight_decay=None, use_ema=False,
                               ema_momentum=0.99, gradient_accumulation_steps=None)
    with pytest.raises(ValueError, match="does not support `weight_decay`. Instead, set "
                                         "`weight_decay` on the `inner_optimizer`"):
        rmsprop.LossScaleOptimizer(rmsprop.RMSprop(), weight_decay=0.1)
    with pytest.raises(ValueError, match="no longer supports `dynamic=False`"):
        rmsprop.LossScaleOptimizer(rmsprop.RMSprop(), dynamic=False)
