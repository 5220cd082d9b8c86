"""`learning_rate` and `iterations` are Variables, as in Keras 3
(state_variables.py, BaseOptimizer's properties), and `apply`/`apply_gradients`
return what Keras' return."""

import numpy as np
import pytest

import rmsprop
from rmsprop import schedules

INT64_MAX = np.iinfo(np.int64).max


def one_step(optimizer, value=(1.0, 2.0), grad=(0.5, -0.25)):
    var = rmsprop.Variable(np.array(value, dtype="float32"))
    optimizer.apply([np.array(grad, dtype="float32")], [var])
    return var.numpy()


# -- learning_rate ---------------------------------------------------------------

def test_numeric_learning_rate_is_the_floatx_variable_among_variables():
    optimizer = rmsprop.RMSprop(learning_rate=0.001)
    rate = optimizer.learning_rate
    assert isinstance(rate, rmsprop.Variable)
    assert rate.name == "learning_rate" and rate.dtype == "float32" and not rate.trainable
    assert rate.numpy() == np.float32(0.001) and rate.numpy().dtype == np.float32
    assert optimizer.variables[1] is rate
    optimizer.learning_rate = 0.5                 # the setter assigns the same variable
    assert optimizer.learning_rate is rate and rate.numpy() == np.float32(0.5)
    assert optimizer.get_config()["learning_rate"] == float(np.float32(0.5))
    assert type(optimizer.get_config()["learning_rate"]) is float


def test_assigned_learning_rate_is_used_at_the_next_step():
    changed = rmsprop.RMSprop(learning_rate=0.001)
    result = changed.learning_rate.assign(0.1)
    assert result == np.float32(0.1) and changed.learning_rate.numpy() == np.float32(0.1)
    np.testing.assert_array_equal(one_step(changed), one_step(rmsprop.RMSprop(learning_rate=0.1)))
    changed.learning_rate.assign_sub(0.05)
    assert changed.learning_rate.numpy() == np.float32(0.1) - np.float32(0.05)


@pytest.mark.parametrize("bad, error, words", [
    (-1.0, ValueError, "must be >= 0"),
    (np.nan, ValueError, "finite"),
    (1e39, ValueError, "representable in float32"),
    ("0.1", TypeError, "must be a number"),
    (np.array([0.1, 0.2]), TypeError, "must be a number"),
])
def test_assign_checks_the_rate_as_the_setter_does(bad, error, words):
    optimizer = rmsprop.RMSprop(learning_rate=0.25)
    for change in (optimizer.learning_rate.assign,
                   lambda v: setattr(optimizer, "learning_rate", v)):
        with pytest.raises(error) as info:
            change(bad)
        assert "learning_rate" in str(info.value) and words in str(info.value)
        assert optimizer.learning_rate.numpy() == np.float32(0.25)
    with pytest.raises(ValueError, match="learning_rate"):
        optimizer.learning_rate.assign_sub(1.0)
    assert optimizer.learning_rate.numpy() == np.float32(0.25)


def test_float64_build_keeps_the_variable_and_the_rate_as_last_assigned():
    optimizer = rmsprop.RMSprop(learning_rate=0.001)
    rate = optimizer.learning_rate
    rate.assign(0.1)
    optimizer.build([rmsprop.Variable(np.zeros(2))], compute_dtype="float64")
    assert optimizer.learning_rate is rate and optimizer.variables[1] is rate
    assert rate.dtype == "float64" and rate.numpy() == 0.1      # not float32(0.1)
    rate.assign(0.3)
    assert rate.numpy() == 0.3


def test_schedule_learning_rate_is_its_current_value():
    schedule = schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)
    optimizer = rmsprop.RMSprop(learning_rate=schedule)
    assert not isinstance(optimizer.learning_rate, rmsprop.Variable)
    var = rmsprop.Variable([1.0])
    for step in range(3):
        assert optimizer.learning_rate == schedule(step)
        optimizer.apply([np.array([0.5])], [var])
    assert [v.name for v in optimizer.variables][:1] == ["iteration"]
    assert "learning_rate" not in [v.name for v in optimizer.variables]


# -- iterations ------------------------------------------------------------------

def test_iterations_is_the_int64_counter_variable():
    optimizer = rmsprop.RMSprop()
    counter = optimizer.iterations
    assert isinstance(counter, rmsprop.Variable) and counter is optimizer.variables[0]
    assert counter.name == "iteration" and counter.dtype == "int64" and not counter.trainable
    var = rmsprop.Variable([1.0])
    for _ in range(3):
        optimizer.apply([np.array([0.5])], [var])
    assert counter.numpy() == 3 and counter.value == 3 and optimizer.iterations is counter


def test_assigned_iterations_move_the_schedule():
    schedule = schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)
    optimizer = rmsprop.RMSprop(learning_rate=schedule)
    optimizer.iterations.assign(10)
    assert optimizer.learning_rate == schedule(10)
    expected = one_step(rmsprop.RMSprop(learning_rate=float(schedule(10))), value=(1.0, 2.0))
    np.testing.assert_array_equal(one_step(optimizer), expected)
    assert int(optimizer.iterations) == 11


@pytest.mark.parametrize("bad, error", [
    (-1, ValueError), (1.5, TypeError), ("3", TypeError), (INT64_MAX, ValueError),
    (np.array([1, 2]), TypeError),
])
def test_assign_checks_the_count(bad, error):
    optimizer = rmsprop.RMSprop()
    optimizer.iterations.assign(4)
    with pytest.raises(error, match="iterations"):
        optimizer.iterations.assign(bad)
    with pytest.raises((ValueError, TypeError), match="iterations"):
        optimizer.iterations.assign_sub(5)
    assert int(optimizer.iterations) == 4
    optimizer.iterations.assign(np.float64(7.0))      # a whole number, as R sends it
    optimizer.iterations.assign_add(1)
    assert int(optimizer.iterations) == 8


def test_iterations_under_accumulation_are_a_read_only_count_of_updates():
    optimizer = rmsprop.RMSprop(gradient_accumulation_steps=2)
    var = rmsprop.Variable([1.0])
    for _ in range(5):
        optimizer.apply([np.array([0.5])], [var])
    completed = optimizer.iterations
    assert isinstance(completed, rmsprop.Variable) and completed.numpy() == 2
    with pytest.raises(ValueError):
        completed.assign(0)
    assert int(optimizer.variables[0]) == 5


# -- what apply and apply_gradients return -------------------------------------

@pytest.mark.parametrize("wrap", [False, True])
def test_apply_returns_none_and_apply_gradients_the_raw_counter(wrap):
    inner = rmsprop.RMSprop(gradient_accumulation_steps=2)
    optimizer = rmsprop.LossScaleOptimizer(inner, initial_scale=1.0) if wrap else inner
    var = rmsprop.Variable([1.0])
    assert optimizer.apply([np.array([0.5])], [var]) is None
    counter = optimizer.apply_gradients([(np.array([0.5]), var)])
    counter = optimizer.apply_gradients([(np.array([0.5]), var)])
    assert counter is inner.variables[0] and counter.numpy() == 3
    assert int(optimizer.iterations) == 1


def test_checkpoint_keeps_an_assigned_rate_and_count(tmp_path):
    optimizer = rmsprop.RMSprop(learning_rate=0.001, momentum=0.5)
    var = rmsprop.Variable([1.0, 2.0])
    optimizer.apply([np.array([0.5, 0.5])], [var])
    optimizer.learning_rate.assign(0.02)
    optimizer.iterations.assign(41)
    path = rmsprop.save_optimizer(optimizer, tmp_path / "opt.json")
    loaded = rmsprop.load_optimizer(path)
    assert isinstance(loaded.learning_rate, rmsprop.Variable)
    assert loaded.learning_rate.numpy() == np.float32(0.02)
    assert loaded.iterations.numpy() == 41 and loaded.iterations is loaded.variables[0]


@pytest.mark.parametrize("operation", [
    lambda x: x * 0.5, lambda x: 0.5 * x, lambda x: x / 3, lambda x: x + np.float64(1e-9),
    lambda x: x * np.float32(2), lambda x: np.sqrt(x),
])
def test_arithmetic_on_the_rate_variable_is_arithmetic_on_its_value(operation):
    """The Variable computes as the stored NumPy scalar it replaces (under
    NumPy 1.x value-based casting and NumPy 2's NEP 50 alike): same type,
    dtype and value; and the Keras idiom `opt.learning_rate = lr * 0.5` works."""
    optimizer = rmsprop.RMSprop(learning_rate=0.1)
    stored = np.float32(0.1)
    got, want = operation(optimizer.learning_rate), operation(stored)
    assert type(got) is type(want) and got.dtype == want.dtype and got == want
    optimizer.learning_rate = optimizer.learning_rate * 0.5
    assert optimizer.learning_rate.numpy() == np.float32(stored * 0.5)
