"""Hyperparameters set after construction are checked as the constructor
checks them, and a change that needs slots the built optimizer lacks is an
error naming the argument (issue 10, section 5)."""

import numpy as np
import pytest

import rmsprop

BAD_VALUES = [
    ("rho", 2.0, ValueError), ("rho", "0.9", TypeError), ("epsilon", -1.0, ValueError),
    ("momentum", -0.5, ValueError), ("centered", "yes", TypeError), ("centered", 1, TypeError),
    ("weight_decay", -0.1, ValueError), ("weight_decay", float("nan"), ValueError),
    ("clipnorm", 0.0, ValueError), ("clipvalue", -1.0, ValueError),
    ("global_clipnorm", "big", TypeError), ("use_ema", None, TypeError),
    ("ema_momentum", 1.5, ValueError), ("ema_overwrite_frequency", 0, ValueError),
    ("ema_overwrite_frequency", 2.5, TypeError), ("loss_scale_factor", 0.0, ValueError),
    ("gradient_accumulation_steps", 1, ValueError), ("learning_rate", -0.1, ValueError),
    ("learning_rate", "fast", TypeError), ("name", "", TypeError),
]


@pytest.mark.parametrize("built", [False, True])
@pytest.mark.parametrize("name, value, error", BAD_VALUES)
def test_bad_values_set_later_are_refused_as_in_the_constructor(name, value, error, built):
    with pytest.raises(error, match=f"`{name}`"):
        rmsprop.RMSprop(**{name: value})
    optimizer = rmsprop.RMSprop(learning_rate=0.1)
    w = rmsprop.Variable([1.0, 2.0])
    if built:
        optimizer.apply([np.ones(2)], [w])
    before = (getattr(optimizer, name), w.numpy().tobytes())
    with pytest.raises(error, match=f"`{name}`"):
        setattr(optimizer, name, value)
    assert (getattr(optimizer, name), w.numpy().tobytes()) == before
    optimizer.apply([np.ones(2)], [w])          # and the optimizer still works
    assert np.all(np.isfinite(w.numpy()))


def test_a_second_clipping_kind_set_later_is_refused():
    optimizer = rmsprop.RMSprop(clipnorm=1.0)
    with pytest.raises(ValueError, match="`clipnorm` is 1.0, so `clipvalue` cannot"):
        optimizer.clipvalue = 0.5
    optimizer.clipnorm = None
    optimizer.clipvalue = 0.5
    assert optimizer.get_config()["clipvalue"] == 0.5


def test_good_values_set_later_are_stored_in_canonical_form_and_used():
    optimizer = rmsprop.RMSprop(learning_rate=0.1)
    optimizer.rho = np.float32(0.5)
    optimizer.ema_overwrite_frequency = np.int64(3)
    assert type(optimizer.rho) is float and type(optimizer.ema_overwrite_frequency) is int
    w = rmsprop.Variable([1.0])
    optimizer.apply([np.array([2.0], dtype="float32")], [w])
    # velocity = (1 - rho) * g^2 with the new rho
    assert float(optimizer.variables[2].value[0]) == np.float32(0.5) * np.float32(4.0)


@pytest.mark.parametrize("name, value, slot", [
    ("momentum", 0.9, "momentum"), ("centered", True, "average_gradient"),
    ("use_ema", True, "average"), ("gradient_accumulation_steps", 2, "gradient_accumulator"),
])
def test_turning_on_a_feature_that_needs_slots_after_build_is_an_error(name, value, slot):
    optimizer = rmsprop.RMSprop(learning_rate=0.1)
    w = rmsprop.Variable([1.0, 2.0])
    optimizer.apply([np.ones(2)], [w])
    with pytest.raises(ValueError, match=f"`{name}` cannot be set to .* after optimizer "
                                         "'rmsprop' is built"):
        setattr(optimizer, name, value)
    assert all(slot not in v.name for v in optimizer.variables)
    optimizer.apply([np.ones(2)], [w])
    assert len(optimizer.variables) == 3       # iteration, learning_rate, velocity
    # Before the first step the same change is fine, and builds the slots.
    fresh = rmsprop.RMSprop(learning_rate=0.1)
    setattr(fresh, name, value)
    fresh.apply([np.ones(2)], [rmsprop.Variable([1.0, 2.0])])
    assert any(v.name.endswith(slot) for v in fresh.variables)


def test_turning_a_feature_off_keeps_its_slots_and_computes_as_keras_without_it():
    # Keras' update_step tests `centered` and `momentum > 0` at every step;
    # the slots made at build stay among the optimizer's variables.
    w = rmsprop.Variable([1.0, -1.0])
    optimizer = rmsprop.RMSprop(learning_rate=0.1, momentum=0.9, centered=True)
    optimizer.apply([np.ones(2)], [w])
    names = [v.name for v in optimizer.variables]
    optimizer.momentum = 0.0
    optimizer.centered = False
    assert [v.name for v in optimizer.variables] == names
    velocity = optimizer.variables[2].numpy()
    before = w.numpy()
    grad = np.array([0.5, 0.25], dtype="float32")
    optimizer.apply([grad], [w])
    velocity = np.float32(0.9) * velocity + np.float32(0.1) * grad * grad
    expected = before - np.float32(0.1) * grad / np.sqrt(velocity + np.float32(1e-7))
    np.testing.assert_array_equal(w.numpy(), expected)
    optimizer.momentum = 0.5          # the slots exist: turning it on again is fine
    optimizer.apply([grad], [w])


def test_the_loss_scale_optimizer_checks_its_own_and_refuses_the_inner_ones():
    optimizer = rmsprop.LossScaleOptimizer(rmsprop.RMSprop())
    with pytest.raises(ValueError, match="`dynamic_growth_steps`"):
        optimizer.dynamic_growth_steps = 0
    with pytest.raises(AttributeError, match="inner_optimizer.rho"):
        optimizer.rho = 0.5
    with pytest.raises(AttributeError, match="inner_optimizer.weight_decay"):
        optimizer.weight_decay = 0.5
    optimizer.learning_rate = 0.5
    assert optimizer.inner_optimizer.learning_rate == np.float32(0.5)
