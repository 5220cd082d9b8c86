"""Every bad input gives a clear ValueError/TypeError that names the argument and
the value, and a rejected call changes nothing."""

import math
import warnings

import numpy as np
import pytest

import rmsprop
from rmsprop import schedules

# (kwargs, exception, words the message must contain)
BAD_ARGUMENTS = [
    (dict(learning_rate=-0.1), ValueError, ["learning_rate", "-0.1"]),
    (dict(learning_rate=math.nan), ValueError, ["learning_rate", "nan"]),
    (dict(learning_rate=math.inf), ValueError, ["learning_rate", "inf"]),
    (dict(learning_rate=-math.inf), ValueError, ["learning_rate", "-inf"]),
    (dict(learning_rate=True), TypeError, ["learning_rate", "True"]),
    (dict(learning_rate="0.1"), TypeError, ["learning_rate", "'0.1'"]),
    (dict(learning_rate=None), TypeError, ["learning_rate", "None"]),
    (dict(learning_rate=np.array([0.1, 0.2])), TypeError, ["learning_rate", "0.1"]),
    (dict(rho=1.5), ValueError, ["rho", "1.5"]),
    (dict(rho=-0.1), ValueError, ["rho", "-0.1"]),
    (dict(rho=math.nan), ValueError, ["rho", "nan"]),
    (dict(rho="0.9"), TypeError, ["rho", "'0.9'"]),
    (dict(momentum=-0.5), ValueError, ["momentum", "-0.5"]),
    (dict(momentum=True), TypeError, ["momentum", "True"]),
    (dict(epsilon=-1e-8), ValueError, ["epsilon", "-1e-08"]),
    (dict(epsilon=math.inf), ValueError, ["epsilon", "inf"]),
    (dict(weight_decay=-0.01), ValueError, ["weight_decay", "-0.01"]),
    (dict(weight_decay="0.01"), TypeError, ["weight_decay", "'0.01'"]),
    (dict(clipnorm=0.0), ValueError, ["clipnorm", "0.0"]),
    (dict(clipnorm=-1.0), ValueError, ["clipnorm", "-1.0"]),
    (dict(clipvalue=0), ValueError, ["clipvalue", "0"]),
    (dict(clipvalue=-0.5), ValueError, ["clipvalue", "-0.5"]),
    (dict(global_clipnorm=-2.0), ValueError, ["global_clipnorm", "-2.0"]),
    (dict(global_clipnorm=0.0), ValueError, ["global_clipnorm", "0.0"]),
    (dict(clipnorm=1.0, clipvalue=0.5), ValueError, ["clipnorm", "clipvalue", "1.0", "0.5"]),
    (dict(clipnorm=1.0, global_clipnorm=2.0), ValueError, ["clipnorm", "global_clipnorm"]),
    (dict(clipvalue=0.5, global_clipnorm=2.0), ValueError, ["clipvalue", "global_clipnorm"]),
    (dict(gradient_accumulation_steps=2.0), TypeError, ["gradient_accumulation_steps", "2.0"]),
    (dict(gradient_accumulation_steps=1), ValueError, ["gradient_accumulation_steps", "1"]),
    (dict(gradient_accumulation_steps=-3), ValueError, ["gradient_accumulation_steps", "-3"]),
    (dict(gradient_accumulation_steps=True), TypeError, ["gradient_accumulation_steps", "True"]),
    (dict(gradient_accumulation_steps="4"), TypeError, ["gradient_accumulation_steps", "'4'"]),
    (dict(use_ema=True, ema_overwrite_frequency=2.0), TypeError,
     ["ema_overwrite_frequency", "2.0"]),
    (dict(use_ema=True, ema_overwrite_frequency=0), ValueError,
     ["ema_overwrite_frequency", "0"]),
    (dict(use_ema=True, ema_momentum=1.5), ValueError, ["ema_momentum", "1.5"]),
    (dict(use_ema=True, ema_momentum=-0.1), ValueError, ["ema_momentum", "-0.1"]),
    (dict(centered="yes"), TypeError, ["centered", "'yes'"]),
    (dict(centered=1), TypeError, ["centered", "1"]),
    (dict(use_ema=1), TypeError, ["use_ema", "1"]),
    (dict(use_ema="True"), TypeError, ["use_ema", "'True'"]),
    (dict(loss_scale_factor=0.0), ValueError, ["loss_scale_factor", "0.0"]),
    (dict(loss_scale_factor=-2.0), ValueError, ["loss_scale_factor", "-2.0"]),
    (dict(name=""), TypeError, ["name", "''"]),
    (dict(name=3), TypeError, ["name", "3"]),
    (dict(foo=1), ValueError, ["foo"]),
    (dict(beta_1=0.9, bar=2), ValueError, ["beta_1", "bar"]),
]


@pytest.mark.parametrize("kwargs, error, words", BAD_ARGUMENTS,
                         ids=[repr(k) for k, _, _ in BAD_ARGUMENTS])
def test_bad_argument(kwargs, error, words):
    with pytest.raises(error) as info:
        rmsprop.RMSprop(**kwargs)
    assert type(info.value) is error
    message = str(info.value)
    for word in words:
        assert word in message, (word, message)


# Values the float policy (float32) cannot hold: 1e39 is inf in float32, 1e-50
# is 0, and a loss scale factor of 1e-40 is subnormal (its reciprocal, by which
# gradients are multiplied, overflows).
UNREPRESENTABLE = [
    dict(learning_rate=1e39), dict(weight_decay=1e39), dict(clipnorm=1e39),
    dict(clipvalue=1e39), dict(global_clipnorm=1e39), dict(momentum=1e39),
    dict(epsilon=1e39), dict(epsilon=1e-50), dict(momentum=1e-50),
    dict(loss_scale_factor=1e39), dict(loss_scale_factor=1e-40),
]


@pytest.mark.parametrize("kwargs", UNREPRESENTABLE, ids=repr)
def test_values_the_float_policy_cannot_hold_are_refused(kwargs):
    (name, value), = kwargs.items()
    with pytest.raises(ValueError) as info:
        rmsprop.RMSprop(**kwargs)
    assert name in str(info.value) and repr(value) in str(info.value)
    assert "float32" in str(info.value)


def test_representable_means_in_floatx_at_construction():
    from rmsprop_reference import floatx_as
    with floatx_as("float16"):
        with pytest.raises(ValueError, match="learning_rate.*float16"):
            rmsprop.RMSprop(learning_rate=70000.0)
    with floatx_as("float64"):
        assert rmsprop.RMSprop(learning_rate=1e39, loss_scale_factor=1e-40).loss_scale_factor \
            == 1e-40
    assert rmsprop.RMSprop(epsilon=1e-45).epsilon == 1e-45       # a float32 subnormal


def test_setting_an_unrepresentable_learning_rate_is_refused():
    optimizer = rmsprop.RMSprop(learning_rate=0.1)
    with pytest.raises(ValueError, match="learning_rate"):
        optimizer.learning_rate = 1e39
    assert float(optimizer.learning_rate) == np.float32(0.1)


@pytest.mark.parametrize("scale", [1e39, 1e-40])
def test_unrepresentable_initial_scale_is_refused(scale):
    # The dynamic scale is a float32 variable whatever the policy.
    with pytest.raises(ValueError, match="initial_scale.*float32"):
        rmsprop.LossScaleOptimizer(rmsprop.RMSprop(), initial_scale=scale)


@pytest.mark.parametrize("value", [0.0, 1.0, 0.5])
def test_rho_bounds_inclusive(value):
    assert rmsprop.RMSprop(rho=value).rho == value


def test_accumulation_zero_or_none_means_off():
    for value in (None, 0):
        optimizer = rmsprop.RMSprop(gradient_accumulation_steps=value)
        var = rmsprop.Variable([1.0])
        optimizer.apply([np.array([1.0], dtype="float32")], [var])
        assert optimizer.iterations == 1 and var.numpy()[0] != 1.0


def test_numpy_integers_accepted_for_integer_arguments():
    optimizer = rmsprop.RMSprop(gradient_accumulation_steps=np.int32(3), use_ema=True,
                                ema_overwrite_frequency=np.int64(2))
    assert optimizer.gradient_accumulation_steps == 3
    assert optimizer.get_config()["ema_overwrite_frequency"] == 2


def test_decay_warns_and_is_ignored():
    with pytest.warns(UserWarning, match="decay"):
        optimizer = rmsprop.RMSprop(learning_rate=0.1, decay=0.5)
    plain = rmsprop.RMSprop(learning_rate=0.1)
    assert "decay" not in optimizer.get_config()
    a, b = rmsprop.Variable([1.0, 2.0]), rmsprop.Variable([1.0, 2.0])
    for _ in range(3):
        optimizer.apply([np.array([0.3, -0.2], dtype="float32")], [a])
        plain.apply([np.array([0.3, -0.2], dtype="float32")], [b])
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_setting_bad_learning_rate_later_keeps_the_old_one():
    optimizer = rmsprop.RMSprop(learning_rate=0.5)
    for value, error in [(-1.0, ValueError), (math.nan, ValueError), (True, TypeError),
                         ("fast", TypeError)]:
        with pytest.raises(error, match="learning_rate"):
            optimizer.learning_rate = value
        assert float(optimizer.learning_rate) == 0.5


def test_number_learning_rate_on_schedule_optimizer():
    schedule = schedules.ExponentialDecay(0.1, 10, 0.5)
    optimizer = rmsprop.RMSprop(learning_rate=schedule)
    with pytest.raises(TypeError) as info:
        optimizer.learning_rate = 0.01
    assert "schedule" in str(info.value) and "0.01" in str(info.value)
    assert optimizer._learning_rate is schedule
    assert float(optimizer.learning_rate) == pytest.approx(0.1)


def test_callable_returning_non_number_is_reported():
    optimizer = rmsprop.RMSprop(learning_rate=lambda: "big")
    var = rmsprop.Variable([1.0, 2.0])
    with pytest.raises(TypeError, match="learning_rate"):
        optimizer.apply([np.ones(2, dtype="float32")], [var])
    np.testing.assert_array_equal(var.numpy(), [1.0, 2.0])
    assert optimizer.iterations == 0


@pytest.mark.parametrize("returned, words", [
    (-1.0, "got -1.0"), (math.nan, "got nan"), (np.float32(math.inf), "got inf")])
def test_callable_returning_a_bad_rate_is_refused_before_any_change(returned, words):
    # the constructor's rule for a numeric rate (a finite number >= 0), also
    # when the callable is read again for weight decay
    reads = iter([0.01, returned])
    optimizer = rmsprop.RMSprop(learning_rate=lambda: next(reads), weight_decay=0.1)
    var = rmsprop.Variable([1.0, 2.0])
    with pytest.raises(ValueError) as info:
        optimizer.apply([np.ones(2, dtype="float32")], [var])
    message = str(info.value)
    assert message.startswith("`learning_rate` must be a callable returning a finite number "
                              ">= 0; ") and words in message
    np.testing.assert_array_equal(var.numpy(), [1.0, 2.0])
    assert optimizer.iterations == 0


@pytest.mark.parametrize("returned", [-0.5, math.nan, np.float32(-math.inf)])
def test_schedule_returning_a_bad_rate_is_refused_before_any_change(returned):
    class Bad(schedules.LearningRateSchedule):
        def __call__(self, step):
            return returned

        def get_config(self):
            return {}

    optimizer = rmsprop.RMSprop(learning_rate=Bad())
    var = rmsprop.Variable([1.0, 2.0])
    with pytest.raises(ValueError) as info:
        optimizer.apply([np.ones(2, dtype="float32")], [var])
    assert str(info.value).startswith("`learning_rate` must be a LearningRateSchedule "
                                      "returning a finite number >= 0; got ")
    assert str(info.value).endswith(", which it returned at step 0.")
    np.testing.assert_array_equal(var.numpy(), [1.0, 2.0])
    assert optimizer.iterations == 0
    # reading the rate (and printing the optimizer) still shows it
    assert "learning_rate=" in repr(optimizer)
    assert optimizer.learning_rate == returned or math.isnan(optimizer.learning_rate)


def test_loss_scale_optimizer_rejects_base_arguments():
    for key, value in [("learning_rate", 0.1), ("clipnorm", 1.0), ("use_ema", True),
                       ("gradient_accumulation_steps", 2), ("loss_scale_factor", 2.0)]:
        with pytest.raises(ValueError) as info:
            rmsprop.LossScaleOptimizer(rmsprop.RMSprop(), **{key: value})
        assert key in str(info.value) and "inner" in str(info.value)
    with pytest.raises(ValueError, match="unknown_thing"):
        rmsprop.LossScaleOptimizer(rmsprop.RMSprop(), unknown_thing=1)
    with pytest.raises(TypeError, match="inner_optimizer"):
        rmsprop.LossScaleOptimizer("rmsprop")
    with pytest.raises(ValueError, match="initial_scale"):
        rmsprop.LossScaleOptimizer(rmsprop.RMSprop(), initial_scale=0.0)
    with pytest.raises(TypeError, match="dynamic_growth_steps"):
        rmsprop.LossScaleOptimizer(rmsprop.RMSprop(), dynamic_growth_steps=2.0)
    with pytest.raises(ValueError, match="dynamic_growth_steps"):
        rmsprop.LossScaleOptimizer(rmsprop.RMSprop(), dynamic_growth_steps=0)


# ---------------------------------------------------------------------------
# Rejected apply calls change nothing


def trained(config=None, wrap=False):
    """An optimizer that has taken two steps on variables w (3,) and b (2, 2)."""
    optimizer = rmsprop.RMSprop(learning_rate=0.1, **(config or {}))
    if wrap:
        optimizer = rmsprop.LossScaleOptimizer(optimizer, initial_scale=4.0)
    w = rmsprop.Variable([1.0, 2.0, 3.0], name="w")
    b = rmsprop.Variable([[0.5, -0.5], [1.5, 2.5]], name="b")
    grads = [np.array([0.1, -0.2, 0.3], dtype="float32"), np.full((2, 2), 0.25, dtype="float32")]
    for _ in range(2):
        optimizer.apply(grads, [w, b])
    return optimizer, [w, b], grads


def snapshot(optimizer, variables):
    return [v.numpy() for v in variables], [v.numpy() for v in optimizer.variables]


def assert_unchanged(optimizer, variables, before):
    values, state = snapshot(optimizer, variables)
    for a, b in zip(values, before[0]):
        np.testing.assert_array_equal(a, b)
    assert len(state) == len(before[1])
    for a, b in zip(state, before[1]):
        np.testing.assert_array_equal(a, b)


CONFIGS = [
    {},
    dict(momentum=0.9, centered=True, use_ema=True, gradient_accumulation_steps=3,
         weight_decay=0.1, clipnorm=1.0),
]


def bad_shape(variables, grads):
    return [grads[0], np.zeros((2,), dtype="float32")], variables


def bad_shape_first(variables, grads):
    return [np.zeros((4,), dtype="float32"), grads[1]], variables


def too_few(variables, grads):
    return [grads[0]], variables


def too_many(variables, grads):
    return grads + [grads[0]], variables


def all_none(variables, grads):
    return [None, None], variables


def stranger(variables, grads):
    return grads, [variables[0], rmsprop.Variable([[0.0, 0.0], [0.0, 0.0]], name="other")]


def copy_of_variable(variables, grads):
    return grads, [variables[0], rmsprop.Variable(variables[1].numpy(), name="b")]


def string_gradient(variables, grads):
    return [grads[0], np.array([["a", "b"], ["c", "d"]])], variables


def duplicated(variables, grads):
    return [grads[0], grads[0]], [variables[0], variables[0]]


REJECTED = [
    (bad_shape, ValueError, ["'b'", "(2,)", "(2, 2)"]),
    (bad_shape_first, ValueError, ["'w'", "(4,)", "(3,)"]),
    (too_few, ValueError, ["1", "2"]),
    (too_many, ValueError, ["3", "2"]),
    (all_none, ValueError, ["No gradients provided for any variable."]),
    (stranger, ValueError, ["other"]),
    (copy_of_variable, ValueError, ["'b'"]),
    (string_gradient, TypeError, ["'b'"]),
    (duplicated, ValueError, ["more than once"]),
]


@pytest.mark.parametrize("wrap", [False, True], ids=["plain", "loss_scale"])
@pytest.mark.parametrize("config", CONFIGS, ids=["default", "everything"])
@pytest.mark.parametrize("make, error, words", REJECTED, ids=[m.__name__ for m, _, _ in REJECTED])
def test_rejected_apply_changes_nothing(make, error, words, config, wrap):
    optimizer, variables, grads = trained(config, wrap)
    before = snapshot(optimizer, variables)
    iterations = int(optimizer.iterations)
    bad_grads, bad_vars = make(variables, grads)
    with pytest.raises(error) as info:
        optimizer.apply(bad_grads, bad_vars)
    for word in words:
        assert word in str(info.value), (word, str(info.value))
    assert optimizer.iterations == iterations
    assert_unchanged(optimizer, variables, before)
    # And the optimizer still works afterwards: the next good step changes the
    # variables (with accumulation every 3rd call updates: this is the 3rd) and
    # ends exactly where an optimizer that never saw the bad call ends.
    optimizer.apply(grads, variables)
    assert optimizer.iterations != iterations
    assert not any(np.array_equal(v.numpy(), old) for v, old in zip(variables, before[0]))
    untouched, untouched_variables, _ = trained(config, wrap)
    untouched.apply(grads, untouched_variables)
    assert_unchanged(optimizer, variables, snapshot(untouched, untouched_variables))


def test_rejected_apply_gradients_changes_nothing():
    optimizer, variables, grads = trained()
    before = snapshot(optimizer, variables)
    with pytest.raises(ValueError, match="'b'"):
        optimizer.apply_gradients([(grads[0], variables[0]), (np.zeros(5), variables[1])])
    assert_unchanged(optimizer, variables, before)


def test_all_none_on_first_call():
    optimizer = rmsprop.RMSprop()
    var = rmsprop.Variable([1.0, 2.0])
    with pytest.raises(ValueError, match=r"^No gradients provided for any variable\.$"):
        optimizer.apply([None], [var])
    np.testing.assert_array_equal(var.numpy(), [1.0, 2.0])
    assert optimizer.iterations == 0


def test_some_none_gradients_warn_with_the_names():
    optimizer = rmsprop.RMSprop()
    a, b = rmsprop.Variable([1.0], name="alpha"), rmsprop.Variable([1.0], name="beta")
    with pytest.warns(UserWarning, match="beta"):
        optimizer.apply([np.ones(1, dtype="float32"), None], [a, b])
    assert b.numpy()[0] == 1.0 and a.numpy()[0] != 1.0


def test_apply_without_variables_before_build():
    optimizer = rmsprop.RMSprop()
    with pytest.raises(ValueError, match="build"):
        optimizer.apply([np.ones(1)])


@pytest.mark.parametrize("dtype", ["int32", "int64", "bool", "complex64"])
def test_non_float_variables_rejected(dtype):
    optimizer = rmsprop.RMSprop()
    if dtype == "complex64":
        variable = np.zeros(2, dtype=dtype)
    else:
        variable = rmsprop.Variable(np.zeros(2), dtype=dtype, name="counts")
    with pytest.raises(TypeError) as info:
        optimizer.apply([np.ones(2)], [variable])
    assert dtype in str(info.value)
    if dtype != "complex64":
        assert "counts" in str(info.value)
    assert not optimizer.built and optimizer.iterations == 0


def test_read_only_array_variable_rejected():
    array = np.array([1.0, 2.0])
    array.setflags(write=False)
    optimizer = rmsprop.RMSprop()
    with pytest.raises(ValueError, match="read-only"):
        optimizer.apply([np.ones(2)], [array])
    np.testing.assert_array_equal(array, [1.0, 2.0])
    assert not optimizer.built


@pytest.mark.parametrize("views, position", [
    (lambda b: [b[:12], b[10:15]], 1),                                  # end over start
    (lambda b: [b[5:8], b[:16]], 1),                                    # one inside another
    (lambda b: [b[:4], b[::-1][:12], b[4:10]], 2),                      # reversed view
    (lambda b: [b.reshape(4, 5)[1:, 2:], b[18:], b.reshape(4, 5)[:, :3]], 2),  # 2-d blocks
])
def test_arrays_sharing_memory_are_refused_before_any_change(views, position):
    # Each parameter is updated as if it had its own memory: an element two
    # of them hold would be updated twice (or once, depending on the step's
    # layout), so views of one buffer that overlap are refused at build.
    base = np.arange(20.0)
    params = views(base)
    optimizer = rmsprop.RMSprop()
    with pytest.raises(ValueError, match=rf"`variables\[{position}\]` must be an array "
                                         "sharing no memory with the others"):
        optimizer.apply([np.ones(p.shape) for p in params], params)
    assert not optimizer.built and optimizer.iterations.numpy() == 0
    np.testing.assert_array_equal(base, np.arange(20.0))


def test_arrays_side_by_side_or_interleaved_in_one_buffer_are_trained():
    # Views of one buffer that share no element (also interleaved, whose
    # spans overlap) are separate parameters: trained like copies of them.
    base = np.arange(1.0, 21.0)
    for params in ([base[:12], base[12:]], [base[::2], base[1::2]]):
        copies = [p.copy() for p in params]
        optimizer, reference = rmsprop.RMSprop(), rmsprop.RMSprop()
        grads = [np.full(p.shape, 0.5) for p in params]
        optimizer.apply(grads, params)
        reference.apply(grads, copies)
        for param, copy in zip(params, copies):
            np.testing.assert_array_equal(param, copy)


def test_non_array_variable_rejected():
    with pytest.raises(TypeError, match=r"`variables\[1\]` must be an rmsprop.Variable"):
        rmsprop.RMSprop().build([rmsprop.Variable([1.0]), [1.0, 2.0]])


def _refusal(call):
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    return info.value


def test_non_variables_are_element_errors_with_python_indices_and_parts():
    """Each entry point names the argument and the element, 0-based, in
    Python's message; the parts (argument, index) let R write its own."""
    optimizer = rmsprop.RMSprop()
    w = rmsprop.Variable([1.0, 2.0], name="w")
    read_only = np.zeros(2)
    read_only.setflags(write=False)
    cases = [
        (lambda: optimizer.build([w, 1.0]), TypeError, "variables", (1,),
         "`variables[1]` must be an rmsprop.Variable or a writable NumPy float array; got 1.0."),
        (lambda: optimizer.apply([1.0], ["a"]), TypeError, "trainable_variables", (0,),
         "`trainable_variables[0]` must be an rmsprop.Variable or a writable NumPy float "
         "array; got 'a'."),
        (lambda: optimizer.apply_gradients([(1.0, 2.0)]), TypeError, "grads_and_vars", (0, 1),
         "`grads_and_vars[0][1]` must be an rmsprop.Variable or a writable NumPy float "
         "array; got 2.0."),
        (lambda: optimizer.apply_gradients([1.0]), TypeError, "grads_and_vars", (0,),
         "`grads_and_vars[0]` must be a (gradient, variable) pair; got 1.0."),
        (lambda: optimizer.build(1.0), TypeError, "variables", None,
         "`variables` must be a list of variables; got 1.0."),
        (lambda: optimizer.apply(1.0, [w]), TypeError, "grads", None,
         "`grads` must be a list of gradients; got 1.0."),
        (lambda: optimizer.build([read_only]), ValueError, "variables", (0,),
         "`variables[0]` must be an rmsprop.Variable or a writable NumPy float array; got "
         "array([0., 0.]). It is read-only, and the optimizer updates variables in place: "
         "pass a writable copy (e.g. np.array(x))."),
        (lambda: optimizer.build([np.zeros(2, dtype=np.int32)]), TypeError, "variables", (0,),
         "`variables[0]` must be an rmsprop.Variable or a writable NumPy float array; got "
         "array([0, 0], dtype=int32). Its dtype is int32; only float16, float32 and float64 "
         "variables can be trained."),
    ]
    for call, error_type, argument, index, message in cases:
        error = _refusal(call)
        assert type(error) is error_type
        assert str(error) == message
        assert error.argument == argument and error.index == index
        assert not optimizer.built
    error = _refusal(lambda: optimizer.build([w, w]))
    assert str(error).startswith("`variables[1]` must be a variable not listed before it")
    optimizer.build([w])
    error = _refusal(lambda: optimizer.apply([np.ones(2)], [rmsprop.Variable([1.0, 2.0])]))
    assert str(error).startswith("`trainable_variables[0]` must be a variable optimizer "
                                 "'rmsprop' is built on; got <Variable")
    assert error.index == (0,)
    assert int(optimizer.iterations) == 0
    np.testing.assert_array_equal(w.numpy(), [1.0, 2.0])


def test_build_twice_and_empty_build():
    optimizer = rmsprop.RMSprop()
    with pytest.raises(ValueError, match="empty"):
        optimizer.build([])
    variables = [rmsprop.Variable([1.0])]
    optimizer.build(variables)
    optimizer.apply([np.ones(1)])
    state = [v.numpy() for v in optimizer.variables]
    optimizer.build(variables)         # built already: returns, as in Keras
    assert all(np.array_equal(v.numpy(), s) for v, s in zip(optimizer.variables, state))
    with pytest.raises(ValueError, match="already built on other variables"):
        optimizer.build([rmsprop.Variable([1.0])])


def test_exclude_from_weight_decay_after_build():
    optimizer = rmsprop.RMSprop(weight_decay=0.1)
    optimizer.build([rmsprop.Variable([1.0], name="bias")])
    with pytest.raises(ValueError, match="built"):
        optimizer.exclude_from_weight_decay(var_names=["bias"])


def test_exclude_from_weight_decay_bad_names():
    optimizer = rmsprop.RMSprop(weight_decay=0.1)
    with pytest.raises(TypeError, match="var_names"):
        optimizer.exclude_from_weight_decay(var_names=["ok", 3])
    with pytest.raises(ValueError, match=r"var_names.*\(unclosed"):
        optimizer.exclude_from_weight_decay(var_names="(unclosed")


@pytest.mark.parametrize("var_list", [np.zeros(3), rmsprop.Variable(1.0, name="w"),
                                      rmsprop.Variable([1.0, 2.0], name="w"), "w"],
                         ids=["array", "scalar-variable", "vector-variable", "string"])
def test_exclude_from_weight_decay_bare_var_list(var_list):
    optimizer = rmsprop.RMSprop(weight_decay=0.1)
    with pytest.raises(TypeError, match="var_list"):
        optimizer.exclude_from_weight_decay(var_list=var_list)


def test_loss_scale_rejected_apply_keeps_scale():
    optimizer, variables, grads = trained(wrap=True)
    scale, counter = float(optimizer.dynamic_scale.numpy()), int(optimizer.step_counter.numpy())
    with pytest.raises(ValueError):
        optimizer.apply([grads[0], np.zeros(7)], variables)
    assert float(optimizer.dynamic_scale.numpy()) == scale
    assert int(optimizer.step_counter.numpy()) == counter


def test_gradients_of_wrong_shape_on_first_apply():
    optimizer = rmsprop.RMSprop()
    var = rmsprop.Variable(np.ones((2, 3)), name="kernel")
    with pytest.raises(ValueError) as info:
        optimizer.apply([np.ones((3, 2))], [var])
    assert "kernel" in str(info.value) and "(3, 2)" in str(info.value) \
        and "(2, 3)" in str(info.value)
    np.testing.assert_array_equal(var.numpy(), np.ones((2, 3)))
    assert optimizer.iterations == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        optimizer.apply([np.ones((2, 3))], [var])
    assert optimizer.iterations == 1


# One message style for every argument error of the package (checks.py):
# "`<argument>` must be <requirement>; got <value>." The parts stay on the
# exception, for the R package to write the value as R does.
ONE_STYLE = [
    (lambda: rmsprop.RMSprop(rho=math.nan), "rho", "nan"),
    (lambda: rmsprop.RMSprop(centered=None), "centered", "None"),
    (lambda: rmsprop.RMSprop(learning_rate=[0.1]), "learning_rate", "[0.1]"),
    (lambda: schedules.ExponentialDecay(0.1, 0, 0.5), "decay_steps", "0"),
    (lambda: schedules.ExponentialDecay(0.1, 10, 0.5, staircase=1), "staircase", "1"),
    (lambda: schedules.PiecewiseConstantDecay([5, 2], [1, 2, 3]), "boundaries", "[5, 2]"),
    (lambda: schedules.PiecewiseConstantDecay([], [1]), "boundaries", "[]"),
    (lambda: schedules.ExponentialDecay(0.1, 10, 0.5)("a"), "step", "'a'"),
    (lambda: schedules.serialize(3), "schedule", "3"),
    (lambda: rmsprop.LossScaleOptimizer(3), "inner_optimizer", "3"),
    (lambda: rmsprop.Variable(1.0, name=3), "name", "3"),
    (lambda: rmsprop.Variable(1.0, name="a/b"), "name", "'a/b'"),
    (lambda: rmsprop.Variable(1.0, dtype="complex64"), "dtype", "'complex64'"),
    (lambda: rmsprop.RMSprop().exclude_from_weight_decay(var_names=3), "var_names", "3"),
    (lambda: rmsprop.load_optimizer("x.npz", check_names=1), "check_names", "1"),
    (lambda: rmsprop.apply_to_values(rmsprop.RMSprop(), [1.0], [1.0], names=[1]), "names", "[1]"),
]


@pytest.mark.parametrize("call, argument, shown", ONE_STYLE,
                         ids=[f"{a}={s}" for _, a, s in ONE_STYLE])
def test_argument_errors_have_one_style(call, argument, shown):
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    message = str(info.value)
    assert message.startswith(f"`{argument}` must be "), message
    assert f"; got {shown}" in message, message
    error = info.value
    assert error.argument == argument
    assert message.startswith(f"`{argument}` must be {error.requirement}; got {shown}")


def test_no_other_argument_message_style_in_the_engine():
    # Keras' "Argument `x` must be ... Received: x=..." was the schedules' own
    # style; it must not come back beside the package's one style.
    import pathlib
    for path in pathlib.Path(rmsprop.__file__).parent.glob("*.py"):
        text = path.read_text()
        assert "Received:" not in text, path
        assert "Argument `" not in text, path


def test_apply_to_values_refuses_a_value_or_gradient_that_float32_cannot_hold():
    """Keras would cast 1e39 to inf (and the parameter would end inf or NaN);
    the engine refuses it, naming the element, before anything changes."""
    def message(argument, where, value, dtype="float32", largest="3.4028234663852886e+38"):
        return (f"`{argument}{where}` must be representable in {dtype}, the dtype it is "
                f"trained in (largest: {largest}); got {value}, which is inf in {dtype}.")

    with pytest.raises(ValueError) as info:
        rmsprop.apply_to_values(rmsprop.RMSprop(), [np.ones(2)], [np.array([1.0, 1e39])],
                                dtype="float32")
    assert str(info.value) == message("values", "[0][1]", "1e+39")
    assert info.value.argument == "values" and info.value.index == (0, 1)
    with pytest.raises(ValueError) as info:
        rmsprop.apply_to_values(rmsprop.RMSprop(), [1.0], [100000], dtype="float16")
    assert str(info.value) == message("values", "[0]", "100000", "float16", "65504.0")

    optimizer = rmsprop.RMSprop(use_ema=True)
    values = rmsprop.apply_to_values(optimizer, [np.ones((2, 2)), 1.0],
                                     [np.ones((2, 2)), 0.0], dtype="float32")
    state = [v.numpy().copy() for v in optimizer.variables]
    finalized = rmsprop.finalized_values(optimizer)
    grads = [np.array([[1.0, 1.0], [-1e39, 1.0]]), 1.0]
    with pytest.raises(ValueError) as info:
        rmsprop.apply_to_values(optimizer, grads, values, dtype="float32")
    assert str(info.value) == message("grads", "[0][1][0]", "-1e+39")
    with pytest.raises(ValueError, match=r"`values\[1\]` must be representable in float32"):
        rmsprop.apply_to_values(optimizer, [np.ones((2, 2)), 1.0], [values[0], 4e38],
                                dtype="float32")
    for before, after in zip(state, optimizer.variables):
        np.testing.assert_array_equal(before, after.numpy())
    for before, after in zip(finalized, rmsprop.finalized_values(optimizer)):
        np.testing.assert_array_equal(before, after)
    # in a long value, in any chunk the check takes, and in every layout
    for position in (5, 40000, 99999):
        for layout in ("C", "F"):
            long_value = np.zeros(100000)
            long_value[position] = -1e39
            if layout == "F":
                long_value = np.asfortranarray(long_value.reshape(400, 250, order="F"))
            with pytest.raises(ValueError, match="got -1e[+]39, which is inf in float32"):
                rmsprop.apply_to_values(rmsprop.RMSprop(), [np.zeros_like(long_value)],
                                        [long_value], dtype="float32")
    # the largest float32, and what rounds to it, are fine
    largest = float(np.finfo(np.float32).max)
    result = rmsprop.apply_to_values(rmsprop.RMSprop(learning_rate=0.0), [np.ones(1)],
                                     [np.array([largest * (1 + 2 ** -25)])], dtype="float32")
    assert result[0][0] == largest


def test_loss_scaling_skips_a_step_whose_gradient_float32_cannot_hold():
    optimizer = rmsprop.LossScaleOptimizer(rmsprop.RMSprop(), initial_scale=8.0)
    result = rmsprop.apply_to_values(optimizer, [np.array([1e39, 1.0])], [np.ones(2)],
                                     dtype="float32")
    np.testing.assert_array_equal(result[0], [1.0, 1.0])
    assert float(optimizer.dynamic_scale.numpy()) == 4.0
    assert int(optimizer.iterations) == 0


def test_apply_to_values_names_are_fixed_at_the_first_call():
    """Renamed or reordered values would take over the state (slots, EMA) of
    the names they replace: a ValueError, before anything changes."""
    optimizer = rmsprop.RMSprop(use_ema=True)
    grads = [np.ones(2), np.full(2, 3.0)]
    values = rmsprop.apply_to_values(optimizer, grads, [np.zeros(2), np.zeros(2)],
                                     names=["w", "b"])
    state = [v.numpy().copy() for v in optimizer.variables]
    finalized = rmsprop.finalized_values(optimizer)
    for names in (["b", "w"], ("w", "v"), ["param_1", "param_2"]):
        with pytest.raises(ValueError) as info:
            rmsprop.apply_to_values(optimizer, grads, values, names=names)
        assert str(info.value) == (
            f"The optimizer was first used with parameters named ['w', 'b']; got "
            f"{list(names)}. The names are fixed at the first call: use a new optimizer for "
            "a new model.")
    for before, after in zip(state, optimizer.variables):
        np.testing.assert_array_equal(before, after.numpy())
    for before, after in zip(finalized, rmsprop.finalized_values(optimizer)):
        np.testing.assert_array_equal(before, after)
    # the same names, as a tuple, a NumPy array, or none given (by position) go on
    rmsprop.apply_to_values(optimizer, grads, values, names=("w", "b"))
    rmsprop.apply_to_values(optimizer, grads, values, names=np.array(["w", "b"]))
    rmsprop.apply_to_values(optimizer, grads, values)
    assert int(optimizer.iterations) == 4
    # names first given as a NumPy array are compared as a list
    optimizer = rmsprop.RMSprop()
    rmsprop.apply_to_values(optimizer, grads, values, names=np.array(["w", "b"]))
    rmsprop.apply_to_values(optimizer, grads, values, names=np.array(["w", "b"]))
    with pytest.raises(ValueError, match="first used with parameters named"):
        rmsprop.apply_to_values(optimizer, grads, values, names=np.array(["b", "w"]))
