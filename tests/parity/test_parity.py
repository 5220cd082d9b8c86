"""One engine, two languages: R's optimizer_rmsprop() and Python's RMSprop()
give the same optimizer and the same numbers, bit for bit."""

import math

import numpy as np
import pytest
import rpy2.robjects as ro
from rpy2.rinterface_lib.embedded import RRuntimeError

import rmsprop
from keras_cases import load_cases, make_variables, replay

SCHEDULE_R_NAMES = {
    "ExponentialDecay": "exponential_decay",
    "PiecewiseConstantDecay": "piecewise_constant_decay",
    "PolynomialDecay": "polynomial_decay",
    "InverseTimeDecay": "inverse_time_decay",
    "CosineDecay": "cosine_decay",
    "CosineDecayRestarts": "cosine_decay_restarts",
}


# ----------------------------------------------------------------------------
# Writing Python values as R code, the way an R user would type them
# (whole numbers as doubles: the R package must make them ints).
# ----------------------------------------------------------------------------
def r_literal(value):
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(float(value)) if math.isfinite(value) else ("Inf" if value > 0 else "-Inf")
    if isinstance(value, str):
        return '"' + value + '"'
    if isinstance(value, (list, tuple)):
        return "c(" + ", ".join(r_literal(v) for v in value) + ")"
    if isinstance(value, dict) and "schedule" in value:
        args = ", ".join(f"{k} = {r_literal(v)}" for k, v in value["config"].items())
        return f"learning_rate_schedule_{SCHEDULE_R_NAMES[value['schedule']]}({args})"
    if isinstance(value, dict) and "callable" in value:
        return f"function() {r_literal(value['callable'])}"
    raise TypeError(value)


def r_call(config):
    args = ", ".join(f"{k} = {r_literal(v)}" for k, v in config.items())
    return f"optimizer_rmsprop({args})"


def python_kwargs(config):
    kwargs = dict(config)
    if "learning_rate" in kwargs:
        spec = kwargs["learning_rate"]
        if isinstance(spec, dict) and "schedule" in spec:
            kwargs["learning_rate"] = getattr(rmsprop.schedules, spec["schedule"])(**spec["config"])
        elif isinstance(spec, dict):
            value = spec["callable"]
            kwargs["learning_rate"] = lambda: value
    return kwargs


def to_r(array):
    """An exact R double vector/array for a NumPy array (column-major, with dim)."""
    array = np.asarray(array, dtype=np.float64)
    vector = ro.FloatVector(array.ravel(order="F").tolist())
    if array.ndim > 1:
        return ro.r["array"](vector, dim=ro.IntVector(array.shape))
    return vector


def comparable_config(config):
    config = dict(config)
    rate = config.get("learning_rate")
    if isinstance(rate, dict) and rate.get("class_name") == "function":
        # A function is named in configs (R's and Python's names differ);
        # the tests compare its value through the optimizers instead.
        config["learning_rate"] = "function"
    elif isinstance(rate, dict):
        config["learning_rate"] = {k: v for k, v in rate.items() if k != "module"}
    return config


# Every argument alone, and the combinations that interact.
CONFIGS = [
    {},
    {"learning_rate": 0.05},
    {"rho": 0.5},
    {"momentum": 0.9},
    {"epsilon": 1e-3},
    {"centered": True},
    {"weight_decay": 0.01},
    {"clipnorm": 0.5},
    {"clipvalue": 0.1},
    {"global_clipnorm": 0.7},
    {"use_ema": True},
    {"use_ema": True, "ema_momentum": 0.5, "ema_overwrite_frequency": 2},
    {"loss_scale_factor": 128.0},
    {"gradient_accumulation_steps": 3},
    {"name": "my_rmsprop"},
    {"centered": True, "momentum": 0.9, "learning_rate": 0.01},
    {"use_ema": True, "ema_overwrite_frequency": 3, "gradient_accumulation_steps": 2},
    {"weight_decay": 0.1, "clipnorm": 1.0, "momentum": 0.5},
    {"global_clipnorm": 1.0, "centered": True, "loss_scale_factor": 1024.0},
    {"learning_rate": {"callable": 0.02}, "momentum": 0.5},
] + [
    {"learning_rate": {"schedule": name, "config": config}}
    for name, config in [
        ("ExponentialDecay", {"initial_learning_rate": 0.1, "decay_steps": 3, "decay_rate": 0.5,
                              "staircase": True}),
        ("PiecewiseConstantDecay", {"boundaries": [2, 5], "values": [0.1, 0.05, 0.01]}),
        ("PolynomialDecay", {"initial_learning_rate": 0.1, "decay_steps": 5,
                             "end_learning_rate": 0.01, "power": 2.0, "cycle": True}),
        ("InverseTimeDecay", {"initial_learning_rate": 0.1, "decay_steps": 2, "decay_rate": 0.5}),
        ("CosineDecay", {"initial_learning_rate": 0.05, "decay_steps": 6, "alpha": 0.1,
                         "warmup_target": 0.2, "warmup_steps": 2}),
        ("CosineDecayRestarts", {"initial_learning_rate": 0.1, "first_decay_steps": 3,
                                 "t_mul": 1.0, "m_mul": 0.5}),
        ("PiecewiseConstantDecay", {"boundaries": [3], "values": [0.1, 0.01]}),
    ]
]
IDS = [r_call(c)[len("optimizer_rmsprop("):-1] or "defaults" for c in CONFIGS]
SHAPES = [(3, 4), (5,), ()]


def test_defaults_are_the_same(from_r):
    assert from_r("optimizer_rmsprop()").get_config() == rmsprop.RMSprop().get_config()


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_arguments_land_as_the_same_python_values(config, from_r):
    from_r_optimizer = from_r(r_call(config))
    python_optimizer = rmsprop.RMSprop(**python_kwargs(config))
    from_r_config = from_r_optimizer.get_config()
    python_config = python_optimizer.get_config()
    assert comparable_config(from_r_config) == comparable_config(python_config)
    assert float(from_r_optimizer.learning_rate) == float(python_optimizer.learning_rate)
    for key, value in python_config.items():
        if key != "learning_rate":
            assert type(from_r_config[key]) is type(value), key


def _gradients(step, rng_seed=0):
    rng = np.random.default_rng(rng_seed + step)
    return [rng.normal(size=shape) * 3 for shape in SHAPES]


def _initial_values():
    rng = np.random.default_rng(123)
    return [rng.normal(size=shape) for shape in SHAPES]


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_variable_apply_trajectories_are_bit_identical(config, r, from_r):
    steps = 7
    r(f"opt <- {r_call(config)}")
    for index, value in enumerate(_initial_values()):
        ro.globalenv[f"init{index}"] = to_r(value)
    r("vars <- list(rmsprop_variable(init0, name = 'w'), rmsprop_variable(init1, name = 'bias'), "
      "rmsprop_variable(init2, name = 's'))")
    python_opt = rmsprop.RMSprop(**python_kwargs(config))
    # R sends arrays as float64 arrays and a length-1 vector as a Python float,
    # which give float64 and floatx variables (the dtype comes from the value).
    python_vars = [rmsprop.Variable(v if v.ndim else float(v), name=n)
                   for v, n in zip(_initial_values(), ["w", "bias", "s"])]
    r_opt = from_r("opt")
    r_vars = from_r("vars")
    for step in range(steps):
        grads = _gradients(step)
        for index, g in enumerate(grads):
            ro.globalenv[f"g{index}"] = to_r(g)
        r("opt$apply(list(g0, g1, g2), vars)")
        python_opt.apply(grads, python_vars)
        for mine, theirs in zip(r_vars, python_vars):
            assert np.array_equal(mine.numpy(), theirs.numpy()), (step, mine.name)
        assert r_opt.iterations == python_opt.iterations
        assert float(r_opt.learning_rate) == float(python_opt.learning_rate)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_optimizer_apply_matches_python(config, dtype, r):
    steps = 6
    r(f"opt <- {r_call(config)}")
    init = _initial_values()
    ro.globalenv["init0"], ro.globalenv["init1"] = to_r(init[0]), to_r(init[1])
    r("params <- list(w = init0, b = init1)")
    python_opt = rmsprop.RMSprop(**python_kwargs(config))
    python_vars = [rmsprop.Variable(v, dtype=dtype) for v in init[:2]]
    python_opt.build(python_vars, compute_dtype=dtype)
    for step in range(steps):
        grads = _gradients(step)[:2]
        ro.globalenv["g0"], ro.globalenv["g1"] = to_r(grads[0]), to_r(grads[1])
        r(f"params <- optimizer_apply(opt, list(w = g0, b = g1), params, dtype = '{dtype}')")
        python_opt.apply(grads, python_vars)
        for name, variable in zip(["w", "b"], python_vars):
            from_r_value = np.array(r(f"params${name}"))
            assert np.array_equal(from_r_value.reshape(variable.shape, order="F"),
                                  variable.numpy().astype(np.float64)), (step, name)
    assert list(r("dim(params$w)")) == [3, 4]


CASES = load_cases()


def _case_call(case):
    config = dict(case["config"])
    return r_call(config)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_keras_cases_replayed_through_r(case, r, from_r):
    r(f"inner <- {_case_call(case)}")
    if case.get("exclude_var_names"):
        names = ", ".join(f'"{n}"' for n in case["exclude_var_names"])
        r(f"inner$exclude_from_weight_decay(var_names = c({names}))")
    if case.get("loss_scale"):
        ls = case["loss_scale"]
        r(f"opt <- optimizer_loss_scale(inner, initial_scale = {r_literal(ls['initial_scale'])}, "
          f"dynamic_growth_steps = {r_literal(ls['dynamic_growth_steps'])})")
    else:
        r("opt <- inner")
    python_vars = make_variables(case)
    for index, (variable, spec) in enumerate(zip(python_vars, case["variables"])):
        ro.globalenv[f"init{index}"] = to_r(np.asarray(variable, dtype=np.float64))
    calls = ", ".join(f"rmsprop_variable(init{i}, dtype = '{v['dtype']}', name = '{v['name']}')"
                      for i, v in enumerate(case["variables"]))
    r(f"vars <- list({calls})")
    inner, wrapper = from_r("inner"), from_r("opt")
    variables = from_r("vars")

    def apply_in_r(_, grads, __):
        names = []
        for index, g in enumerate(grads):
            ro.globalenv[f"g{index}"] = ro.NULL if g is None else to_r(g)
            names.append(f"g{index}")
        r(f"invisible(suppressWarnings(opt$apply(list({', '.join(names)}), vars)))")

    # Shapes: R drops a scalar's dim and keeps 1-d vectors; the engine keeps
    # the Variable's own shape, which replay compares against.
    replay(case, optimizer=(inner, wrapper), variables=variables, apply=apply_in_r)


def test_checkpoint_saved_in_r_resumes_in_python(r, tmp_path):
    path = str(tmp_path / "from_r.npz")
    init = _initial_values()
    ro.globalenv["init0"] = to_r(init[0])
    r("opt <- optimizer_rmsprop(learning_rate = 0.01, momentum = 0.9, centered = TRUE, "
      "use_ema = TRUE)")
    r("params <- list(w = init0)")
    for step in range(4):
        ro.globalenv["g0"] = to_r(_gradients(step)[0])
        r("params <- optimizer_apply(opt, list(w = g0), params)")
    r(f"save_optimizer(opt, '{path}')")
    python_params = [np.array(r("params$w")).reshape(3, 4, order="F")]
    python_opt = rmsprop.load_optimizer(path)
    for step in range(4, 8):
        grads = [_gradients(step)[0]]
        ro.globalenv["g0"] = to_r(grads[0])
        r("params <- optimizer_apply(opt, list(w = g0), params)")
        # The variable's name is part of the checkpoint: "w" in R, so here too.
        python_params = rmsprop.apply_to_values(python_opt, grads, python_params, names=["w"])
    assert np.array_equal(np.array(r("params$w")).reshape(3, 4, order="F"), python_params[0])


def test_checkpoint_saved_in_python_resumes_in_r(r, tmp_path):
    path = str(tmp_path / "from_python.npz")
    init = _initial_values()
    schedule = rmsprop.schedules.ExponentialDecay(0.1, 3, 0.5)
    python_opt = rmsprop.RMSprop(learning_rate=schedule, gradient_accumulation_steps=2)
    params = [init[1]]
    for step in range(5):
        params = rmsprop.apply_to_values(python_opt, [_gradients(step)[1]], params, names=["b"])
    rmsprop.save_optimizer(python_opt, path)
    r(f"opt <- load_optimizer('{path}')")
    ro.globalenv["p0"] = to_r(params[0])
    # The variable's name is part of the checkpoint: "b" in Python, so here too.
    r("params <- list(b = p0)")
    for step in range(5, 9):
        grads = [_gradients(step)[1]]
        ro.globalenv["g0"] = to_r(grads[0])
        r("params <- optimizer_apply(opt, list(b = g0), params)")
        params = rmsprop.apply_to_values(python_opt, grads, params, names=["b"])
    assert np.array_equal(np.array(r("params$b")), params[0])


def test_unnamed_checkpoints_resume_in_the_other_language(r, tmp_path):
    # Unnamed parameters get the same default names in both languages
    # (param_1, param_2, ...), which a checkpoint checks on resuming.
    init = _initial_values()
    ro.globalenv["p0"], ro.globalenv["p1"] = to_r(init[0]), to_r(init[1])
    # Python -> R
    path = str(tmp_path / "unnamed_from_python.npz")
    python_opt = rmsprop.RMSprop(learning_rate=0.01, momentum=0.5)
    params = [init[0], init[1]]
    for step in range(3):
        params = rmsprop.apply_to_values(python_opt, _gradients(step)[:2], params)
    rmsprop.save_optimizer(python_opt, path)
    r(f"opt <- load_optimizer('{path}')")
    ro.globalenv["q0"], ro.globalenv["q1"] = to_r(params[0]), to_r(params[1])
    r("params <- list(q0, q1)")
    for step in range(3, 6):
        grads = _gradients(step)[:2]
        ro.globalenv["g0"], ro.globalenv["g1"] = to_r(grads[0]), to_r(grads[1])
        r("params <- optimizer_apply(opt, list(g0, g1), params)")
        params = rmsprop.apply_to_values(python_opt, grads, params)
    assert np.array_equal(np.array(r("params[[2]]")), params[1])
    assert np.array_equal(np.array(r("params[[1]]")).reshape(params[0].shape, order="F"),
                          params[0])
    # R -> Python
    path = str(tmp_path / "unnamed_from_r.npz")
    r("opt <- optimizer_rmsprop(learning_rate = 0.01, momentum = 0.5)")
    r("params <- list(p0, p1)")
    for step in range(3):
        grads = _gradients(step)[:2]
        ro.globalenv["g0"], ro.globalenv["g1"] = to_r(grads[0]), to_r(grads[1])
        r("params <- optimizer_apply(opt, list(g0, g1), params)")
    r(f"save_optimizer(opt, '{path}')")
    python_opt = rmsprop.load_optimizer(path)
    params = [np.array(r("params[[1]]")).reshape(init[0].shape, order="F"),
              np.array(r("params[[2]]"))]
    for step in range(3, 6):
        grads = _gradients(step)[:2]
        ro.globalenv["g0"], ro.globalenv["g1"] = to_r(grads[0]), to_r(grads[1])
        r("params <- optimizer_apply(opt, list(g0, g1), params)")
        params = rmsprop.apply_to_values(python_opt, grads, params)
    assert np.array_equal(np.array(r("params[[2]]")), params[1])


@pytest.mark.parametrize("call, argument", [
    ("optimizer_rmsprop(rho = 'a')", "rho"),
    ("optimizer_rmsprop(rho = 2)", "rho"),
    ("optimizer_rmsprop(learning_rate = -1)", "learning_rate"),
    ("optimizer_rmsprop(momentum = NA)", "momentum"),
    ("optimizer_rmsprop(epsilon = c(1, 2))", "epsilon"),
    ("optimizer_rmsprop(centered = 'yes')", "centered"),
    ("optimizer_rmsprop(gradient_accumulation_steps = 2.5)", "gradient_accumulation_steps"),
    ("optimizer_rmsprop(clipnorm = 1, clipvalue = 1)", "clip"),
    ("optimizer_rmsprop(use_ema = TRUE, ema_overwrite_frequency = 0)", "ema_overwrite_frequency"),
    ("optimizer_apply(optimizer_rmsprop(), list(1, 2), list(1))", "grads"),
    ("optimizer_apply(optimizer_rmsprop(), 'a', 1)", "grads"),
    ("learning_rate_schedule_exponential_decay(0.1, decay_steps = 0, decay_rate = 0.5)",
     "decay_steps"),
])
def test_bad_arguments_raise_r_errors_naming_them(call, argument, r):
    with pytest.raises(RRuntimeError, match=argument):
        r(call)
    assert list(r("1 + 1")) == [2.0]     # the session survives


# One message style in both languages: the engine's requirement, the value as
# each language writes it.
@pytest.mark.parametrize("r_code, python_call, r_message, python_message", [
    ("optimizer_rmsprop(momentum = NA)", lambda: rmsprop.RMSprop(momentum=math.nan),
     "`momentum` must be a finite number; got NA.",
     "`momentum` must be a finite number; got nan."),
    ("optimizer_rmsprop(rho = NaN)", lambda: rmsprop.RMSprop(rho=math.nan),
     "`rho` must be a finite number; got NaN.", "`rho` must be a finite number; got nan."),
    ("optimizer_rmsprop(centered = 1)", lambda: rmsprop.RMSprop(centered=1.0),
     "`centered` must be TRUE or FALSE; got 1.", "`centered` must be True or False; got 1.0."),
    ("optimizer_rmsprop(ema_momentum = NULL)", lambda: rmsprop.RMSprop(ema_momentum=None),
     "`ema_momentum` must be a number; got NULL.", "`ema_momentum` must be a number; got None."),
    ("learning_rate_schedule_piecewise_constant_decay(c(5, 2), c(1, 2, 3))",
     lambda: rmsprop.schedules.PiecewiseConstantDecay([5.0, 2.0], [1.0, 2.0, 3.0]),
     "`boundaries` must be in increasing order; got c(5, 2).",
     "`boundaries` must be in increasing order; got [5.0, 2.0]."),
    ("learning_rate_schedule_exponential_decay(0.1, decay_steps = 0, decay_rate = 0.5)",
     lambda: rmsprop.schedules.ExponentialDecay(0.1, 0, 0.5),
     "`decay_steps` must be > 0; got 0.", "`decay_steps` must be > 0; got 0."),
])
def test_argument_messages_in_each_language(r_code, python_call, r_message, python_message, r):
    assert list(r(f"tryCatch({r_code}, rmsprop_argument_error = conditionMessage)")) \
        == [r_message]
    with pytest.raises((TypeError, ValueError)) as info:
        python_call()
    assert str(info.value) == python_message


def test_thousands_of_round_trips_with_garbage_collection(r):
    rounds = 2000
    init = _initial_values()
    ro.globalenv["init0"] = to_r(init[1])
    r("opt <- optimizer_rmsprop(learning_rate = 0.01, momentum = 0.5)")
    r("params <- list(init0)")
    python_opt = rmsprop.RMSprop(learning_rate=0.01, momentum=0.5)
    params = [init[1]]
    grads = [_gradients(0)[1]]
    ro.globalenv["g0"] = to_r(grads[0])
    r(f"for (i in seq_len({rounds})) {{ params <- optimizer_apply(opt, list(g0), params); "
      "v <- opt$variables; if (i %% 10 == 0) invisible(gc(full = TRUE)) }")
    for _ in range(rounds):
        params = rmsprop.apply_to_values(python_opt, grads, params)
    assert np.array_equal(np.array(r("params[[1]]")), params[0])
    assert list(r("opt$iterations")) == [rounds]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_loss_scale_with_non_finite_gradients_matches_python(dtype, r):
    r("opt <- optimizer_loss_scale(optimizer_rmsprop(learning_rate = 0.01, momentum = 0.5), "
      "initial_scale = 8, dynamic_growth_steps = 2)")
    init = _initial_values()[1]
    ro.globalenv["p0"] = to_r(init)
    r("params <- list(p0)")
    python_opt = rmsprop.LossScaleOptimizer(
        rmsprop.RMSprop(learning_rate=0.01, momentum=0.5), initial_scale=8, dynamic_growth_steps=2)
    variables = [rmsprop.Variable(init, dtype=dtype)]
    python_opt.build(variables, compute_dtype=dtype)
    scales = []
    for step in range(9):
        grad = _gradients(step)[1] * 8
        if step in (2, 3, 6):
            grad[step % 5] = [np.inf, np.nan, -np.inf][step % 3]
        ro.globalenv["g0"] = to_r(grad)
        r(f"params <- optimizer_apply(opt, list(g0), params, dtype = '{dtype}')")
        python_opt.apply([grad], variables)
        assert np.array_equal(np.array(r("params[[1]]")), variables[0].numpy().astype(np.float64))
        assert list(r("opt$iterations")) == [python_opt.iterations]
        scales.append(float(python_opt.dynamic_scale.value))
        assert list(r("opt$dynamic_scale")) == [scales[-1]]
    # skipped steps halved the scale, good ones doubled it every 2 steps
    assert scales == [8.0, 16.0, 8.0, 4.0, 4.0, 8.0, 4.0, 4.0, 8.0]
    assert python_opt.iterations == 6
