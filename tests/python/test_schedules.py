"""Tests for rmsprop.schedules: formulas, Keras reference rates, configs,
serialization and argument checks."""

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from rmsprop import schedules as S
from rmsprop.registry import registered
from rmsprop.schedules import (
    CosineDecay,
    CosineDecayRestarts,
    ExponentialDecay,
    InverseTimeDecay,
    LearningRateSchedule,
    PiecewiseConstantDecay,
    PolynomialDecay,
    deserialize,
    serialize,
)

# ---------------------------------------------------------------------------
# Reference cases recorded from Keras


def _reference_path():
    # The recordings in this repository (never anything outside it).
    return Path(__file__).resolve().parents[1] / "data/keras_rmsprop_cases.json"


def _schedule_cases():
    cases = json.loads(_reference_path().read_text())["cases"]
    return [
        c
        for c in cases
        if isinstance(c["config"].get("learning_rate"), dict)
        and "schedule" in c["config"]["learning_rate"]
    ]


SCHEDULE_CASES = _schedule_cases()
RATE_CASES = [c for c in SCHEDULE_CASES if "loss_scale" not in c]


def test_reference_file_has_schedule_cases():
    assert _reference_path().exists()
    assert SCHEDULE_CASES, "no schedule cases in the reference file"
    classes = {c["expected"]["config"]["learning_rate"]["class_name"] for c in SCHEDULE_CASES}
    assert classes == set(registered("schedule"))


@pytest.mark.parametrize("case", RATE_CASES, ids=lambda c: c["id"])
def test_reference_learning_rates(case):
    lr = case["config"]["learning_rate"]
    schedule = getattr(S, lr["schedule"])(**lr["config"])
    expected = case["expected"]["learning_rate"]
    # The recorded rate is read after step i, when raw iterations == i + 1
    # (gradient accumulation does not change what the schedule sees).
    got = [schedule(i + 1) for i in range(len(expected))]
    assert all(isinstance(g, np.float32) for g in got)
    np.testing.assert_allclose(np.array(got, np.float64), expected, rtol=2e-6, atol=0)


@pytest.mark.parametrize("case", SCHEDULE_CASES, ids=lambda c: c["id"])
def test_reference_config(case):
    lr = case["config"]["learning_rate"]
    reference = case["expected"]["config"]["learning_rate"]
    schedule = getattr(S, lr["schedule"])(**lr["config"])
    assert reference["class_name"] == lr["schedule"]
    config = schedule.get_config()
    assert list(config) == list(reference["config"])
    assert config == reference["config"]
    # Types survive too: ints stay ints (decay_steps=3, not 3.0).
    assert [type(v) for v in config.values()] == [
        type(v) for v in reference["config"].values()
    ]


@pytest.mark.parametrize("case", SCHEDULE_CASES, ids=lambda c: c["id"])
def test_keras_config_deserializes(case):
    reference = case["expected"]["config"]["learning_rate"]
    assert reference["module"] == "keras.optimizers.schedules"
    schedule = deserialize(reference)
    assert type(schedule).__name__ == reference["class_name"]
    assert schedule.get_config() == reference["config"]
    out = serialize(schedule)
    assert out == {**reference, "module": "rmsprop.schedules"}


# ---------------------------------------------------------------------------
# Formulas, against float64 versions written out independently


def _close(schedule, expected_fn, steps):
    for step in steps:
        got = schedule(step)
        assert isinstance(got, np.float32), (step, type(got))
        np.testing.assert_allclose(
            float(got), expected_fn(step), rtol=1e-6, atol=1e-9, err_msg=f"step={step}"
        )


STEPS = [0, 1, 2, 3, 5, 7, 10, 13, 20, 50, 101]


@pytest.mark.parametrize("staircase", [False, True])
def test_exponential_decay_formula(staircase):
    sched = ExponentialDecay(0.3, 4, 0.7, staircase=staircase)

    def expected(step):
        p = step / 4
        if staircase:
            p = math.floor(p)
        return 0.3 * 0.7**p

    _close(sched, expected, STEPS)


def test_piecewise_constant_formula():
    boundaries = [3, 7, 10]
    values = [1.0, 0.5, 0.25, 0.125]
    sched = PiecewiseConstantDecay(boundaries, values)

    def expected(step):
        for b, v in zip(boundaries, values):
            if step <= b:
                return v
        return values[-1]

    _close(sched, expected, list(range(0, 15)))
    assert sched(3) == np.float32(1.0)
    assert sched(4) == np.float32(0.5)
    assert sched(10) == np.float32(0.25)
    assert sched(11) == np.float32(0.125)


def test_piecewise_constant_values_are_float32():
    sched = PiecewiseConstantDecay([1], [1, 0.1])
    assert sched(0) == np.float32(1.0) and isinstance(sched(0), np.float32)
    assert sched(2) == np.float32(0.1)


def test_piecewise_constant_float_boundaries():
    sched = PiecewiseConstantDecay([2.5, 4.5], [3.0, 2.0, 1.0])
    assert [float(sched(s)) for s in range(7)] == [3, 3, 3, 2, 2, 1, 1]
    assert float(sched(2.4)) == 3.0 and float(sched(2.6)) == 2.0


def test_piecewise_constant_equal_boundaries_skip_a_value():
    sched = PiecewiseConstantDecay([2, 2], [3.0, 2.0, 1.0])
    assert [float(sched(s)) for s in range(5)] == [3, 3, 3, 1, 1]


@pytest.mark.parametrize("power", [1.0, 0.5, 2.0, 3])
@pytest.mark.parametrize("cycle", [False, True])
def test_polynomial_decay_formula(power, cycle):
    lr0, end, d = 0.2, 0.01, 6
    sched = PolynomialDecay(lr0, d, end_learning_rate=end, power=power, cycle=cycle)

    def expected(step):
        if cycle:
            dd = d * (1 if step == 0 else math.ceil(step / d))
            s = step
        else:
            dd = d
            s = min(step, d)
        return (lr0 - end) * (1 - s / dd) ** power + end

    _close(sched, expected, STEPS)


def test_polynomial_decay_defaults():
    sched = PolynomialDecay(0.1, 10)
    assert sched.get_config()["end_learning_rate"] == 0.0001
    assert sched.get_config()["power"] == 1.0
    np.testing.assert_allclose(float(sched(5)), (0.1 - 1e-4) * 0.5 + 1e-4, rtol=1e-6)
    np.testing.assert_allclose(float(sched(100)), 1e-4, rtol=1e-6)


@pytest.mark.parametrize("staircase", [False, True])
def test_inverse_time_decay_formula(staircase):
    sched = InverseTimeDecay(0.5, 3, 0.25, staircase=staircase)

    def expected(step):
        p = step / 3
        if staircase:
            p = math.floor(p)
        return 0.5 / (1 + 0.25 * p)

    _close(sched, expected, STEPS)


@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.35])
def test_cosine_decay_formula(alpha):
    lr0, d = 0.4, 9
    sched = CosineDecay(lr0, d, alpha=alpha)

    def expected(step):
        s = min(step, d)
        return lr0 * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * s / d)) + alpha)

    _close(sched, expected, STEPS)


@pytest.mark.parametrize("warmup_steps", [0, 1, 4, 5.5])
def test_cosine_decay_warmup_formula(warmup_steps):
    lr0, d, alpha, target = 0.01, 8, 0.2, 0.3
    w = warmup_steps
    sched = CosineDecay(lr0, d, alpha=alpha, warmup_target=target, warmup_steps=w)

    def expected(step):
        s = min(step, d + w)
        if s < w:
            return (target - lr0) * s / w + lr0
        frac = (s - w) / d
        return target * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * frac)) + alpha)

    _close(sched, expected, STEPS + [4, 6, 8, 9, 12, 13, 14])


def test_cosine_decay_warmup_steps_ignored_without_target():
    plain = CosineDecay(0.1, 10, alpha=0.1)
    with_steps = CosineDecay(0.1, 10, alpha=0.1, warmup_steps=5)
    for step in STEPS:
        assert plain(step) == with_steps(step)


def _sgdr_expected(lr0, first, t_mul, m_mul, alpha, step):
    # Walk period by period instead of inverting the geometric sum.
    start, period, i = 0.0, float(first), 0
    while step >= start + period:
        start += period
        period *= t_mul
        i += 1
    frac = (step - start) / period
    return lr0 * ((1 - alpha) * 0.5 * m_mul**i * (1 + math.cos(math.pi * frac)) + alpha)


@pytest.mark.parametrize(
    "first, t_mul, m_mul, alpha",
    [(4, 1.0, 1.0, 0.0), (3, 1.0, 0.5, 0.05), (3, 2.0, 0.5, 0.05), (5, 1.5, 0.8, 0.1)],
)
def test_cosine_decay_restarts_formula(first, t_mul, m_mul, alpha):
    lr0 = 0.2
    sched = CosineDecayRestarts(lr0, first, t_mul=t_mul, m_mul=m_mul, alpha=alpha)
    _close(sched, lambda s: _sgdr_expected(lr0, first, t_mul, m_mul, alpha, s), range(40))


def test_cosine_decay_restarts_defaults():
    sched = CosineDecayRestarts(1.0, 2)
    assert sched.get_config() == {
        "initial_learning_rate": 1.0,
        "first_decay_steps": 2,
        "t_mul": 2.0,
        "m_mul": 1.0,
        "alpha": 0.0,
        "name": "SGDRDecay",
    }
    # Restarts at 2 and 6 back to the full rate.
    assert float(sched(2)) == 1.0 and float(sched(6)) == 1.0


ALL_SCHEDULES = [
    ExponentialDecay(0.1, 3, 0.5),
    ExponentialDecay(0.1, 3, 0.5, staircase=True),
    PiecewiseConstantDecay([2, 5], [0.1, 0.05, 0.01]),
    PiecewiseConstantDecay([1.5, 4.5, 4.5], [0.1, 0.05, 0.02, 0.01]),
    PolynomialDecay(0.1, 5, cycle=True),
    PolynomialDecay(0.1, 5, 0.01, power=0.5),
    InverseTimeDecay(0.1, 2, 0.5),
    CosineDecay(0.1, 6, warmup_target=0.2, warmup_steps=2),
    CosineDecay(0.1, 6, alpha=0.1),
    CosineDecayRestarts(0.1, 3),
    CosineDecayRestarts(0.1, 3, t_mul=1.0, m_mul=0.5),
]


@pytest.mark.parametrize("schedule", ALL_SCHEDULES, ids=lambda s: type(s).__name__)
def test_step_types(schedule):
    want = schedule(4)
    assert isinstance(want, np.float32)
    for step in (np.int64(4), np.int32(4), np.uint8(4), np.asarray(4), np.asarray(4, np.int64), 4.0, np.float32(4)):
        got = schedule(step)
        assert isinstance(got, np.float32), type(step)
        assert got == want, type(step)
    with pytest.raises(TypeError, match="step"):
        schedule(True)
    with pytest.raises(TypeError, match="step"):
        schedule("4")
    with pytest.raises(TypeError, match="step"):
        schedule(np.array([True, False]))
    with pytest.raises(ValueError, match="step"):
        schedule(np.array([1.0, np.nan]))


@pytest.mark.parametrize("schedule", ALL_SCHEDULES, ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("steps", [np.arange(40), np.arange(40, dtype=np.int32).reshape(5, 8),
                                   np.arange(40, dtype=np.float64) / 3, list(range(12))],
                         ids=["int64", "int32-2d", "float", "list"])
def test_an_array_of_steps_gives_the_rate_of_each_step(schedule, steps):
    # Keras' element-wise ops take arrays (for plotting a schedule); every
    # element equals the scalar call, bit for bit.
    rates = schedule(steps)
    assert isinstance(rates, np.ndarray) and rates.dtype == np.float32
    assert rates.shape == np.shape(steps)
    one_by_one = np.array([schedule(s) for s in np.asarray(steps).reshape(-1)], dtype=np.float32)
    assert rates.reshape(-1).tobytes() == one_by_one.tobytes()


def test_default_names():
    assert ExponentialDecay(0.1, 1, 0.5).name == "ExponentialDecay"
    assert PiecewiseConstantDecay([1], [1.0, 0.5]).name == "PiecewiseConstant"
    assert PolynomialDecay(0.1, 1).name == "PolynomialDecay"
    assert InverseTimeDecay(0.1, 1, 0.5).name == "InverseTimeDecay"
    assert CosineDecay(0.1, 1).name == "CosineDecay"
    assert CosineDecayRestarts(0.1, 1).name == "SGDRDecay"
    assert ExponentialDecay(0.1, 1, 0.5, name="mine").get_config()["name"] == "mine"


def test_positional_argument_order():
    assert ExponentialDecay(0.1, 3, 0.5, True, "n").get_config() == {
        "initial_learning_rate": 0.1, "decay_steps": 3, "decay_rate": 0.5,
        "staircase": True, "name": "n",
    }
    assert PolynomialDecay(0.1, 3, 0.01, 2.0, True, "n").get_config() == {
        "initial_learning_rate": 0.1, "decay_steps": 3, "end_learning_rate": 0.01,
        "power": 2.0, "cycle": True, "name": "n",
    }
    assert CosineDecay(0.1, 3, 0.2, "n", 0.5, 2).get_config() == {
        "initial_learning_rate": 0.1, "decay_steps": 3, "alpha": 0.2, "name": "n",
        "warmup_target": 0.5, "warmup_steps": 2,
    }
    assert CosineDecayRestarts(0.1, 3, 1.5, 0.9, 0.1, "n").get_config() == {
        "initial_learning_rate": 0.1, "first_decay_steps": 3, "t_mul": 1.5,
        "m_mul": 0.9, "alpha": 0.1, "name": "n",
    }
    assert PiecewiseConstantDecay([1], [0.2, 0.1], "n").get_config() == {
        "boundaries": [1], "values": [0.2, 0.1], "name": "n",
    }


def test_numpy_scalars_are_stored_as_python_numbers():
    sched = ExponentialDecay(np.float64(0.1), np.int64(3), np.float32(0.5))
    config = sched.get_config()
    assert type(config["decay_steps"]) is int and config["decay_steps"] == 3
    assert type(config["initial_learning_rate"]) is float
    assert type(config["decay_rate"]) is float
    json.dumps(config)
    pw = PiecewiseConstantDecay(np.array([1, 2]), (np.float32(0.5), 0.25, 0.125))
    assert pw.get_config()["boundaries"] == [1, 2]
    assert all(type(b) is int for b in pw.get_config()["boundaries"])
    json.dumps(pw.get_config())


def test_float_decay_steps_allowed():
    sched = ExponentialDecay(0.1, 2.5, 0.5)
    assert sched.get_config()["decay_steps"] == 2.5
    np.testing.assert_allclose(float(sched(5)), 0.1 * 0.25, rtol=1e-6)


# ---------------------------------------------------------------------------
# Base class and user subclasses


class StepHalving(LearningRateSchedule):
    """A user schedule; deserialize finds it only through `custom_objects`."""

    def __init__(self, start, every=2):
        self.start = start
        self.every = every

    def __call__(self, step):
        return self.start * 0.5 ** (int(step) // self.every)

    def get_config(self):
        return {"start": self.start, "every": self.every}


class ShiftedExponential(ExponentialDecay):
    """A user subclass of a built-in schedule."""

    def __call__(self, step):
        return super().__call__(int(step) + 1)


class NotASchedule:
    def __init__(self, **kwargs):
        pass


def test_base_class_must_be_overridden():
    base = LearningRateSchedule()
    with pytest.raises(NotImplementedError, match="LearningRateSchedule"):
        base(1)
    with pytest.raises(NotImplementedError, match="LearningRateSchedule"):
        base.get_config()

    class Incomplete(LearningRateSchedule):
        pass

    with pytest.raises(NotImplementedError, match="Incomplete.*__call__"):
        Incomplete()(3)
    with pytest.raises(NotImplementedError, match="Incomplete.*get_config"):
        Incomplete().get_config()
    with pytest.raises(NotImplementedError, match="Incomplete"):
        serialize(Incomplete())
    assert "Incomplete" in repr(Incomplete())


def test_from_config_is_constructor():
    sched = StepHalving.from_config({"start": 1.0, "every": 3})
    assert isinstance(sched, StepHalving) and sched.every == 3
    built = ExponentialDecay.from_config({"initial_learning_rate": 0.1, "decay_steps": 2, "decay_rate": 0.5})
    assert built.get_config()["name"] == "ExponentialDecay"


def test_user_subclass_round_trip():
    sched = StepHalving(0.8, every=3)
    data = serialize(sched)
    assert data == {
        "module": __name__,
        "class_name": "StepHalving",
        "config": {"start": 0.8, "every": 3},
        "registered_name": None,
    }
    with pytest.raises(ValueError, match="'StepHalving'.*custom_objects"):
        deserialize(json.loads(json.dumps(data)))
    back = deserialize(json.loads(json.dumps(data)), custom_objects={"StepHalving": StepHalving})
    assert type(back) is StepHalving
    assert back.get_config() == sched.get_config()
    assert [back(s) for s in range(10)] == [sched(s) for s in range(10)]


def test_user_subclass_of_builtin_round_trip():
    sched = ShiftedExponential(0.1, 3, 0.5)
    data = serialize(sched)
    assert data["module"] == __name__
    assert data["class_name"] == "ShiftedExponential"
    with pytest.raises(ValueError, match="ShiftedExponential"):
        deserialize(data)
    back = deserialize(data, custom_objects={"ShiftedExponential": ShiftedExponential})
    assert type(back) is ShiftedExponential
    assert back(0) == ExponentialDecay(0.1, 3, 0.5)(1)


# ---------------------------------------------------------------------------
# Serialization of the built-ins

BUILTIN_EXAMPLES = [
    ExponentialDecay(0.1, 3, 0.5, staircase=True, name="e"),
    PiecewiseConstantDecay([2, 5], [0.1, 0.05, 0.01]),
    PolynomialDecay(0.1, 5, end_learning_rate=0.01, power=0.5, cycle=True),
    InverseTimeDecay(0.1, 2, 0.5),
    CosineDecay(0.05, 6, alpha=0.1, warmup_target=0.2, warmup_steps=2),
    CosineDecay(0.05, 6),
    CosineDecayRestarts(0.1, 3, t_mul=1.0, m_mul=0.5, alpha=0.05),
]


@pytest.mark.parametrize("schedule", BUILTIN_EXAMPLES, ids=lambda s: type(s).__name__)
def test_builtin_round_trip(schedule):
    data = serialize(schedule)
    assert list(data) == ["module", "class_name", "config", "registered_name"]
    assert data["module"] == "rmsprop.schedules"
    assert data["class_name"] == type(schedule).__name__
    assert data["config"] == schedule.get_config()
    assert data["registered_name"] is None
    back = deserialize(json.loads(json.dumps(data)))
    assert type(back) is type(schedule)
    assert back.get_config() == schedule.get_config()
    for step in range(15):
        assert back(step) == schedule(step)
    # Keras' module name and the legacy module-less form load too.
    assert type(deserialize({**data, "module": "keras.optimizers.schedules"})) is type(schedule)
    legacy = {"class_name": data["class_name"], "config": data["config"]}
    assert type(deserialize(legacy)) is type(schedule)


def test_repr_shows_config():
    assert repr(ExponentialDecay(0.1, 3, 0.5)) == (
        "ExponentialDecay(initial_learning_rate=0.1, decay_steps=3, "
        "decay_rate=0.5, staircase=False, name='ExponentialDecay')"
    )


def test_serialize_rejects_non_schedules():
    with pytest.raises(TypeError, match="LearningRateSchedule"):
        serialize(0.1)
    with pytest.raises(TypeError, match="LearningRateSchedule"):
        serialize(lambda: 0.1)


@pytest.mark.parametrize("module", ["rmsprop.schedules", "keras.optimizers.schedules", None])
def test_deserialize_unknown_builtin_name(module):
    data = {"module": module, "class_name": "LinearWarmupFancy", "config": {}, "registered_name": None}
    with pytest.raises(ValueError, match="LinearWarmupFancy"):
        deserialize(data)


def test_deserialize_bad_inputs():
    with pytest.raises(TypeError, match="class_name"):
        deserialize("ExponentialDecay")
    with pytest.raises(TypeError, match="class_name"):
        deserialize({"config": {}})
    with pytest.raises(TypeError, match="config"):
        deserialize({"module": "rmsprop.schedules", "class_name": "CosineDecay", "config": [1]})
    # Only registered names and custom_objects are looked at, never the module.
    with pytest.raises(ValueError, match="'Foo'"):
        deserialize({"module": "no_such_module_xyz", "class_name": "Foo", "config": {}})
    with pytest.raises(ValueError, match="'StepHalving'"):
        deserialize({"module": __name__, "class_name": "StepHalving", "config": {}})
    with pytest.raises(ValueError, match="'cos'"):
        deserialize({"module": "math", "class_name": "cos", "config": {}})
    with pytest.raises(TypeError, match="NotASchedule.*LearningRateSchedule"):
        deserialize({"module": __name__, "class_name": "NotASchedule", "config": {}},
                    custom_objects={"NotASchedule": NotASchedule})
    with pytest.raises(TypeError, match="custom_objects"):
        deserialize({"class_name": "StepHalving", "config": {}}, custom_objects=[StepHalving])
    with pytest.raises(TypeError, match="bogus"):
        deserialize({"module": "rmsprop.schedules", "class_name": "CosineDecay",
                     "config": {"initial_learning_rate": 0.1, "decay_steps": 2, "bogus": 1}})


# ---------------------------------------------------------------------------
# Argument checks

NAN, INF = float("nan"), float("inf")

EXP = dict(initial_learning_rate=0.1, decay_steps=3, decay_rate=0.5)
POLY = dict(initial_learning_rate=0.1, decay_steps=3)
INV = dict(initial_learning_rate=0.1, decay_steps=3, decay_rate=0.5)
COS = dict(initial_learning_rate=0.1, decay_steps=3)
SGDR = dict(initial_learning_rate=0.1, first_decay_steps=3)

DECAY_STEP_CLASSES = [
    (ExponentialDecay, EXP, "decay_steps"),
    (PolynomialDecay, POLY, "decay_steps"),
    (InverseTimeDecay, INV, "decay_steps"),
    (CosineDecay, COS, "decay_steps"),
    (CosineDecayRestarts, SGDR, "first_decay_steps"),
]

INVALID = []
for _cls, _base, _steps_arg in DECAY_STEP_CLASSES:
    INVALID += [
        (_cls, {**_base, _steps_arg: 0}, ValueError, rf"^`{_steps_arg}` must be > 0; got 0\.$"),
        (_cls, {**_base, _steps_arg: -2}, ValueError, rf"^`{_steps_arg}` must be .*; got \-2\.$"),
        (_cls, {**_base, _steps_arg: -0.5}, ValueError, rf"^`{_steps_arg}` must be .*; got \-0\.5\.$"),
        (_cls, {**_base, _steps_arg: INF}, ValueError, rf"^`{_steps_arg}` must be .*; got inf\.$"),
        (_cls, {**_base, _steps_arg: NAN}, ValueError, rf"^`{_steps_arg}` must be .*; got nan\.$"),
        (_cls, {**_base, _steps_arg: True}, TypeError, rf"^`{_steps_arg}` must be .*; got True\.$"),
        (_cls, {**_base, _steps_arg: "3"}, TypeError, rf"^`{_steps_arg}` must be .*; got '3'\.$"),
        (_cls, {**_base, _steps_arg: None}, TypeError, rf"^`{_steps_arg}` must be .*; got None\.$"),
        (_cls, {**_base, "initial_learning_rate": True}, TypeError, r"^`initial_learning_rate` must be .*; got True\.$"),
        (_cls, {**_base, "initial_learning_rate": "0.1"}, TypeError, r"^`initial_learning_rate` must be .*; got '0\.1'\.$"),
        (_cls, {**_base, "initial_learning_rate": None}, TypeError, r"^`initial_learning_rate` must be .*; got None\.$"),
        (_cls, {**_base, "initial_learning_rate": NAN}, ValueError, r"^`initial_learning_rate` must be .*; got nan\.$"),
        (_cls, {**_base, "initial_learning_rate": -INF}, ValueError, r"^`initial_learning_rate` must be .*; got \-inf\.$"),
        (_cls, {**_base, "initial_learning_rate": np.array([0.1])}, TypeError, "initial_learning_rate"),
        (_cls, {**_base, "name": 3}, TypeError, r"^`name` must be .*; got 3\.$"),
    ]

INVALID += [
    (ExponentialDecay, {**EXP, "decay_rate": False}, TypeError, r"^`decay_rate` must be .*; got False\.$"),
    (ExponentialDecay, {**EXP, "decay_rate": NAN}, ValueError, r"^`decay_rate` must be .*; got nan\.$"),
    (ExponentialDecay, {**EXP, "staircase": "yes"}, TypeError, r"^`staircase` must be .*; got 'yes'\.$"),
    (ExponentialDecay, {**EXP, "staircase": 1}, TypeError, r"^`staircase` must be .*; got 1\.$"),
    (InverseTimeDecay, {**INV, "decay_rate": "0.5"}, TypeError, r"^`decay_rate` must be .*; got '0\.5'\.$"),
    (InverseTimeDecay, {**INV, "staircase": None}, TypeError, r"^`staircase` must be .*; got None\.$"),
    (PolynomialDecay, {**POLY, "end_learning_rate": NAN}, ValueError, r"^`end_learning_rate` must be .*; got nan\.$"),
    (PolynomialDecay, {**POLY, "end_learning_rate": True}, TypeError, r"^`end_learning_rate` must be .*; got True\.$"),
    (PolynomialDecay, {**POLY, "power": "2"}, TypeError, r"^`power` must be .*; got '2'\.$"),
    (PolynomialDecay, {**POLY, "power": INF}, ValueError, r"^`power` must be .*; got inf\.$"),
    (PolynomialDecay, {**POLY, "cycle": 0}, TypeError, r"^`cycle` must be .*; got 0\.$"),
    (CosineDecay, {**COS, "alpha": "0.1"}, TypeError, r"^`alpha` must be .*; got '0\.1'\.$"),
    (CosineDecay, {**COS, "alpha": True}, TypeError, r"^`alpha` must be .*; got True\.$"),
    (CosineDecay, {**COS, "alpha": NAN}, ValueError, r"^`alpha` must be .*; got nan\.$"),
    (CosineDecay, {**COS, "warmup_target": "high"}, TypeError, r"^`warmup_target` must be .*; got 'high'\.$"),
    (CosineDecay, {**COS, "warmup_target": NAN}, ValueError, r"^`warmup_target` must be .*; got nan\.$"),
    (CosineDecay, {**COS, "warmup_target": 0.5, "warmup_steps": -1}, ValueError, r"^`warmup_steps` must be >= 0; got \-1\.$"),
    (CosineDecay, {**COS, "warmup_steps": -1}, ValueError, r"^`warmup_steps` must be .*; got \-1\.$"),
    (CosineDecay, {**COS, "warmup_steps": True}, TypeError, r"^`warmup_steps` must be .*; got True\.$"),
    (CosineDecay, {**COS, "warmup_steps": None}, TypeError, r"^`warmup_steps` must be .*; got None\.$"),
    (CosineDecay, {**COS, "warmup_steps": INF}, ValueError, r"^`warmup_steps` must be .*; got inf\.$"),
    (CosineDecayRestarts, {**SGDR, "t_mul": 0}, ValueError, r"^`t_mul` must be > 0; got 0\.$"),
    (CosineDecayRestarts, {**SGDR, "t_mul": -2.0}, ValueError, r"^`t_mul` must be .*; got \-2\.0\.$"),
    (CosineDecayRestarts, {**SGDR, "t_mul": True}, TypeError, r"^`t_mul` must be .*; got True\.$"),
    (CosineDecayRestarts, {**SGDR, "t_mul": "2"}, TypeError, r"^`t_mul` must be .*; got '2'\.$"),
    (CosineDecayRestarts, {**SGDR, "m_mul": 0.0}, ValueError, r"^`m_mul` must be .*; got 0\.0\.$"),
    (CosineDecayRestarts, {**SGDR, "m_mul": -1}, ValueError, r"^`m_mul` must be .*; got \-1\.$"),
    (CosineDecayRestarts, {**SGDR, "m_mul": None}, TypeError, r"^`m_mul` must be .*; got None\.$"),
    (CosineDecayRestarts, {**SGDR, "alpha": "0"}, TypeError, r"^`alpha` must be .*; got '0'\.$"),
    (CosineDecayRestarts, {**SGDR, "alpha": INF}, ValueError, r"^`alpha` must be .*; got inf\.$"),
    (PiecewiseConstantDecay, dict(boundaries=[2, 5], values=[0.1, 0.05]), ValueError, r"^`boundaries` must have one element fewer than `values`; got 2 boundaries and 2 values\.$"),
    (PiecewiseConstantDecay, dict(boundaries=[2], values=[0.1, 0.05, 0.01]), ValueError, r"^`boundaries` must have one element fewer than `values`; got 1 boundary and 3 values\.$"),
    (PiecewiseConstantDecay, dict(boundaries=[], values=[0.1]), ValueError, r"^`boundaries` must be at least one number; got \[\]\.$"),
    (PiecewiseConstantDecay, dict(boundaries=[5, 2], values=[0.1, 0.05, 0.01]), ValueError, r"^`boundaries` must be in increasing order; got \[5, 2\]\.$"),
    (PiecewiseConstantDecay, dict(boundaries=[True], values=[0.1, 0.05]), TypeError, r"^`boundaries` must be finite real numbers; got \[True\] \(boundaries\[0\] is True\)\.$"),
    (PiecewiseConstantDecay, dict(boundaries=[NAN], values=[0.1, 0.05]), TypeError, r"^`boundaries` must be .*; got \[nan\] \(boundaries\[0\] is nan\)\.$"),
    (PiecewiseConstantDecay, dict(boundaries=3, values=[0.1, 0.05]), TypeError, r"^`boundaries` must be .*; got 3\.$"),
    (PiecewiseConstantDecay, dict(boundaries="12", values=[0.1, 0.05, 0.01]), TypeError, r"^`boundaries` must be .*; got '12'\.$"),
    (PiecewiseConstantDecay, dict(boundaries=[1], values=[0.1, "0.05"]), TypeError, r"^`values` must be .*; got \[0\.1, '0\.05'\] \(values\[1\] is '0\.05'\)\.$"),
    (PiecewiseConstantDecay, dict(boundaries=[1], values=[0.1, INF]), TypeError, r"^`values` must be .*; got \[0\.1, inf\] \(values\[1\] is inf\)\.$"),
    (PiecewiseConstantDecay, dict(boundaries=[1], values=None), TypeError, r"^`values` must be .*; got None\.$"),
    (PiecewiseConstantDecay, dict(boundaries=[1], values=[0.1, 0.05], name=None), TypeError, r"^`name` must be .*; got None\.$"),
]


@pytest.mark.parametrize(
    "cls, kwargs, error, match",
    INVALID,
    ids=[f"{c.__name__}-{m}" for c, _, _, m in INVALID],
)
def test_invalid_arguments(cls, kwargs, error, match):
    with pytest.raises(error, match=match):
        cls(**kwargs)


def test_missing_required_arguments():
    with pytest.raises(TypeError, match="decay_rate"):
        ExponentialDecay(0.1, 3)
    with pytest.raises(TypeError, match="first_decay_steps"):
        CosineDecayRestarts(0.1)


def test_deserialize_never_imports_the_named_module(tmp_path, monkeypatch):
    # A module that leaves a trace when imported, importable from sys.path and the cwd.
    (tmp_path / "planted_schedule_module.py").write_text(
        "import pathlib\n"
        "pathlib.Path(__file__).with_suffix('.ran').write_text('ran')\n"
        "from rmsprop.schedules import ExponentialDecay as Evil\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="'Evil'"):
        deserialize({"module": "planted_schedule_module", "class_name": "Evil",
                     "config": {"initial_learning_rate": 0.1, "decay_steps": 2,
                                "decay_rate": 0.5}})
    assert "planted_schedule_module" not in sys.modules
    assert not (tmp_path / "planted_schedule_module.ran").exists()
