"""save_optimizer / load_optimizer: bit-identical resume, atomic writes, bad files."""

import os

import numpy as np
import pytest

import rmsprop
from rmsprop import schedules

pytestmark = pytest.mark.filterwarnings("ignore:Gradients do not exist")

SHAPES = [("kernel", (3, 2)), ("bias", (2,))]


def initial():
    rng = np.random.default_rng(5)
    return [rng.uniform(-1, 1, shape) for _, shape in SHAPES]


def grads_at(step, dtype="float32"):
    rng = np.random.default_rng(1000 + step)
    grads = [rng.uniform(-3, 3, shape).astype(dtype) for _, shape in SHAPES]
    if step == 3:
        grads[1] = None
    return grads


def nonfinite_grads_at(step, dtype="float32"):
    grads = grads_at(step, dtype)
    if step in (2, 6):
        grads[0] = grads[0].copy()
        grads[0][1, 1] = np.inf if step == 2 else np.nan
    return grads


FACTORIES = {
    "plain": lambda: rmsprop.RMSprop(learning_rate=0.05),
    "centered+momentum": lambda: rmsprop.RMSprop(learning_rate=0.05, centered=True,
                                                 momentum=0.7, weight_decay=0.01),
    "ema+accumulation": lambda: rmsprop.RMSprop(learning_rate=0.05, use_ema=True,
                                                ema_momentum=0.8, ema_overwrite_frequency=2,
                                                gradient_accumulation_steps=3, clipnorm=1.0),
    "schedule": lambda: rmsprop.RMSprop(
        learning_rate=schedules.ExponentialDecay(0.1, 3, 0.5), momentum=0.1),
    "loss_scale": lambda: rmsprop.LossScaleOptimizer(
        rmsprop.RMSprop(learning_rate=0.05, momentum=0.5), initial_scale=256.0,
        dynamic_growth_steps=2),
}


def fresh(values, dtype="float32"):
    return [rmsprop.Variable(v, dtype=dtype, name=name) for v, (name, _) in zip(values, SHAPES)]


def run(optimizer, variables, steps, gradients):
    for step in steps:
        optimizer.apply(gradients(step), variables)


def state(optimizer):
    return [v.numpy() for v in optimizer.variables]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", list(FACTORIES))
def test_resume_is_bit_identical(kind, dtype, tmp_path):
    gradients = nonfinite_grads_at if kind == "loss_scale" else grads_at
    grads = lambda step: gradients(step, dtype)  # noqa: E731
    a = FACTORIES[kind]()
    a_vars = fresh(initial(), dtype)
    run(a, a_vars, range(10), grads)

    b = FACTORIES[kind]()
    b_vars = fresh(initial(), dtype)
    run(b, b_vars, range(5), grads)
    path = tmp_path / "opt.npz"
    assert rmsprop.save_optimizer(b, path) == str(path)
    c = rmsprop.load_optimizer(path)
    assert type(c) is type(a)
    assert c.get_config() == b.get_config()
    c_vars = fresh([v.numpy() for v in b_vars], dtype)
    run(c, c_vars, range(5, 10), grads)

    assert c.iterations == a.iterations
    for x, y in zip(a_vars, c_vars):
        assert x.dtype == y.dtype == dtype
        np.testing.assert_array_equal(x.numpy(), y.numpy())
    for x, y in zip(state(a), state(c)):
        np.testing.assert_array_equal(x, y)
    if kind == "loss_scale":
        assert float(c.dynamic_scale.numpy()) == float(a.dynamic_scale.numpy())
        assert float(a.dynamic_scale.numpy()) != 256.0
    a.finalize_variable_values(a_vars)
    c.finalize_variable_values(c_vars)
    for x, y in zip(a_vars, c_vars):
        np.testing.assert_array_equal(x.numpy(), y.numpy())
    # The resumed run is not trivially equal to a restart without the state.
    restarted = FACTORIES[kind]()
    r_vars = fresh([v.numpy() for v in b_vars], dtype)
    run(restarted, r_vars, range(5, 10), grads)
    assert not all(np.array_equal(x.numpy(), y.numpy()) for x, y in zip(r_vars, c_vars))


def test_checkpoint_of_an_unbuilt_optimizer(tmp_path):
    optimizer = rmsprop.RMSprop(learning_rate=0.25, momentum=0.5, name="fresh")
    path = rmsprop.save_optimizer(optimizer, tmp_path / "unbuilt.npz")
    loaded = rmsprop.load_optimizer(path)
    assert loaded.get_config() == optimizer.get_config()
    assert not loaded.built and loaded.iterations == 0
    a, b = rmsprop.Variable([1.0, 2.0]), rmsprop.Variable([1.0, 2.0])
    optimizer.apply([np.array([0.5, 0.5], dtype="float32")], [a])
    loaded.apply([np.array([0.5, 0.5], dtype="float32")], [b])
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_resave_before_build_keeps_the_state(tmp_path):
    optimizer = FACTORIES["centered+momentum"]()
    variables = fresh(initial())
    run(optimizer, variables, range(4), grads_at)
    first = rmsprop.save_optimizer(optimizer, tmp_path / "one.npz")
    second = rmsprop.save_optimizer(rmsprop.load_optimizer(first), tmp_path / "two.npz")
    resumed = rmsprop.load_optimizer(second)
    copies = fresh([v.numpy() for v in variables])
    run(optimizer, variables, range(4, 6), grads_at)
    run(resumed, copies, range(4, 6), grads_at)
    for x, y in zip(variables, copies):
        np.testing.assert_array_equal(x.numpy(), y.numpy())


def test_atomic_write_keeps_previous_file(tmp_path, monkeypatch):
    optimizer = FACTORIES["plain"]()
    variables = fresh(initial())
    run(optimizer, variables, range(3), grads_at)
    path = tmp_path / "ckpt.npz"
    rmsprop.save_optimizer(optimizer, path)
    good = path.read_bytes()
    run(optimizer, variables, range(3, 5), grads_at)

    def failing_write(handle, header, slots):
        handle.write(rmsprop.checkpoint.MAGIC + b" partial data that is not a whole file")
        raise OSError("disk full")

    monkeypatch.setattr(rmsprop.checkpoint, "_write", failing_write)
    with pytest.raises(OSError, match="disk full"):
        rmsprop.save_optimizer(optimizer, path)
    monkeypatch.undo()
    assert path.read_bytes() == good
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]
    restored = rmsprop.load_optimizer(path)
    restored.build(fresh(initial()))
    assert restored.iterations == 3


def test_missing_file(tmp_path):
    with pytest.raises(rmsprop.CheckpointError, match="nothing.npz.*file: no such file"):
        rmsprop.load_optimizer(tmp_path / "nothing.npz")


def test_save_into_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        rmsprop.save_optimizer(rmsprop.RMSprop(), tmp_path / "no" / "such" / "dir.npz")


def test_truncated_file(tmp_path):
    optimizer = FACTORIES["centered+momentum"]()
    run(optimizer, fresh(initial()), range(3), grads_at)
    good = rmsprop.save_optimizer(optimizer, tmp_path / "good.npz")
    data = open(good, "rb").read()
    bad = tmp_path / "truncated.npz"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(rmsprop.CheckpointError) as info:
        rmsprop.load_optimizer(bad)
    assert str(bad) in str(info.value)


def test_empty_and_garbage_files(tmp_path):
    for name, content in [("empty.npz", b""), ("garbage.npz", b"hello, not numpy at all" * 10)]:
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(rmsprop.CheckpointError) as info:
            rmsprop.load_optimizer(path)
        assert str(path) in str(info.value)


def test_foreign_npz(tmp_path):
    path = tmp_path / "foreign.npz"
    rng = np.random.default_rng(0)
    np.savez(path, weights=rng.normal(size=(3, 3)), bias=rng.normal(size=3))
    with pytest.raises(rmsprop.CheckpointError, match="marker") as info:
        rmsprop.load_optimizer(path)
    assert str(path) in str(info.value)


def test_pickled_npz_is_not_unpickled(tmp_path):
    path = tmp_path / "pickled.npz"
    np.savez(path, format=np.array("rmsprop-checkpoint/1"),
             value_00000=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(ValueError):
        rmsprop.load_optimizer(path)


def test_shape_mismatch_on_resume_names_the_variable(tmp_path):
    optimizer = FACTORIES["plain"]()
    variables = fresh(initial())
    run(optimizer, variables, range(2), grads_at)
    path = rmsprop.save_optimizer(optimizer, tmp_path / "c.npz")
    loaded = rmsprop.load_optimizer(path)
    wrong = [rmsprop.Variable(np.zeros((3, 2)), dtype="float32", name="kernel"),
             rmsprop.Variable(np.zeros(5), dtype="float32", name="bias")]
    with pytest.raises(ValueError) as info:
        loaded.apply([np.zeros((3, 2), dtype="float32"), np.zeros(5, dtype="float32")], wrong)
    assert "'bias'" in str(info.value) and "(5,)" in str(info.value)
    assert "(2,)" in str(info.value)
    np.testing.assert_array_equal(wrong[1].numpy(), np.zeros(5))
    # Still resumable with the right variables.
    copies = fresh([v.numpy() for v in variables])
    run(loaded, copies, range(2, 4), grads_at)
    run(optimizer, variables, range(2, 4), grads_at)
    for x, y in zip(variables, copies):
        np.testing.assert_array_equal(x.numpy(), y.numpy())


def test_dtype_and_count_mismatch_on_resume(tmp_path):
    optimizer = FACTORIES["plain"]()
    run(optimizer, fresh(initial()), range(2), grads_at)
    path = rmsprop.save_optimizer(optimizer, tmp_path / "c.npz")
    with pytest.raises(ValueError, match="'kernel'.*float64"):
        rmsprop.load_optimizer(path).build(fresh(initial(), "float64"))
    with pytest.raises(ValueError, match="2 variables"):
        rmsprop.load_optimizer(path).build(fresh(initial())[:1])


def test_callable_learning_rate_cannot_be_saved(tmp_path):
    optimizer = rmsprop.RMSprop(learning_rate=lambda: 0.1)
    path = tmp_path / "c.npz"
    with pytest.raises(ValueError, match="learning_rate"):
        rmsprop.save_optimizer(optimizer, path)
    wrapped = rmsprop.LossScaleOptimizer(rmsprop.RMSprop(learning_rate=lambda: 0.1))
    with pytest.raises(ValueError, match="learning_rate"):
        rmsprop.save_optimizer(wrapped, path)
    assert os.listdir(tmp_path) == []


def test_save_rejects_non_optimizers(tmp_path):
    with pytest.raises(TypeError, match="optimizer"):
        rmsprop.save_optimizer({"learning_rate": 0.1}, tmp_path / "c.npz")


def test_loaded_optimizer_reports_iterations_and_rate_before_it_is_built(tmp_path):
    schedule = rmsprop.schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)
    optimizer = rmsprop.RMSprop(learning_rate=schedule)
    variable = rmsprop.Variable(np.ones(3))
    for _ in range(3):
        optimizer.apply([np.full(3, 0.5)], [variable])
    path = tmp_path / "ckpt.npz"
    rmsprop.save_optimizer(optimizer, path)
    loaded = rmsprop.load_optimizer(path)
    assert not loaded.built
    assert loaded.iterations == 3
    # 0.1 * 0.5 ** (3 / 2), the schedule at the restored step, not at step 0.
    assert loaded.learning_rate == pytest.approx(0.1 * 0.5 ** 1.5, rel=1e-6)


class Halving(schedules.LearningRateSchedule):
    """A user's own schedule: it loads only when passed in custom_objects."""

    def __init__(self, start):
        self.start = start

    def __call__(self, step):
        return self.start * 0.5 ** int(step)

    def get_config(self):
        return {"start": self.start}


def test_user_schedule_loads_only_through_custom_objects(tmp_path):
    optimizer = rmsprop.RMSprop(learning_rate=Halving(0.5))
    variable = rmsprop.Variable(np.ones(3))
    optimizer.apply([np.full(3, 0.5)], [variable])
    path = rmsprop.save_optimizer(optimizer, tmp_path / "c.npz")
    with pytest.raises(ValueError, match="'Halving'.*custom_objects"):
        rmsprop.load_optimizer(path)
    loaded = rmsprop.load_optimizer(path, custom_objects={"Halving": Halving})
    assert isinstance(loaded._learning_rate, Halving)
    assert loaded.learning_rate == 0.25
    config = optimizer.get_config()
    with pytest.raises(ValueError, match="'Halving'"):
        rmsprop.RMSprop.from_config(config)
    again = rmsprop.RMSprop.from_config(config, custom_objects={"Halving": Halving})
    assert again.get_config() == config
    wrapped = rmsprop.LossScaleOptimizer(rmsprop.RMSprop(learning_rate=Halving(0.5)))
    back = rmsprop.LossScaleOptimizer.from_config(wrapped.get_config(),
                                                  custom_objects={"Halving": Halving})
    assert back.get_config() == wrapped.get_config()
    with pytest.raises(ValueError, match="'Halving'"):
        rmsprop.LossScaleOptimizer.from_config(wrapped.get_config())
