"""A step is all-or-nothing, reads gradients as if they were copies, and is
serialised across threads (issue 10, sections 2 to 4)."""

import threading
import warnings

import numpy as np
import pytest

import rmsprop

INT64_MAX = np.iinfo(np.int64).max


def snapshot(optimizer, variables):
    """Every number the caller can see, as bytes (compared bit for bit)."""
    state = [np.asarray(v).tobytes() for v in variables]
    state += [np.asarray(v).tobytes() for v in optimizer.variables]
    if isinstance(optimizer, rmsprop.LossScaleOptimizer):
        state.append(np.asarray(optimizer.inner_optimizer.iterations).tobytes())
    state.append(repr(optimizer.iterations))
    return state


def two_variables(kind):
    values = [np.array([1.0, -2.0, 3.0]), np.array([[0.5, 0.25]])]
    if kind == "Variable":
        return [rmsprop.Variable(v, dtype="float32", name=f"w{i}") for i, v in enumerate(values)]
    return [np.array(v, dtype="float32") for v in values]


GRADS = [np.array([0.1, 0.2, -0.3], dtype="float32"), np.array([[1.0, -1.0]], dtype="float32")]
FULL = dict(momentum=0.9, centered=True, weight_decay=0.1, use_ema=True,
            ema_overwrite_frequency=2, global_clipnorm=1.0)


class FailingRate:
    """A learning rate callable that fails (raises, or returns a non-number)
    on its `fail_at`-th read, counting from 1; 0.01 otherwise."""

    def __init__(self, fail_at, how):
        self.calls = 0
        self.fail_at = fail_at
        self.how = how

    def __call__(self):
        self.calls += 1
        if self.calls == self.fail_at:
            if self.how == "raises":
                raise RuntimeError("rate unavailable")
            return "not a number"
        return 0.01


def trained(optimizer, variables, steps=2):
    for _ in range(steps):
        optimizer.apply(GRADS, variables)


# -- section 2: every step is all-or-nothing ---------------------------------------
@pytest.mark.parametrize("kind", ["Variable", "array"])
@pytest.mark.parametrize("how", ["raises", "returns a string"])
@pytest.mark.parametrize("fail_at", [2, 3])
def test_a_callable_rate_failing_midway_changes_nothing(kind, how, fail_at):
    # With weight decay, Keras reads the rate once per decayed variable and
    # once for the update: three reads per step with two variables.
    variables = two_variables(kind)
    rate = FailingRate(fail_at=10 ** 9, how=how)
    optimizer = rmsprop.RMSprop(learning_rate=rate, **FULL)
    trained(optimizer, variables)
    rate.calls, rate.fail_at = 0, fail_at
    before = snapshot(optimizer, variables)
    with pytest.raises((RuntimeError, TypeError)):
        optimizer.apply(GRADS, variables)
    assert snapshot(optimizer, variables) == before
    # A retry that succeeds is one step, not a step and a half.
    rate.fail_at = 0
    optimizer.apply(GRADS, variables)
    again = two_variables(kind)
    fresh = rmsprop.RMSprop(learning_rate=FailingRate(0, how), **FULL)
    trained(fresh, again, steps=3)
    for a, b in zip(variables, again):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


def test_a_schedule_that_raises_changes_nothing():
    class Broken(rmsprop.schedules.LearningRateSchedule):
        def __call__(self, step):
            if int(step) >= 2:
                raise RuntimeError("no rate")
            return np.float32(0.01)

    variables = two_variables("Variable")
    optimizer = rmsprop.RMSprop(learning_rate=Broken(), **FULL)
    trained(optimizer, variables)
    before = snapshot(optimizer, variables)
    with pytest.raises(RuntimeError, match="no rate"):
        optimizer.apply(GRADS, variables)
    assert snapshot(optimizer, variables) == before


@pytest.mark.parametrize("config", [{}, FULL, dict(gradient_accumulation_steps=2)])
def test_a_plain_array_made_read_only_after_build_changes_nothing(config):
    variables = two_variables("array")
    optimizer = rmsprop.RMSprop(learning_rate=0.1, **config)
    trained(optimizer, variables, steps=3)
    variables[1].setflags(write=False)
    before = snapshot(optimizer, variables)
    with pytest.raises(ValueError, match="'variable_1'.*read-only"):
        for _ in range(2):        # with accumulation, the second is the update step
            optimizer.apply(GRADS, variables)
    if not config.get("gradient_accumulation_steps"):
        assert snapshot(optimizer, variables) == before


def test_a_variable_stored_outside_the_buffers_made_read_only_changes_nothing():
    # float64 Variables computed in float32 stay where they are (gathered and
    # written back around the update), so their storage must be writable.
    variables = [rmsprop.Variable(np.ones(3), dtype="float64", name="a"),
                 rmsprop.Variable(np.ones(2), dtype="float64", name="b")]
    optimizer = rmsprop.RMSprop(learning_rate=0.1)
    optimizer.apply([np.ones(3), np.ones(2)], variables)
    variables[1].value.flags.writeable = False
    before = snapshot(optimizer, variables)
    with pytest.raises(ValueError, match="'b'.*read-only"):
        optimizer.apply([np.ones(3), np.ones(2)], variables)
    assert snapshot(optimizer, variables) == before


@pytest.mark.parametrize("wrapped", [False, True])
def test_the_iteration_counter_at_its_maximum_changes_nothing(wrapped):
    variables = two_variables("Variable")
    optimizer = rmsprop.RMSprop(learning_rate=0.1, **FULL)
    if wrapped:
        optimizer = rmsprop.LossScaleOptimizer(optimizer, initial_scale=4.0)
    trained(optimizer, variables)
    inner = optimizer.inner_optimizer if wrapped else optimizer
    inner.variables[0].assign(INT64_MAX - 1)    # the largest count assign() takes
    optimizer.apply(GRADS, variables)           # counted: now at the maximum
    assert int(inner.variables[0]) == INT64_MAX
    before = snapshot(optimizer, variables)
    for _ in range(2):                          # every retry fails the same way
        with pytest.raises(OverflowError, match="iteration counter"):
            optimizer.apply(GRADS, variables)
        assert snapshot(optimizer, variables) == before


def test_a_failed_inner_step_leaves_the_loss_scale_alone():
    variables = two_variables("Variable")
    rate = FailingRate(fail_at=10 ** 9, how="raises")
    optimizer = rmsprop.LossScaleOptimizer(rmsprop.RMSprop(learning_rate=rate, **FULL),
                                           initial_scale=4.0, dynamic_growth_steps=1)
    trained(optimizer, variables)
    rate.calls, rate.fail_at = 0, 2
    before = snapshot(optimizer, variables)
    with pytest.raises(RuntimeError):
        optimizer.apply(GRADS, variables)
    assert snapshot(optimizer, variables) == before


def test_a_failed_step_from_r_values_changes_nothing():
    optimizer = rmsprop.RMSprop(learning_rate=FailingRate(10 ** 9, "raises"), weight_decay=0.1)
    values = rmsprop.apply_to_values(optimizer, GRADS, [np.ones(3), np.ones((1, 2))])
    optimizer._learning_rate.fail_at = optimizer._learning_rate.calls + 1
    before = snapshot(optimizer, [])
    with pytest.raises(RuntimeError):
        rmsprop.apply_to_values(optimizer, GRADS, values)
    assert snapshot(optimizer, []) == before
    assert np.array_equal(rmsprop.finalized_values(optimizer)[0], values[0])


# -- section 3: a gradient may share memory with its variable -----------------------
ALIAS_CONFIGS = [
    {}, dict(momentum=0.9), dict(centered=True), dict(weight_decay=0.5),
    dict(weight_decay=0.5, use_ema=True), dict(use_ema=True, ema_overwrite_frequency=1),
    dict(clipnorm=0.5), dict(clipvalue=0.1), dict(global_clipnorm=0.5),
    dict(gradient_accumulation_steps=2), dict(loss_scale_factor=4.0), FULL,
]


def alias_of(variable, how):
    array = variable.value if isinstance(variable, rmsprop.Variable) else variable
    if how == "itself":
        return variable if isinstance(variable, np.ndarray) else array
    if how == "a view":
        return array[...]
    return variable            # the Variable object itself


@pytest.mark.parametrize("config", ALIAS_CONFIGS, ids=[str(sorted(c)) for c in ALIAS_CONFIGS])
@pytest.mark.parametrize("kind, how", [("Variable", "itself"), ("Variable", "a view"),
                                       ("Variable", "the Variable"), ("array", "itself"),
                                       ("array", "a view")])
def test_a_gradient_that_is_its_variable_gives_the_results_of_a_copy(config, kind, how):
    # Members of 40000 (more than a chunk) and small ones, so that large
    # members read in place and small ones gathered are both covered.
    shapes = [(40000,), (3,), (2, 2)]
    rng = np.random.default_rng(0)
    init = [rng.standard_normal(s).astype("float32") for s in shapes]

    def make():
        if kind == "Variable":
            return [rmsprop.Variable(v, dtype="float32") for v in init]
        return [v.copy() for v in init]

    aliased, copied = make(), make()
    first = rmsprop.RMSprop(learning_rate=0.1, **config)
    second = rmsprop.RMSprop(learning_rate=0.1, **config)
    for _ in range(3):
        first.apply([alias_of(v, how) for v in aliased], aliased)
        second.apply([np.array(v, copy=True) for v in copied], copied)
    for a, b in zip(aliased, copied):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
    for a, b in zip(first.variables, second.variables):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


def test_the_gradient_of_half_the_squared_norm_with_weight_decay():
    # The case the audit measured: weight decay wrote into the variable before
    # the update read the gradient, giving velocity 0.1175 instead of 0.1302.
    w = rmsprop.Variable([1.0], dtype="float32", name="w")
    optimizer = rmsprop.RMSprop(learning_rate=0.1, weight_decay=0.5)
    for _ in range(2):
        optimizer.apply([w.value], [w])
    x = np.float32(1.0)
    velocity = np.float32(0.0)
    for _ in range(2):      # the formula, with the gradient read before any write
        g = x
        x = x - x * np.float32(0.5) * np.float32(0.1)
        velocity = np.float32(0.9) * velocity + np.float32(0.1) * g * g
        x = x - np.float32(0.1) * g / np.sqrt(velocity + np.float32(1e-7))
    assert float(optimizer.variables[2].value[0]) == pytest.approx(float(velocity), rel=1e-6)
    assert float(optimizer.variables[2].value[0]) == pytest.approx(0.1302, abs=1e-4)


@pytest.mark.parametrize("kind", ["Variable", "array"])
def test_gradients_that_are_other_variables_read_their_values_before_the_step(kind):
    init = [np.full(5, 1.0, "float32"), np.full(5, 2.0, "float32")]
    if kind == "Variable":
        swapped = [rmsprop.Variable(v) for v in init]
        copied = [rmsprop.Variable(v) for v in init]
    else:
        swapped = [v.copy() for v in init]
        copied = [v.copy() for v in init]
    first = rmsprop.RMSprop(learning_rate=0.1, weight_decay=0.1)
    second = rmsprop.RMSprop(learning_rate=0.1, weight_decay=0.1)
    for _ in range(2):
        first.apply([alias_of(swapped[1], "itself"), alias_of(swapped[0], "a view")], swapped)
        second.apply([np.array(copied[1], copy=True), np.array(copied[0], copy=True)], copied)
    for a, b in zip(swapped, copied):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


# -- section 4: threads ------------------------------------------------------------
def test_one_optimizer_stepped_from_two_threads_counts_every_step_exactly():
    rng = np.random.default_rng(1)
    shapes = [(300,)] * 20
    init = [rng.standard_normal(s).astype("float32") for s in shapes]
    grads = [rng.standard_normal(s).astype("float32") for s in shapes]
    shared = [rmsprop.Variable(v) for v in init]
    optimizer = rmsprop.RMSprop(learning_rate=0.01, momentum=0.9)
    optimizer.build(shared)
    barrier = threading.Barrier(2)
    errors = []

    def worker():
        try:
            barrier.wait()
            for _ in range(200):
                optimizer.apply(grads, shared)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert optimizer.iterations == 400
    # The same gradients every step: serialised steps are 400 steps in a row.
    serial = [rmsprop.Variable(v) for v in init]
    alone = rmsprop.RMSprop(learning_rate=0.01, momentum=0.9)
    for _ in range(400):
        alone.apply(grads, serial)
    for a, b in zip(shared, serial):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


def test_two_optimizers_in_two_threads_stay_independent():
    rng = np.random.default_rng(2)
    init = [rng.standard_normal((500,)).astype("float32") for _ in range(4)]
    grads = [rng.standard_normal((500,)).astype("float32") for _ in range(4)]
    results = {}

    def train(key, momentum):
        variables = [rmsprop.Variable(v) for v in init]
        optimizer = rmsprop.RMSprop(learning_rate=0.01, momentum=momentum)
        for _ in range(150):
            optimizer.apply(grads, variables)
        results[key] = [v.numpy() for v in variables]

    threads = [threading.Thread(target=train, args=(k, m)) for k, m in (("a", 0.0), ("b", 0.5))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for key, momentum in (("a", 0.0), ("b", 0.5)):
        results[key + "-alone"] = None
        train(key + "-alone", momentum)
        for a, b in zip(results[key], results[key + "-alone"]):
            assert a.tobytes() == b.tobytes()


def test_a_loss_scale_optimizer_from_two_threads_counts_every_step():
    shared = [rmsprop.Variable(np.ones(50))]
    optimizer = rmsprop.LossScaleOptimizer(rmsprop.RMSprop(), initial_scale=2.0,
                                           dynamic_growth_steps=7)

    def worker():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(100):
                optimizer.apply([np.ones(50, dtype="float32")], shared)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert optimizer.iterations == 200
    assert float(optimizer.dynamic_scale.value) == 2.0 * 2 ** (200 // 7)
    assert int(optimizer.step_counter.value) == 200 % 7


def test_r_bridge_refuses_result_vectors_that_are_not_views():
    # apply_for_r writes results into R's memory through reticulate's
    # read-only views; an array that owns its data (a copy) would keep them
    from rmsprop.positional import TRAINERS
    optimizer = rmsprop.RMSprop(learning_rate=0.1)
    copy = np.zeros((100,))
    copy.flags.writeable = False
    error = TRAINERS.apply_for_r(optimizer, [np.ones((100,))], [np.ones((100,))], "float64",
                                 "w", [copy, None], 0, 1, True)
    assert isinstance(error, RuntimeError) and "copy of a result vector" in str(error)
    assert not optimizer.built and TRAINERS.trainer(optimizer) is None
    # a view of memory owned elsewhere (as reticulate's of R's vector) is written
    owner = np.zeros((100,))
    view = owner[:]
    view.flags.writeable = False
    assert TRAINERS.apply_for_r(optimizer, [np.ones((100,))], [np.ones((100,))], "float64",
                                "w", [view, None], 0, 2, True) is None
    assert owner[0] != 0


@pytest.mark.parametrize("source_dtype", [np.float64, np.float32])
@pytest.mark.parametrize("where", [None, 0, 32767, 32768, 70000, 100002])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_r_bridge_writes_and_checks_long_results_chunk_by_chunk(source_dtype, where, bad):
    # write_for_r copies a long 1-d result into R's vector chunk by chunk,
    # checking each chunk as it goes: every number copied, and a NaN or Inf
    # found in whichever chunk it is (the first, either side of a chunk's
    # edge, the last, shorter one)
    from rmsprop.positional import write_checked
    rng = np.random.default_rng(7)
    value = rng.standard_normal(100003).astype(source_dtype)
    if where is not None:
        value[where] = bad
    out = np.full(value.shape, 5.0)
    assert write_checked(out, value) is (where is not None)
    assert np.array_equal(out, value.astype(np.float64), equal_nan=True)
