"""Each RMSprop argument's effect, checked against the independent reference
in rmsprop_reference.py, plus Keras' published examples,
names, learning-rate forms, config round trips and the optimizer's variables."""

import json
import warnings

import numpy as np
import pytest

import rmsprop
from rmsprop import schedules
from rmsprop_reference import ReferenceRMSprop, assert_close, floatx_as, stored_rate

NAMES = ["dense_kernel", "dense_bias"]
SHAPES = [(2, 3), (3,)]


@pytest.fixture
def f64():
    with floatx_as("float64"):
        yield


def initial_values(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, s) for s in SHAPES]


def gradient_steps(n, seed=1, none_at=None):
    """n steps of gradients; at step `none_at` the bias has no gradient."""
    rng = np.random.default_rng(seed)
    steps = []
    for s in range(n):
        grads = [rng.uniform(-2, 2, shape) for shape in SHAPES]
        if s == none_at:
            grads[1] = None
        steps.append(grads)
    return steps


def run_engine(optimizer, values, steps, dtype="float64", finalize=False):
    variables = [rmsprop.Variable(v, dtype=dtype, name=n) for v, n in zip(values, NAMES)]
    history = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for grads in steps:
            optimizer.apply([None if g is None else np.array(g, dtype=dtype) for g in grads],
                            variables)
            history.append(([v.numpy() for v in variables], int(optimizer.iterations)))
    if finalize:
        optimizer.finalize_variable_values(variables)
    return variables, history


def run_reference(reference, steps, finalize=False):
    history = []
    for grads in steps:
        reference.step(grads)
        history.append(([v.copy() for v in reference.vars], reference.iterations))
    if finalize:
        reference.finalize()
    return reference.vars, history


def compare(history, expected_history, dtype):
    for number, ((values, iterations), (want, want_iterations)) in enumerate(
            zip(history, expected_history)):
        assert iterations == want_iterations, number
        for value, expected, name in zip(values, want, NAMES):
            assert_close(value, expected, dtype, f"step {number + 1} {name}")


# ---------------------------------------------------------------------------
# Published Keras examples


def test_keras_docstring_example_one_step_from_ten():
    optimizer = rmsprop.RMSprop(learning_rate=0.1)
    var = rmsprop.Variable(10.0)
    optimizer.apply([np.array(10.0, dtype="float32")], [var])  # d(var^2/2)/dvar = var
    assert round(float(var.numpy()), 6) == 9.683772


def test_keras_unit_test_example_four_values():
    optimizer = rmsprop.RMSprop(learning_rate=0.5)
    x = rmsprop.Variable([1.0, 2.0, 3.0, 4.0])
    optimizer.apply_gradients(zip([np.array([1.0, 6.0, 7.0, 2.0], dtype="float32")], [x]))
    np.testing.assert_array_equal(np.round(x.numpy().astype(np.float64), 4),
                                  [-0.5811, 0.4189, 1.4189, 2.4189])


# ---------------------------------------------------------------------------
# Each argument against the reference (float64 throughout)

CONFIGS = {
    "rho=0.5": dict(rho=0.5),
    "rho=0": dict(rho=0.0),
    "rho=1": dict(rho=1.0),
    "momentum": dict(momentum=0.9),
    "epsilon": dict(epsilon=0.1),
    "centered": dict(centered=True),
    "centered+momentum": dict(centered=True, momentum=0.5),
    "weight_decay": dict(weight_decay=0.05),
    "clipnorm": dict(clipnorm=0.5),
    "clipvalue": dict(clipvalue=0.3),
    "global_clipnorm": dict(global_clipnorm=0.7),
    "ema": dict(use_ema=True, ema_momentum=0.9),
    "ema+overwrite": dict(use_ema=True, ema_momentum=0.8, ema_overwrite_frequency=2),
    "loss_scale_factor": dict(loss_scale_factor=4.0),
    "accumulation": dict(gradient_accumulation_steps=3),
    "everything": dict(rho=0.8, momentum=0.3, epsilon=1e-3, centered=True, weight_decay=0.01,
                       global_clipnorm=2.0, use_ema=True, ema_momentum=0.7,
                       ema_overwrite_frequency=3, loss_scale_factor=2.0,
                       gradient_accumulation_steps=2),
    "accumulation+clipnorm+ema": dict(gradient_accumulation_steps=2, clipnorm=0.4, use_ema=True,
                                      ema_overwrite_frequency=2),
}


@pytest.mark.parametrize("config", list(CONFIGS.values()), ids=list(CONFIGS))
def test_argument_matches_reference(config, f64):
    values = initial_values()
    steps = gradient_steps(8, none_at=4)
    lr = 0.05
    engine_vars, history = run_engine(rmsprop.RMSprop(learning_rate=lr, **config), values, steps,
                                      finalize=True)
    reference = ReferenceRMSprop(values, learning_rate=lr, **config)
    ref_vars, ref_history = run_reference(reference, steps, finalize=True)
    compare(history, ref_history, "float64")
    for var, want in zip(engine_vars, ref_vars):
        assert_close(var.numpy(), want, "float64", "after finalize")

    # The argument has an effect: the default optimizer ends elsewhere (for
    # EMA alone: only once the averages are swapped in by finalize).
    default_vars, _ = run_engine(rmsprop.RMSprop(learning_rate=lr), values, steps)
    assert not all(np.allclose(a.numpy(), b.numpy(), rtol=1e-9, atol=0)
                   for a, b in zip(engine_vars, default_vars))


def test_float32_variables_match_float32_reference():
    values = initial_values(3)
    steps = gradient_steps(6, seed=4)
    config = dict(rho=0.8, momentum=0.5, centered=True, clipnorm=1.5, weight_decay=0.02,
                  use_ema=True, ema_momentum=0.9)
    _, history = run_engine(rmsprop.RMSprop(learning_rate=0.01, **config), values, steps,
                            dtype="float32")
    reference = ReferenceRMSprop(values, dtype="float32", learning_rate=stored_rate(0.01), **config)
    _, ref_history = run_reference(reference, steps)
    compare(history, ref_history, "float32")


def test_float64_variables_compute_in_float32_by_default():
    # Keras' float32 policy: float64 variables are updated in float32 with the
    # float32-rounded learning rate; preprocessing stays in float64.
    assert rmsprop.floatx() == "float32"
    values = initial_values(5)
    steps = gradient_steps(5, seed=6, none_at=2)
    config = dict(rho=0.7, momentum=0.2, clipnorm=1.0, weight_decay=0.1, use_ema=True,
                  ema_momentum=0.5, loss_scale_factor=8.0)
    _, history = run_engine(rmsprop.RMSprop(learning_rate=0.1, **config), values, steps)
    reference = ReferenceRMSprop(values, dtype="float64", compute="float32",
                                 learning_rate=stored_rate(0.1), **config)
    _, ref_history = run_reference(reference, steps)
    compare(history, ref_history, "float32")
    # And the values really are float32 numbers stored in float64.
    for value in history[-1][0]:
        np.testing.assert_array_equal(value, value.astype(np.float32).astype(np.float64))


def test_float64_variables_with_compute_dtype_float64_are_exact():
    values = initial_values(7)
    steps = gradient_steps(4, seed=8)
    optimizer = rmsprop.RMSprop(learning_rate=0.1, momentum=0.5)
    variables = [rmsprop.Variable(v, dtype="float64", name=n) for v, n in zip(values, NAMES)]
    optimizer.build(variables, compute_dtype="float64")
    for grads in steps:
        optimizer.apply(grads, variables)
    # Computing in float64 is Keras under floatx "float64": the rate is the
    # double given, not its float32 rounding.
    reference = ReferenceRMSprop(values, learning_rate=0.1, momentum=0.5)
    run_reference(reference, steps)
    for var, want in zip(variables, reference.vars):
        assert_close(var.numpy(), want, "float64")
    assert optimizer.learning_rate == 0.1


def test_slot_values_match_reference(f64):
    values = initial_values()
    steps = gradient_steps(3)
    optimizer = rmsprop.RMSprop(learning_rate=0.1, momentum=0.9, centered=True, rho=0.6)
    run_engine(optimizer, values, steps)
    reference = ReferenceRMSprop(values, learning_rate=0.1, momentum=0.9, centered=True, rho=0.6)
    run_reference(reference, steps)
    by_name = {v.name: v.numpy() for v in optimizer.variables}
    for index, name in enumerate(NAMES):
        assert_close(by_name[f"{name}_velocity"], reference.velocity[index], "float64")
        assert_close(by_name[f"{name}_momentum"], reference.momentum_slot[index], "float64")
        assert_close(by_name[f"{name}_average_gradient"], reference.average_gradient[index],
                     "float64")


# ---------------------------------------------------------------------------
# Weight-decay exclusion


def decay_run(exclude, names, f64_dtype="float64"):
    rng = np.random.default_rng(11)
    values = [rng.uniform(-1, 1, 3) for _ in names]
    steps = [[rng.uniform(-1, 1, 3) for _ in names] for _ in range(3)]
    optimizer = rmsprop.RMSprop(learning_rate=0.1, weight_decay=0.5)
    variables = [rmsprop.Variable(v, name=n) for v, n in zip(values, names)]
    exclude(optimizer, variables)
    for grads in steps:
        optimizer.apply(grads, variables)
    return values, steps, variables


@pytest.mark.parametrize("names, var_names, mask", [
    (["dense_bias", "b", "kernel"], "bias", [False, True, True]),
    (["dense_bias", "b", "kernel"], ["bias"], [False, True, True]),
    (["dense_bias", "b", "kernel"], ["^b$", "kern"], [True, False, False]),
    (["layer_norm", "x", "y"], "la.er", [False, True, True]),
])
def test_exclude_from_weight_decay_by_names(names, var_names, mask, f64):
    values, steps, variables = decay_run(
        lambda opt, _: opt.exclude_from_weight_decay(var_names=var_names), names)
    reference = ReferenceRMSprop(values, learning_rate=0.1, weight_decay=0.5, decay_mask=mask)
    run_reference(reference, steps)
    for var, want in zip(variables, reference.vars):
        assert_close(var.numpy(), want, "float64", var.name)
    # The mask matters: decaying everything gives other values.
    everything = ReferenceRMSprop(values, learning_rate=0.1, weight_decay=0.5)
    run_reference(everything, steps)
    for var, decayed, want in zip(variables, everything.vars, mask):
        assert np.allclose(var.numpy(), decayed, rtol=1e-12, atol=0) == want


def test_exclude_from_weight_decay_by_var_list(f64):
    names = ["w1", "w2", "w3"]
    values, steps, variables = decay_run(
        lambda opt, vs: opt.exclude_from_weight_decay(var_list=[vs[1]]), names)
    reference = ReferenceRMSprop(values, learning_rate=0.1, weight_decay=0.5,
                                 decay_mask=[True, False, True])
    run_reference(reference, steps)
    for var, want in zip(variables, reference.vars):
        assert_close(var.numpy(), want, "float64", var.name)


# ---------------------------------------------------------------------------
# Accumulation, names, learning-rate forms


def test_gradient_accumulation_iterations_are_raw_over_k(f64):
    optimizer = rmsprop.RMSprop(gradient_accumulation_steps=3)
    var = rmsprop.Variable([1.0, 2.0])
    seen = []
    before = var.numpy()
    for step in range(7):
        optimizer.apply([np.array([0.1, 0.2])], [var])
        seen.append(int(optimizer.iterations))
        if step < 2:
            np.testing.assert_array_equal(var.numpy(), before)  # only accumulating
    assert seen == [0, 0, 1, 1, 1, 2, 2]
    assert int(optimizer.variables[0].numpy()) == 7   # raw counter


def test_name_default_and_given():
    assert rmsprop.RMSprop().name == "rmsprop"
    assert rmsprop.RMSprop(name="opt_1").name == "opt_1"
    assert rmsprop.RMSprop().get_config()["name"] == "rmsprop"


def test_learning_rate_is_stored_in_floatx():
    optimizer = rmsprop.RMSprop(learning_rate=0.001)
    assert optimizer.get_config()["learning_rate"] == 0.0010000000474974513
    assert float(optimizer.learning_rate) == 0.0010000000474974513
    with floatx_as("float64"):
        assert rmsprop.RMSprop(learning_rate=0.001).get_config()["learning_rate"] == 0.001


def test_learning_rate_schedule_evaluated_at_raw_iterations(f64):
    def make():
        return schedules.PiecewiseConstantDecay([1, 3], [0.5, 0.25, 0.125])

    def rate(step):  # Keras: values[0] while step <= b[0], ...
        return 0.5 if step <= 1 else 0.25 if step <= 3 else 0.125

    values = initial_values()
    steps = gradient_steps(8)
    for config in ({}, {"gradient_accumulation_steps": 2, "weight_decay": 0.1}):
        optimizer = rmsprop.RMSprop(learning_rate=make(), **config)
        _, history = run_engine(optimizer, values, steps)
        _, ref_history = run_reference(ReferenceRMSprop(values, learning_rate=rate, **config),
                                       steps)
        compare(history, ref_history, "float64")
        assert float(optimizer.learning_rate) == 0.125


def test_learning_rate_callable_is_called_without_arguments(f64):
    cell = [0.2]
    calls = []

    def lr():
        calls.append(1)
        return cell[0]

    values = initial_values()
    steps = gradient_steps(6)
    optimizer = rmsprop.RMSprop(learning_rate=lr, weight_decay=0.1)
    variables = [rmsprop.Variable(v, name=n) for v, n in zip(values, NAMES)]
    reference = ReferenceRMSprop(values, learning_rate=lambda step: cell[0], weight_decay=0.1)
    for number, grads in enumerate(steps):
        if number == 3:
            cell[0] = 0.05
        optimizer.apply(grads, variables)
        reference.step(grads)
    for var, want in zip(variables, reference.vars):
        assert_close(var.numpy(), want, "float64")
    assert calls  # it really was called
    assert float(optimizer.learning_rate) == 0.05
    # A callable rate is not an optimizer variable.
    assert [v.name for v in optimizer.variables][:2] == ["iteration", "dense_kernel_velocity"]


def test_learning_rate_settable_afterwards(f64):
    values = initial_values()
    steps = gradient_steps(6)
    optimizer = rmsprop.RMSprop(learning_rate=0.1)
    variables = [rmsprop.Variable(v, name=n) for v, n in zip(values, NAMES)]
    cell = [0.1]
    reference = ReferenceRMSprop(values, learning_rate=lambda step: cell[0])
    for number, grads in enumerate(steps):
        if number == 2:
            optimizer.learning_rate = 0.01
            cell[0] = 0.01
        if number == 4:
            optimizer.learning_rate = np.float64(0.3)
            cell[0] = 0.3
        optimizer.apply(grads, variables)
        reference.step(grads)
    for var, want in zip(variables, reference.vars):
        assert_close(var.numpy(), want, "float64")
    assert float(optimizer.learning_rate) == 0.3
    assert optimizer.get_config()["learning_rate"] == 0.3


def test_rule_hyperparameters_changed_between_steps_take_effect():
    values = initial_values()
    steps = gradient_steps(4)
    optimizer = rmsprop.RMSprop(learning_rate=0.1, momentum=0.5)
    variables = [rmsprop.Variable(v, name=n) for v, n in zip(values, NAMES)]
    reference = ReferenceRMSprop(values, dtype="float32", learning_rate=stored_rate(0.1),
                                 momentum=0.5)
    for number, grads in enumerate(steps):
        if number == 2:
            for target in (optimizer, reference):
                target.rho, target.epsilon, target.momentum = 0.5, 1e-3, 0.25
        optimizer.apply(grads, variables)
        reference.step(grads)
    for var, want in zip(variables, reference.vars):
        assert_close(var.numpy(), want, "float32")


def test_learning_rate_can_switch_to_a_schedule():
    optimizer = rmsprop.RMSprop(learning_rate=0.1)
    optimizer.learning_rate = schedules.PiecewiseConstantDecay([0], [0.5, 0.25])
    assert float(optimizer.learning_rate) == 0.5


# ---------------------------------------------------------------------------
# Config round trips and the optimizer's variables

CONFIG_KEYS = ["name", "learning_rate", "weight_decay", "clipnorm", "global_clipnorm",
               "clipvalue", "use_ema", "ema_momentum", "ema_overwrite_frequency",
               "loss_scale_factor", "gradient_accumulation_steps", "rho", "momentum",
               "epsilon", "centered"]

ROUND_TRIP = [
    {},
    dict(learning_rate=0.25, rho=0.5, momentum=0.9, epsilon=1e-3, centered=True, name="opt"),
    dict(weight_decay=0.004, clipnorm=1.0),
    dict(clipvalue=0.5, use_ema=True, ema_momentum=0.9, ema_overwrite_frequency=5),
    dict(global_clipnorm=2.0, loss_scale_factor=128.0, gradient_accumulation_steps=4),
    dict(learning_rate=schedules.ExponentialDecay(0.1, 10, 0.5, staircase=True)),
    dict(learning_rate=schedules.CosineDecay(0.1, 100, alpha=0.1, warmup_target=0.2,
                                             warmup_steps=5)),
    dict(learning_rate=schedules.PiecewiseConstantDecay([10, 20], [0.1, 0.01, 0.001]),
         momentum=0.1),
]


@pytest.mark.parametrize("kwargs", ROUND_TRIP)
def test_config_round_trip(kwargs):
    optimizer = rmsprop.RMSprop(**kwargs)
    config = optimizer.get_config()
    assert list(config) == CONFIG_KEYS
    for key, value in kwargs.items():
        if key != "learning_rate":
            assert config[key] == value, key
    rebuilt = rmsprop.RMSprop.from_config(config)
    assert type(rebuilt) is rmsprop.RMSprop
    assert rebuilt.get_config() == config
    if isinstance(kwargs.get("learning_rate"), schedules.LearningRateSchedule):
        assert isinstance(rebuilt._learning_rate, type(kwargs["learning_rate"]))
        for step in (0, 7, 15, 60):
            assert float(rebuilt._learning_rate(step)) == float(kwargs["learning_rate"](step))


def test_config_defaults():
    config = rmsprop.RMSprop().get_config()
    assert config == {
        "name": "rmsprop", "learning_rate": 0.0010000000474974513, "weight_decay": None,
        "clipnorm": None, "global_clipnorm": None, "clipvalue": None, "use_ema": False,
        "ema_momentum": 0.99, "ema_overwrite_frequency": None, "loss_scale_factor": None,
        "gradient_accumulation_steps": None, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-7,
        "centered": False}


def test_variables_in_spec_order_with_every_slot():
    optimizer = rmsprop.RMSprop(momentum=0.5, centered=True, use_ema=True,
                                gradient_accumulation_steps=2)
    a, b = rmsprop.Variable([1.0], name="a"), rmsprop.Variable([[2.0]], name="b")
    optimizer.build([a, b])
    assert [v.name for v in optimizer.variables] == [
        "iteration", "learning_rate", "a_average", "b_average", "a_gradient_accumulator",
        "b_gradient_accumulator", "a_velocity", "b_velocity", "a_momentum", "b_momentum",
        "a_average_gradient", "b_average_gradient"]
    shapes = [v.shape for v in optimizer.variables]
    assert shapes[2:] == [(1,), (1, 1)] * 5


def test_variables_plain_and_with_schedule():
    optimizer = rmsprop.RMSprop()
    assert [v.name for v in optimizer.variables] == ["iteration", "learning_rate"]
    optimizer.build([rmsprop.Variable([1.0], name="w")])
    assert [v.name for v in optimizer.variables] == ["iteration", "learning_rate", "w_velocity"]
    scheduled = rmsprop.RMSprop(learning_rate=schedules.ExponentialDecay(0.1, 5, 0.9))
    scheduled.build([rmsprop.Variable([1.0], name="w")])
    assert [v.name for v in scheduled.variables] == ["iteration", "w_velocity"]


def test_variable_values_track_state(f64):
    optimizer = rmsprop.RMSprop(learning_rate=0.5, rho=0.75)
    var = rmsprop.Variable([1.0, -2.0], name="w")
    optimizer.apply([np.array([2.0, 4.0])], [var])
    iteration, rate, velocity = optimizer.variables
    assert int(iteration.numpy()) == 1
    assert float(rate.numpy()) == 0.5
    np.testing.assert_array_equal(velocity.numpy(), [0.25 * 4.0, 0.25 * 16.0])


# ---------------------------------------------------------------------------
# finalize_variable_values details and learning-rate input types


def test_finalize_subset_and_without_ema(f64):
    values = initial_values()
    steps = gradient_steps(4)
    optimizer = rmsprop.RMSprop(learning_rate=0.1, use_ema=True, ema_momentum=0.6)
    variables, _ = run_engine(optimizer, values, steps)
    reference = ReferenceRMSprop(values, learning_rate=0.1, use_ema=True, ema_momentum=0.6)
    run_reference(reference, steps)
    before_bias = variables[1].numpy()
    optimizer.finalize_variable_values([variables[0]])
    assert_close(variables[0].numpy(), reference.average[0], "float64")
    np.testing.assert_array_equal(variables[1].numpy(), before_bias)
    assert not np.allclose(before_bias, reference.average[1])
    with pytest.raises(ValueError):
        optimizer.finalize_variable_values([rmsprop.Variable([1.0])])

    plain = rmsprop.RMSprop(learning_rate=0.1)
    plain_vars, _ = run_engine(plain, values, steps)
    kept = [v.numpy() for v in plain_vars]
    plain.finalize_variable_values(plain_vars)
    for v, k in zip(plain_vars, kept):
        np.testing.assert_array_equal(v.numpy(), k)


@pytest.mark.parametrize("rate", [np.float32(0.25), np.float64(0.25), np.array(0.25),
                                  1, np.int64(1),
                                  rmsprop.Variable(0.25)])
def test_learning_rate_numeric_types(rate):
    optimizer = rmsprop.RMSprop(learning_rate=rate)
    expected = float(np.asarray(rate))
    assert float(optimizer.learning_rate) == expected
    assert optimizer.get_config()["learning_rate"] == expected
    assert type(optimizer.get_config()["learning_rate"]) is float


@pytest.mark.parametrize("compute_dtype", ["int32", "bogus"])
def test_build_rejects_bad_compute_dtype(compute_dtype):
    optimizer = rmsprop.RMSprop()
    with pytest.raises((TypeError, ValueError), match="compute_dtype"):
        optimizer.build([rmsprop.Variable([1.0], dtype="float64")], compute_dtype=compute_dtype)


# ---------------------------------------------------------------------------
# get_config() is always JSON-ready; a callable rate is a marked entry


def my_rate():
    return 0.02


@pytest.mark.parametrize("rate", [0.01, rmsprop.schedules.ExponentialDecay(0.1, 3, 0.5),
                                  my_rate, lambda: 0.5],
                         ids=["number", "schedule", "function", "lambda"])
def test_get_config_is_json_serialisable(rate):
    config = rmsprop.RMSprop(learning_rate=rate).get_config()
    assert json.loads(json.dumps(config)) == config
    wrapped = rmsprop.LossScaleOptimizer(rmsprop.RMSprop(learning_rate=rate)).get_config()
    assert json.loads(json.dumps(wrapped)) == wrapped


def test_a_callable_rate_is_marked_and_needs_custom_objects():
    config = rmsprop.RMSprop(learning_rate=my_rate, momentum=0.5).get_config()
    assert config["learning_rate"]["class_name"] == "function"
    assert config["learning_rate"]["config"] == {"name": "my_rate"}
    with pytest.raises(ValueError) as info:
        rmsprop.RMSprop.from_config(config)
    assert "my_rate" in str(info.value) and "custom_objects" in str(info.value)
    with pytest.raises(ValueError, match="my_rate"):
        rmsprop.RMSprop.from_config(config, custom_objects={"my_rate": 0.3})   # not callable
    rebuilt = rmsprop.RMSprop.from_config(json.loads(json.dumps(config)),
                                          custom_objects={"my_rate": my_rate})
    assert rebuilt.learning_rate == 0.02 and rebuilt.momentum == 0.5
    assert rebuilt.get_config() == config
