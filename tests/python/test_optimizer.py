"""`rmsprop.Optimizer`, the extension point (optimizer.py): Keras' SGD written
here as a Keras user writes an optimizer, checked against SGD's formula written
out independently, with everything the base class adds around a rule."""

import numpy as np
import pytest

import rmsprop

LR = 0.05


class SGD(rmsprop.Optimizer):
    """keras/src/optimizers/sgd.py (Keras 3.15), its `ops` calls in NumPy."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.momentum = momentum
        self.nesterov = nesterov

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.momentums = []
        if self.momentum != 0:
            self.momentums = self.add_optimizer_variables(variables, "momentum")

    def update_step(self, gradient, variable, learning_rate):
        learning_rate = np.asarray(learning_rate, dtype=variable.dtype)   # ops.cast
        gradient = np.asarray(gradient, dtype=variable.dtype)
        m = None
        if self.momentum != 0:
            m = self.momentums[self._get_variable_index(variable)]
        if m is not None:
            momentum = np.asarray(self.momentum, dtype=variable.dtype)
            self.assign(m, m * momentum - gradient * learning_rate)
            if self.nesterov:
                self.assign_add(variable, m * momentum - gradient * learning_rate)
            else:
                self.assign_add(variable, m)
        else:
            self.assign_sub(variable, gradient * learning_rate)

    def get_config(self):
        config = super().get_config()
        config.update({"momentum": self.momentum, "nesterov": self.nesterov})
        return config


class Formula:
    """SGD with momentum as its definition reads, in float32 for float32 values:
    v <- mu * v - lr * g;  w <- w + v  (Nesterov: w <- w + mu * v - lr * g)."""

    def __init__(self, values, momentum, nesterov=False, lr=LR):
        self.w = [np.array(v, dtype=np.float32) for v in values]
        self.v = [np.zeros_like(w) for w in self.w]
        self.mu, self.lr, self.nesterov = np.float32(momentum), np.float32(lr), nesterov

    def step(self, grads):
        for i, g in enumerate(grads):
            g = np.asarray(g, dtype=np.float32)
            self.v[i] = self.mu * self.v[i] - self.lr * g
            if self.nesterov:
                self.w[i] = self.w[i] + (self.mu * self.v[i] - self.lr * g)
            else:
                self.w[i] = self.w[i] + self.v[i]


def start():
    rng = np.random.default_rng(16)
    return [rng.normal(size=(3, 2)).astype(np.float32), rng.normal(size=4).astype(np.float32)]


def gradients(steps):
    rng = np.random.default_rng(61)
    return [[rng.normal(size=(3, 2)).astype(np.float32), rng.normal(size=4).astype(np.float32)]
            for _ in range(steps)]


def variables(values=None, dtype=None):
    values = start() if values is None else values
    return [rmsprop.Variable(np.array(v, dtype=dtype or v.dtype), name=name)
            for v, name in zip(values, ("w", "b"))]


@pytest.mark.parametrize("momentum, nesterov", [(0.9, False), (0.9, True), (0.0, False)])
def test_sgd_follows_its_formula_exactly(momentum, nesterov):
    optimizer = SGD(learning_rate=LR, momentum=momentum, nesterov=nesterov)
    trained = variables()
    formula = Formula(start(), momentum, nesterov)
    for grads in gradients(6):
        optimizer.apply(grads, trained)
        formula.step(grads)
        for variable, expected in zip(trained, formula.w):
            np.testing.assert_array_equal(variable.numpy(), expected)
    names = [v.name for v in optimizer.variables]
    slots = ["w_momentum", "b_momentum"] if momentum else []
    assert names == ["iteration", "learning_rate"] + slots
    if momentum:
        for slot, expected in zip(optimizer.momentums, formula.v):
            np.testing.assert_array_equal(slot.numpy(), expected)
    assert int(optimizer.iterations) == 6


def test_plain_arrays_and_float64_variables_go_through_stand_ins():
    """Float64 variables are computed in float32 (floatx), as RMSprop's; plain
    arrays are updated in place. The momentum slots keep float64 storage."""
    optimizer = SGD(learning_rate=LR, momentum=0.9)
    w, b = (np.array(v, dtype=np.float64) for v in start())
    formula = Formula(start(), 0.9)
    for grads in gradients(4):
        optimizer.apply(grads, [w, b])
        formula.step(grads)
    np.testing.assert_array_equal(w, formula.w[0].astype(np.float64))
    np.testing.assert_array_equal(b, formula.w[1].astype(np.float64))
    assert optimizer.momentums[0].dtype == "float64"
    np.testing.assert_array_equal(optimizer.momentums[0].numpy(), formula.v[0])


def test_with_loss_scaling():
    inner = SGD(learning_rate=LR, momentum=0.9)
    optimizer = rmsprop.LossScaleOptimizer(inner, initial_scale=8.0)
    trained = variables()
    formula = Formula(start(), 0.9)
    for grads in gradients(3):
        optimizer.apply([g * np.float32(8.0) for g in grads], trained)
        formula.step(grads)
    before = [v.numpy() for v in trained]
    optimizer.apply([np.full((3, 2), np.inf, np.float32), np.ones(4, np.float32)], trained)
    for variable, old, expected in zip(trained, before, formula.w):
        np.testing.assert_array_equal(variable.numpy(), old)       # the step was skipped
        np.testing.assert_array_equal(variable.numpy(), expected)
    assert float(optimizer.dynamic_scale) == 4.0 and int(optimizer.iterations) == 3


def test_with_gradient_accumulation():
    optimizer = SGD(learning_rate=LR, momentum=0.9, gradient_accumulation_steps=2)
    trained = variables()
    formula = Formula(start(), 0.9)
    steps = gradients(6)
    for number, grads in enumerate(steps):
        optimizer.apply(grads, trained)
        if number % 2 == 1:
            formula.step([(a + b) / np.float32(2) for a, b in zip(steps[number - 1], grads)])
        for variable, expected in zip(trained, formula.w):
            np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-6, atol=1e-7)
    assert int(optimizer.iterations) == 3


def test_with_clipnorm_and_weight_decay():
    optimizer = SGD(learning_rate=LR, momentum=0.9, clipnorm=0.5, weight_decay=0.1)
    trained = variables()
    formula = Formula(start(), 0.9)
    for grads in gradients(4):
        optimizer.apply(grads, trained)
        clipped = [g * min(1.0, 0.5 / np.linalg.norm(g.astype(np.float64))) for g in grads]
        formula.w = [w - w * np.float32(0.1) * np.float32(LR) for w in formula.w]
        formula.step(clipped)
        for variable, expected in zip(trained, formula.w):
            np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_with_ema():
    optimizer = SGD(learning_rate=LR, momentum=0.9, use_ema=True, ema_momentum=0.5)
    trained = variables()
    formula = Formula(start(), 0.9)
    average = None
    for grads in gradients(4):
        optimizer.apply(grads, trained)
        formula.step(grads)
        # Keras averages after the update; the first step copies the variables.
        average = [w.copy() for w in formula.w] if average is None else [
            0.5 * a + 0.5 * w for a, w in zip(average, formula.w)]
    assert [v.name for v in optimizer.variables][2:] == [
        "w_average", "b_average", "w_momentum", "b_momentum"]
    optimizer.finalize_variable_values()
    for variable, expected in zip(trained, average):
        np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("wrap", [False, True])
def test_checkpoint_round_trip(tmp_path, wrap):
    def make():
        inner = SGD(learning_rate=LR, momentum=0.9, nesterov=True)
        return rmsprop.LossScaleOptimizer(inner, initial_scale=2.0) if wrap else inner

    optimizer, trained = make(), variables()
    steps = gradients(5)
    for grads in steps[:3]:
        optimizer.apply(grads, trained)
    path = rmsprop.save_optimizer(optimizer, tmp_path / "sgd.ckpt")
    with pytest.raises(rmsprop.CheckpointError, match="SGD"):
        rmsprop.load_optimizer(path)            # only classes it is given are built
    loaded = rmsprop.load_optimizer(path, custom_objects={"SGD": SGD})
    inner = loaded.inner_optimizer if wrap else loaded
    assert type(inner) is SGD and inner.nesterov is True and int(loaded.iterations) == 3
    copies = variables([v.numpy() for v in trained])
    for grads in steps[3:]:
        optimizer.apply(grads, trained)
        loaded.apply(grads, copies)
    for a, b in zip(trained, copies):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    source = optimizer.inner_optimizer if wrap else optimizer
    for a, b in zip(source.momentums, inner.momentums):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_checkpoint_refuses_a_build_that_makes_other_slots(tmp_path):
    optimizer = SGD(learning_rate=LR, momentum=0.9)
    optimizer.apply(gradients(1)[0], variables())
    path = rmsprop.save_optimizer(optimizer, tmp_path / "sgd.ckpt")

    class Other(SGD):
        def build(self, variables):
            rmsprop.Optimizer.build(self, variables)
            self.momentums = self.add_optimizer_variables(variables, "velocity")

    loaded = rmsprop.load_optimizer(path, custom_objects={"SGD": Other})
    with pytest.raises(ValueError, match="momentum.*velocity|velocity.*momentum"):
        loaded.build(variables())
    assert not loaded.built


def test_stateless_apply_runs_the_rule_on_copies():
    optimizer = SGD(learning_rate=LR, momentum=0.9)
    trained = variables()
    optimizer.build(trained)
    state = [v.numpy() for v in optimizer.variables]
    grads = gradients(1)[0]
    new_values, new_state = optimizer.stateless_apply(state, grads, [v.numpy() for v in trained])
    formula = Formula(start(), 0.9)
    formula.step(grads)
    for value, expected in zip(new_values, formula.w):
        np.testing.assert_array_equal(value, expected)
    np.testing.assert_array_equal(new_state[2], formula.v[0])
    for variable, value in zip(trained, start()):
        np.testing.assert_array_equal(variable.numpy(), value)    # nothing changed


def test_mistakes_in_a_subclass_get_clear_errors(tmp_path):
    class Early(SGD):
        def build(self, variables):
            self.add_variable_from_reference(variables[0], "momentum")

    with pytest.raises(ValueError, match="super\\(\\).build"):
        Early(momentum=0.9).build(variables())

    class Reserved(SGD):
        def build(self, variables):
            super().build(variables)
            self.add_variable_from_reference(variables[0], "average")

    with pytest.raises(ValueError, match="'average'"):
        Reserved().build(variables())

    class Twice(SGD):
        def build(self, variables):
            super().build(variables)
            self.add_variable_from_reference(variables[0], "m")
            self.add_variable_from_reference(variables[0], "m")

    with pytest.raises(ValueError, match="'w' already has a slot named 'm'"):
        Twice().build(variables())

    optimizer = SGD(momentum=0.9)
    optimizer.build(variables())
    with pytest.raises(ValueError, match="Unknown variable"):
        optimizer.add_variable_from_reference(rmsprop.Variable([1.0], name="stranger"), "m")

    class NoRule(rmsprop.Optimizer):
        pass

    with pytest.raises(NotImplementedError, match="update_step"):
        NoRule(learning_rate=0.1).apply(gradients(1)[0], variables())


def test_slot_initializers_and_config_round_trip():
    class Ones(SGD):
        def build(self, variables):
            rmsprop.Optimizer.build(self, variables)      # not SGD's: it makes them too
            self.momentums = [self.add_variable_from_reference(v, "momentum", "ones")
                              for v in variables]

    optimizer = Ones(momentum=0.5)
    optimizer.build(variables())
    assert all((m.numpy() == 1).all() for m in optimizer.momentums)
    again = SGD.from_config(SGD(momentum=0.5, nesterov=True, clipnorm=1.0).get_config())
    assert (again.momentum, again.nesterov, again.clipnorm) == (0.5, True, 1.0)


def test_build_passes_compute_dtype_to_a_keras_style_build():
    """A `build(variables)` without `compute_dtype` (Keras' signature) still gets
    the one it was called with: float64 variables computed in float64."""
    optimizer = SGD(learning_rate=LR, momentum=0.9)
    trained = variables(dtype=np.float64)
    optimizer.build(trained, compute_dtype="float64")
    assert optimizer.learning_rate.dtype == "float64" and optimizer.learning_rate.numpy() == LR
    w = [v.numpy() for v in trained]
    velocity = [np.zeros_like(x) for x in w]
    for grads in gradients(3):
        optimizer.apply(grads, trained)
        for i, g in enumerate(grads):
            velocity[i] = 0.9 * velocity[i] - LR * g.astype(np.float64)
            w[i] = w[i] + velocity[i]
    for variable, expected in zip(trained, w):
        np.testing.assert_array_equal(variable.numpy(), expected)


def test_default_name_is_the_class_name_in_snake_case():
    class MyAdamW(SGD):
        pass

    assert SGD().name == "sgd" and MyAdamW().name == "my_adam_w"
    assert SGD(name="mine").name == "mine" and SGD().get_config()["name"] == "sgd"


class Counted(SGD):
    """SGD with variables of its own (`add_variable`): one made in __init__, one
    in build(), which update_step counts the updates in."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.scale = self.add_variable((2,), initializer="ones", dtype="float64", name="scale")

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.count = self.add_variable((), dtype="int64", name="count")

    def update_step(self, gradient, variable, learning_rate):
        super().update_step(gradient, variable, learning_rate)
        self.assign_add(self.count, 1)


def test_add_variable_state_is_listed_last_and_checkpointed(tmp_path):
    optimizer, trained = Counted(learning_rate=LR, momentum=0.9), variables()
    steps = gradients(5)
    for grads in steps[:3]:
        optimizer.apply(grads, trained)
    optimizer.scale.assign([2.5, -1.0])
    assert [v.name for v in optimizer.variables][-4:] == [
        "w_momentum", "b_momentum", "scale", "count"]
    assert int(optimizer.count) == 6
    path = rmsprop.save_optimizer(optimizer, tmp_path / "counted.ckpt")
    loaded = rmsprop.load_optimizer(path, custom_objects={"Counted": Counted})
    copies = variables([v.numpy() for v in trained])
    loaded.build(copies)
    assert int(loaded.count) == 6 and loaded.count.dtype == "int64"
    np.testing.assert_array_equal(loaded.scale.numpy(), [2.5, -1.0])
    for grads in steps[3:]:
        optimizer.apply(grads, trained)
        loaded.apply(grads, copies)
    assert int(loaded.count) == int(optimizer.count) == 10
    for a, b in zip(trained, copies):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    again = rmsprop.save_optimizer(loaded, tmp_path / "again.ckpt")
    resaved = rmsprop.load_optimizer(again, custom_objects={"Counted": Counted})
    resaved.build(variables())
    assert int(resaved.count) == 10


def test_unbuilt_add_variable_state_is_restored_at_load(tmp_path):
    optimizer = Counted(momentum=0.9)
    optimizer.scale.assign([0.25, 4.0])
    path = rmsprop.save_optimizer(optimizer, tmp_path / "unbuilt.ckpt")
    loaded = rmsprop.load_optimizer(path, custom_objects={"Counted": Counted})
    np.testing.assert_array_equal(loaded.scale.numpy(), [0.25, 4.0])

    class Plain(SGD):        # makes no variable of its own: the file's cannot go anywhere
        pass

    with pytest.raises(rmsprop.CheckpointError, match="optimizer_variables.*'scale'"):
        rmsprop.load_optimizer(path, custom_objects={"Counted": Plain})


def test_a_build_that_makes_other_add_variable_state_is_refused(tmp_path):
    optimizer = Counted(momentum=0.9)
    optimizer.apply(gradients(1)[0], variables())
    path = rmsprop.save_optimizer(optimizer, tmp_path / "counted.ckpt")

    class Renamed(Counted):
        def build(self, variables):
            rmsprop.Optimizer.build(self, variables)
            self.momentums = self.add_optimizer_variables(variables, "momentum")
            self.count = self.add_variable((), dtype="int32", name="count")

    loaded = rmsprop.load_optimizer(path, custom_objects={"Counted": Renamed})
    with pytest.raises(ValueError, match="int64.*int32|int32.*int64"):
        loaded.build(variables())
    assert not loaded.built


def test_a_file_of_another_class_cannot_carry_optimizer_variables(tmp_path):
    from test_checkpoint_format import craft, split

    optimizer = rmsprop.RMSprop()
    optimizer.apply(gradients(1)[0], variables())
    header, data = split(rmsprop.save_optimizer(optimizer, tmp_path / "r.ckpt"))
    header["state"]["optimizer_variables"] = [{"name": "x", "dtype": "int64", "shape": []}]
    path = craft(tmp_path / "bad.ckpt", header, data + bytes(8))
    with pytest.raises(rmsprop.CheckpointError, match="optimizer_variables.*RMSprop"):
        rmsprop.load_optimizer(path)
    optimizer = Counted(momentum=0.9)
    optimizer.apply(gradients(1)[0], variables())
    header, data = split(rmsprop.save_optimizer(optimizer, tmp_path / "c.ckpt"))
    header["state"]["optimizer_variables"][1]["dtype"] = "object"
    path = craft(tmp_path / "bad2.ckpt", header, data)
    with pytest.raises(rmsprop.CheckpointError, match="dtype"):
        rmsprop.load_optimizer(path, custom_objects={"Counted": Counted})


class StandInProbe(rmsprop.Optimizer):
    """Plain SGD whose update_step keeps the variable it was last given
    (releasing the one before) and, from the second variable on, asks for a
    slot of fresh Variables: each must be refused as unknown."""

    def __init__(self, **kwargs):
        super().__init__(learning_rate=0.1, **kwargs)
        self.previous = None
        self.confused = []

    def update_step(self, gradient, variable, learning_rate):
        had_previous = self.previous is not None
        self.previous = variable      # the stand-in before it dies here
        if had_previous:
            fresh = [rmsprop.Variable(np.zeros(2), name="fresh") for _ in range(200)]
            for candidate in fresh:
                try:
                    slot = self.add_variable_from_reference(candidate, "probe")
                except ValueError as error:
                    if "Unknown variable" not in str(error):
                        self.confused.append(str(error))
                else:
                    self.confused.append(slot.name)
        self.assign_sub(variable, gradient * learning_rate)


def test_a_dead_stand_in_is_not_taken_for_another_variable():
    """`_get_variable_index` finds a step's stand-ins by id: when a stand-in
    died during the step (the probe drops its reference), CPython gives its
    address to one of the 200 fresh Variables, which was taken for the dead
    stand-in's variable (a slot made for it mid-step, then a KeyError)."""
    values = [np.zeros(2), np.zeros(2), np.zeros(2)]
    optimizer = StandInProbe()
    optimizer.apply([np.ones(2)] * 3, values)
    assert optimizer.confused == []
    np.testing.assert_allclose(values[2], [-0.1, -0.1], rtol=1e-6)   # the step was made
