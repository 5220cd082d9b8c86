"""Replays the Keras 3 reference trajectories (tests/data/keras_rmsprop_cases.json).

The file was produced by Keras itself (see its "generator" field); nothing in
it comes from this engine. Shared by the Python tests and the R parity tests.
"""

import json
import math
import warnings
from pathlib import Path

import numpy as np

import rmsprop

CASES_PATH = Path(__file__).resolve().parents[1] / "data" / "keras_rmsprop_cases.json"
# A replay must reproduce Keras bit for bit, in every dtype (NaN where Keras
# has NaN): any difference means a precision rule is not Keras'.


def load_cases():
    with open(CASES_PATH) as handle:
        return json.load(handle)["cases"]


def decode(values):
    """JSON value list -> floats: null is NaN, "inf"/"-inf" are infinities."""
    if isinstance(values, list):
        return [decode(v) for v in values]
    if values is None:
        return math.nan
    return float(values)


def make_learning_rate(spec):
    if isinstance(spec, dict) and "schedule" in spec:
        return getattr(rmsprop.schedules, spec["schedule"])(**spec["config"])
    if isinstance(spec, dict) and "callable" in spec:
        value = spec["callable"]
        return lambda: value
    return spec


def make_optimizer(case):
    config = dict(case["config"])
    if "learning_rate" in config:
        config["learning_rate"] = make_learning_rate(config["learning_rate"])
    optimizer = rmsprop.RMSprop(**config)
    if case.get("exclude_var_names"):
        optimizer.exclude_from_weight_decay(var_names=case["exclude_var_names"])
    if case.get("loss_scale"):
        return optimizer, rmsprop.LossScaleOptimizer(optimizer, **case["loss_scale"])
    return optimizer, optimizer


def make_variables(case):
    return [rmsprop.Variable(np.array(decode(v["init"])).reshape(v["shape"]),
                             dtype=v["dtype"], name=v["name"]) for v in case["variables"]]


def step_gradients(case, step):
    return [None if g is None else
            np.array(decode(g), dtype=v["dtype"]).reshape(v["shape"])
            for g, v in zip(step, case["variables"])]


def assert_close(actual, expected, dtype, what):
    """`actual` (of `dtype`) holds exactly the recorded values."""
    expected = np.array(decode(expected), dtype=np.float64).reshape(np.shape(actual))
    actual = np.asarray(actual)
    assert actual.dtype == np.dtype(dtype), what
    np.testing.assert_array_equal(actual.astype(np.float64), expected, err_msg=what)


def replay(case, optimizer=None, variables=None, apply=None):
    """Run `case`, checking every recorded quantity; returns the optimizer.

    `apply(wrapper, grads, variables)` may replace the plain `wrapper.apply`
    call (the R parity tests route the step through R).
    """
    inner, wrapper = make_optimizer(case) if optimizer is None else optimizer
    variables = make_variables(case) if variables is None else variables
    expected = case["expected"]
    dtypes = [v["dtype"] for v in case["variables"]]
    for number, step in enumerate(case["steps"]):
        grads = step_gradients(case, step)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # warnings for None gradients are expected here
            if apply is None:
                wrapper.apply(grads, variables)
            else:
                apply(wrapper, grads, variables)
        for variable, want, dtype in zip(variables, expected["values"][number], dtypes):
            assert_close(np.asarray(variable), want, dtype,
                         f"{case['id']} step {number + 1} variable {variable.name}")
        assert wrapper.iterations == expected["iterations"][number], (case["id"], number)
        # Recorded exactly (float32 for numbers and schedules): compare exactly.
        assert float(wrapper.learning_rate) == expected["learning_rate"][number], (
            case["id"], number, "learning rate")
        if expected["loss_scale"]:
            assert float(wrapper.dynamic_scale.value) == expected["loss_scale"][number]
    if expected.get("finalized") is not None:
        wrapper.finalize_variable_values(variables)
        for variable, want, dtype in zip(variables, expected["finalized"], dtypes):
            assert_close(np.asarray(variable), want, dtype,
                         f"{case['id']} finalized {variable.name}")
    return inner
