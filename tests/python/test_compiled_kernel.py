"""The compiled kernel (rmsprop._fused) against the NumPy reference, bit for bit.

The NumPy kernel (`kernels.py`) is the reference: it rounds where Keras
rounds (test_keras_reference checks it against Keras' recordings). The
compiled kernel must give the same bits for float32 and float64 in every
configuration, whatever the split of the parameters and gradients into
arrays and whatever the thread count. Run with either kernel active, these
tests force the one they need.
"""

import os
import shutil
import sysconfig
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rmsprop
from rmsprop import kernel_choice, kernels

compiled = pytest.mark.skipif(not kernel_choice.compiled_available(),
                              reason="the compiled kernel is not built here")


@pytest.fixture(autouse=True)
def restore_settings():
    yield
    rmsprop.set_kernel(None)
    rmsprop.set_num_threads(None)


def bits(array):
    """The array's bit patterns, every NaN as one pattern (which NaN payload an
    operation propagates is not specified and not compared)."""
    view = array.view(np.uint32 if array.dtype == np.float32 else np.uint64).copy()
    view[np.isnan(array)] = 0
    return view


def assert_same_bits(expected, actual, what):
    assert expected.dtype == actual.dtype and expected.shape == actual.shape, what
    same = bits(expected) == bits(actual)
    same &= np.isnan(expected) == np.isnan(actual)
    if not same.all():
        where = np.flatnonzero(~same.reshape(-1))[:5]
        raise AssertionError(f"{what}: {(~same).sum()} elements differ, e.g. at {where}: "
                             f"{expected.reshape(-1)[where]} vs {actual.reshape(-1)[where]}")


def split(array, cuts):
    """`array` (flat) as a list of consecutive pieces, cut at `cuts`."""
    return np.split(array, sorted(set(cuts)))


def scaled_gradients(rng, n, dtype, specials):
    """Normal values times 10^u, u in [-3, 0] (and optionally some 0, +-inf,
    NaN, huge and subnormal values)."""
    g = rng.standard_normal(n) * 10.0 ** rng.uniform(-3, 0, n)
    if specials and n:
        picks = rng.integers(0, n, size=max(1, n // 1000))
        g[picks] = rng.choice([0.0, -0.0, np.inf, -np.inf, np.nan, 1e30, 1e-40, 3e38],
                              size=picks.size)
    with np.errstate(over="ignore"):
        return g.astype(dtype)


def reference_step(param, grad, velocity, average, momentum_slot, scalars, fused=None):
    """The NumPy kernel on flat arrays; with `fused` (a FusedSteps), the steps
    it names unfused, in the engine's order (steps.py): clip the gradient,
    decay the parameters, the rule, the moving average."""
    scratch = kernels.ChunkScratch.empty(param.dtype)
    if fused is not None and fused.clip is not None:
        grad = grad.copy()              # steps.clip_by_value, on the private copy
        np.minimum(grad, fused.clip, out=grad)
        np.maximum(grad, -fused.clip, out=grad)
    if fused is not None and fused.weight_decay is not None:
        kernels.decay_weights(param, fused.weight_decay, scalars[0], scratch)
    kernels.rmsprop_rule(param, grad, velocity, average, momentum_slot, *scalars, scratch)
    if fused is not None and fused.ema_average is not None:
        kernels.moving_average(fused.ema_average, param, fused.ema_decay,
                               fused.ema_one_minus_decay, scratch)


configs = st.fixed_dictionaries(dict(
    dtype=st.sampled_from(["float32", "float64"]),
    centered=st.booleans(),
    momentum=st.sampled_from([0.0, 0.5, 0.9, 0.99]),
    rho=st.sampled_from([0.0, 0.5, 0.9, 0.95, 0.999]),
    lr=st.sampled_from([1e-3, 0.01, 0.1, 1.0]),
    epsilon=st.sampled_from([1e-7, 1e-3, 0.0, 1e-12]),
    size=st.one_of(st.integers(0, 40), st.integers(1, 3 * kernels.CHUNK + 100)),
    param_cuts=st.lists(st.floats(0, 1), max_size=6),
    grad_cuts=st.lists(st.floats(0, 1), max_size=6),
    threads=st.integers(1, 4),
    steps=st.integers(1, 3),
    specials=st.booleans(),
    clip=st.sampled_from([None, 1e-3, 0.1, 1.0]),
    weight_decay=st.sampled_from([None, 0.0, 0.01, 0.5]),
    ema=st.sampled_from([None, 0.0, 0.9, 0.99]),
    seed=st.integers(0, 2**32 - 1),
))


@compiled
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs)
def test_compiled_rule_matches_numpy_bit_for_bit(config):
    rng = np.random.default_rng(config["seed"])
    dtype, n = np.dtype(config["dtype"]), config["size"]
    param = rng.standard_normal(n).astype(dtype)
    scalars = [np.asarray(dtype.type(x)) for x in (
        config["lr"], config["rho"], 1 - config["rho"], config["epsilon"], config["momentum"])]
    slots = [np.abs(rng.standard_normal(n)).astype(dtype) * dtype.type(0.01)]
    slots.append(rng.standard_normal(n).astype(dtype) * dtype.type(0.01)
                 if config["centered"] else None)
    slots.append(rng.standard_normal(n).astype(dtype) * dtype.type(0.01)
                 if config["momentum"] > 0 else None)
    slots.append(rng.standard_normal(n).astype(dtype) if config["ema"] is not None else None)
    expected = [param.copy()] + [None if s is None else s.copy() for s in slots]
    actual = [param.copy()] + [None if s is None else s.copy() for s in slots]
    rmsprop.set_kernel("compiled")
    rmsprop.set_num_threads(config["threads"])

    def fused_steps(ema_average):
        if config["clip"] is None and config["weight_decay"] is None and ema_average is None:
            return None
        decay = dtype.type(config["ema"] or 0)
        return kernel_choice.FusedSteps(
            clip=None if config["clip"] is None else dtype.type(config["clip"]),
            weight_decay=(None if config["weight_decay"] is None
                          else dtype.type(config["weight_decay"])),
            ema_average=ema_average, ema_decay=decay, ema_one_minus_decay=dtype.type(1) - decay)

    for _ in range(config["steps"]):
        grad = scaled_gradients(rng, n, dtype, config["specials"])
        with np.errstate(all="ignore"):
            reference_step(*expected[:1], grad, *expected[1:4], scalars, fused_steps(expected[4]))
        params = split(actual[0], [int(c * n) for c in config["param_cuts"]]) if n else actual[0]
        grads = split(grad, [int(c * n) for c in config["grad_cuts"]]) if n else grad
        assert kernel_choice.fused_rmsprop(params, grads, *actual[1:4], *scalars,
                                           fused=fused_steps(actual[4]))
    for name, e, a in zip(["param", "velocity", "average_grad", "momentum", "ema"], expected,
                          actual):
        if e is not None:
            assert_same_bits(e, a, f"{name} ({config['dtype']})")


@compiled
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_thread_count_does_not_change_results(dtype):
    # Large enough for 7 threads of MIN_PER_THREAD elements each, and an odd
    # size so that the parts do not split evenly.
    n = 7 * kernel_choice.kernel_info()["min_elements_per_thread"] + 1237
    rng = np.random.default_rng(5)
    grad = scaled_gradients(rng, n, dtype, specials=True)
    start = rng.standard_normal(n).astype(dtype)
    scalars = [np.dtype(dtype).type(x) for x in (0.01, 0.9, 0.1, 1e-7, 0.9)]
    results = []
    for threads in (1, 2, 3, 7):
        rmsprop.set_num_threads(threads)
        rmsprop.set_kernel("compiled")
        state = [start.copy(), np.zeros(n, dtype), np.zeros(n, dtype), np.zeros(n, dtype)]
        for _ in range(2):
            assert kernel_choice.fused_rmsprop(state[0], grad, *state[1:], *scalars)
        results.append(state)
    expected = [start.copy(), np.zeros(n, dtype), np.zeros(n, dtype), np.zeros(n, dtype)]
    for _ in range(2):
        with np.errstate(all="ignore"):
            reference_step(expected[0], grad, *expected[1:], scalars)
    for state in results:
        for e, a in zip(expected, state):
            assert_same_bits(e, a, dtype)


@compiled
def test_compiled_kernel_declines_what_it_does_not_handle():
    rmsprop.set_kernel("compiled")
    scalars = [np.float32(x) for x in (0.01, 0.9, 0.1, 1e-7, 0.0)]
    p16 = np.ones(4, np.float16)
    assert not kernel_choice.fused_rmsprop(p16, p16.copy(), np.zeros(4, np.float16), None,
                                           None, *scalars)
    p = np.ones(8, np.float32)
    v = np.zeros(8, np.float32)
    read_only = np.ones(8, np.float32)
    read_only.flags.writeable = False
    # a float64 gradient for float32 slots, a non-contiguous gradient, a
    # read-only parameter (never written: it may be memory R shares)
    for params, grads in ((p, np.ones(8)), (p, np.ones(16, np.float32)[::2]),
                          (read_only, np.ones(8, np.float32))):
        assert not kernel_choice.fused_rmsprop(params, grads, v, None, None, *scalars)
    assert (p == 1).all() and (v == 0).all()


def shape_table(shapes):
    return np.array([n for s in shapes for n in (len(s), *s)], dtype=np.intp).tobytes()


@compiled
def test_the_survey_passes_only_what_the_python_checks_pass_unchanged():
    survey = kernel_choice._fused.survey
    shapes = [(3,), (2, 2), ()]
    table = shape_table(shapes)
    param = np.zeros(64, np.float32)
    fine = [np.ones(3, np.float32), np.ones((2, 2), np.int64), np.array(1.5)]
    assert survey(fine, np.ndarray, table, [param]) is True
    assert survey([np.ones(3, np.uint8), np.ones((2, 2), np.float16), np.array(2, np.int16)],
                  np.ndarray, table, []) is True

    class Sub(np.ndarray):
        pass

    def with_item(index, value):
        grads = list(fine)
        grads[index] = value
        return grads

    refused = {
        "wrong shape": with_item(1, np.ones((4,), np.float32)),
        "same size, other shape": with_item(1, np.ones((1, 4), np.float32)),
        "0-d for a vector": with_item(0, np.array(1.0)),
        "a subclass": with_item(0, np.ones(3, np.float32).view(Sub)),
        "a list": with_item(0, [1.0, 2.0, 3.0]),
        "None": with_item(0, None),
        "bool": with_item(0, np.ones(3, bool)),
        "complex": with_item(0, np.ones(3, np.complex64)),
        "object": with_item(0, np.ones(3, object)),
        "string": with_item(0, np.array(["a", "b", "c"])),
        "byte-swapped": with_item(0, np.ones(3, np.dtype(np.float32).newbyteorder())),
        "datetime": with_item(0, np.zeros(3, "datetime64[s]")),
        "one gradient too few": fine[:2],
        "one too many": fine + [np.array(1.0)],
        "a view of the parameter": with_item(0, param[10:13]),
        "reversed over its start": with_item(0, param[2::-1]),
        "a strided view of the parameter": with_item(0, param[59:64:2]),
    }
    for what, grads in refused.items():
        assert survey(grads, np.ndarray, table, [param]) is False, what
    # Memory next to the parameter's, not in it, is not shared.
    block = np.zeros(70, np.float32)
    assert survey(with_item(0, block[64:67]), np.ndarray, table, [block[:64]]) is True
    assert survey(with_item(0, block[63:66]), np.ndarray, table, [block[:64]]) is False
    # Several parameters: each is avoided.
    others = [np.zeros(5, np.float64), block[:64], np.zeros(0, np.float32)]
    assert survey(with_item(0, block[0:3]), np.ndarray, table, others) is False
    assert survey(with_item(0, others[0][1:4].astype(np.float32)), np.ndarray, table,
                  others) is True


def test_the_compiled_kernel_is_built_where_a_compiler_is():
    # `pip install` (make setup) builds it whenever a C compiler and Python's
    # headers are there; it is only optional where they are not.
    compiler = sysconfig.get_config_var("CC") or "cc"
    headers = os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))
    if shutil.which(compiler.split()[0]) is None or not headers:
        pytest.skip("no C compiler or no Python headers here")
    assert kernel_choice.compiled_available(), kernel_choice.kernel_info()["compiled_error"]


# ---------------------------------------------------------------------------
# Whole optimizer steps, both kernels
# ---------------------------------------------------------------------------
# The element-wise steps the compiled kernel may fuse into its pass (clipvalue,
# weight decay, EMA), alone and together, and beside the steps it never fuses.
FUSABLE = [{"weight_decay": 0.01}, {"clipvalue": 0.1}, {"use_ema": True},
           {"weight_decay": 0.5, "clipvalue": 0.01, "use_ema": True, "ema_momentum": 0.9},
           {"weight_decay": 0.01, "use_ema": True, "ema_overwrite_frequency": 2},
           {"clipvalue": 0.1, "use_ema": True, "gradient_accumulation_steps": 2},
           {"weight_decay": 0.01, "clipvalue": 0.1, "loss_scale_factor": 8.0}]

optimizer_configs = st.fixed_dictionaries(dict(
    dtype=st.sampled_from(["float32", "float64"]),
    centered=st.booleans(),
    momentum=st.sampled_from([0.0, 0.9]),
    extra=st.sampled_from([{}, {"clipnorm": 1.0}, {"global_clipnorm": 1.0},
                           {"gradient_accumulation_steps": 2}, {"loss_scale_factor": 8.0}]
                          + FUSABLE),
    variables=st.booleans(),
    shapes=st.sampled_from([[(5000,)], [(1000,)] * 40, [(100, 100)] * 5, [(7,), (3, 4), (40000,)],
                            [(70000,)]]),
    # "same": variables in the float policy `dtype`; "wider": float64
    # variables computed in float32 (stored and computed in different
    # dtypes); "mixed": float32 and float64 variables side by side (two groups).
    layout=st.sampled_from(["same", "wider", "mixed"]),
    callable_rate=st.booleans(),       # read once per decayed variable, then for the update
    exclude_first=st.booleans(),       # the first variable exempt from weight decay
    missing=st.booleans(),             # the last variable without a gradient on step 2
    steps=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
))


def run_optimizer(kernel, config):
    rng = np.random.default_rng(config["seed"])
    floatx = "float32" if config["layout"] == "wider" else config["dtype"]
    dtypes = [{"same": floatx, "wider": "float64",
               "mixed": ("float32", "float64")[i % 2]}[config["layout"]]
              for i in range(len(config["shapes"]))]
    init = [rng.standard_normal(s).astype(d) for s, d in zip(config["shapes"], dtypes)]
    grads = [[scaled_gradients(rng, int(np.prod(s)), d, False).reshape(s)
              for s, d in zip(config["shapes"], dtypes)] for _ in range(config["steps"])]
    if config["missing"] and len(grads) > 1 and len(grads[1]) > 1:
        grads[1][-1] = None
    rates = iter(np.linspace(0.01, 0.02, 1000))
    rmsprop.set_kernel(kernel)
    with rmsprop.config.floatx_scope(floatx), warnings.catch_warnings():
        warnings.simplefilter("ignore")           # the missing gradient's warning
        params = ([rmsprop.Variable(p.copy(), name=f"v{i}") for i, p in enumerate(init)]
                  if config["variables"] else [p.copy() for p in init])
        rate = (lambda: float(next(rates))) if config["callable_rate"] else 0.01
        opt = rmsprop.RMSprop(learning_rate=rate, centered=config["centered"],
                              momentum=config["momentum"], **config["extra"])
        if config["exclude_first"]:
            opt.exclude_from_weight_decay(var_list=[params[0]])
        for step_grads in grads:
            opt.apply(step_grads, params)
    values = [np.asarray(p.numpy() if isinstance(p, rmsprop.Variable) else p) for p in params]
    return values + [v.numpy() for v in opt.variables]


@compiled
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(optimizer_configs)
def test_optimizer_steps_are_the_same_with_either_kernel(config):
    expected = run_optimizer("numpy", config)
    actual = run_optimizer("compiled", config)
    for index, (e, a) in enumerate(zip(expected, actual)):
        if e.dtype.kind == "f":
            assert_same_bits(e, a, f"value {index}")
        else:
            assert np.array_equal(e, a)


@compiled
@pytest.mark.parametrize("case, unfused", [
    ("plain", set()),
    ("callable rate", {"decay"}),          # decay reads the rate again per variable
    ("first excluded", {"decay"}),         # not every member decays
    ("float64 in float32", {"clip"}),      # clipping runs in the storage dtype
    ("missing gradient", {"clip", "decay", "ema"}),
    ("float16", {"clip", "decay", "ema"}),  # the compiled kernel does not take float16
])
def test_the_compiled_kernel_fuses_exactly_where_it_rounds_alike(monkeypatch, case, unfused):
    # Which steps ran unfused (spied), with the compiled kernel active; the
    # differential tests above check that fused and unfused give the same bits.
    ran = []
    real = {"clip": rmsprop.steps.clip_by_value, "decay": kernels.decay_weights,
            "ema": kernels.moving_average}
    monkeypatch.setattr(rmsprop.steps, "clip_by_value",
                        lambda work, *a: (ran.extend(["clip"] * len(work)), real["clip"](work, *a)))
    monkeypatch.setattr(kernels, "decay_weights",
                        lambda *a: (ran.append("decay"), real["decay"](*a)))
    monkeypatch.setattr(kernels, "moving_average",
                        lambda *a: (ran.append("ema"), real["ema"](*a)))
    rmsprop.set_kernel("compiled")
    dtype = {"float64 in float32": "float64", "float16": "float16"}.get(case, "float32")
    variables = [rmsprop.Variable(np.ones(s, dtype), name=f"v{i}")
                 for i, s in enumerate([(10,), (3, 3)])]
    rate = (lambda: float("0.01")) if case == "callable rate" else 0.01
    optimizer = rmsprop.RMSprop(learning_rate=rate, weight_decay=0.1, clipvalue=0.5,
                                use_ema=True)
    if case == "first excluded":
        optimizer.exclude_from_weight_decay(var_list=[variables[0]])
    grads = [np.ones(10, dtype), None if case == "missing gradient" else np.ones((3, 3), dtype)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optimizer.apply(grads, variables)
    assert set(ran) == unfused


@compiled
@pytest.mark.parametrize("case", ["usual", "one variable", "float32 gradients", "int gradients",
                                  "fortran-order gradient", "plain arrays", "adjacent views",
                                  "missing gradient", "float16", "two dtypes"])
def test_the_usual_step_runs_in_place_with_the_laid_out_bits(monkeypatch, case):
    # A step of the rule alone on Variables of one dtype, or on plain arrays
    # of one dtype sharing no memory, every gradient an array of the
    # variable's dtype and layout, skips the step's layout
    # (FlatStorage.begin_step); any other step is laid out. Both give the
    # bits of the NumPy kernel. Views of one buffer side by side are updated
    # in place (overlapping ones are refused at build).
    shapes = [(3, 4), (5,), ()] if case != "one variable" else [(6,)]
    dtypes = {"float16": ["float16"] * 3, "two dtypes": ["float64", "float32", "float64"]}.get(
        case, ["float64"] * len(shapes))
    rng = np.random.default_rng(11)
    init = [rng.standard_normal(s).astype(d) for s, d in zip(shapes, dtypes)]
    steps_ = []
    for _ in range(3):
        grads = [scaled_gradients(rng, int(np.prod(s)), d, False).reshape(s)
                 for s, d in zip(shapes, dtypes)]
        if case == "float32 gradients":
            grads = [g.astype(np.float32) for g in grads]
        elif case == "int gradients":
            grads = [np.array(g * 1000).astype(np.int32) for g in grads]
        elif case == "fortran-order gradient":
            grads[0] = np.asfortranarray(grads[0])
        elif case == "missing gradient":
            grads[1] = None
        steps_.append(grads)
    laid_out = []
    real = rmsprop.flat_state.FlatStorage.begin_step
    monkeypatch.setattr(rmsprop.flat_state.FlatStorage, "begin_step",
                        lambda *a, **k: (laid_out.append(1), real(*a, **k))[1])

    def run(kernel):
        rmsprop.set_kernel(kernel)
        if case == "plain arrays":
            params = [p.copy() for p in init]
        elif case == "adjacent views":
            # 12 + 5 + 1 elements of one buffer, side by side
            base = np.zeros(18)
            params = [base[:12].reshape(3, 4), base[12:17], base[17:].reshape(())]
            for param, value in zip(params, init):
                param[...] = value
        else:
            params = [rmsprop.Variable(p.copy(), name=f"v{i}") for i, p in enumerate(init)]
        opt = rmsprop.RMSprop(learning_rate=0.01, momentum=0.5, centered=True)
        opt.build(params, compute_dtype="float64")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")           # the missing gradient's warning
            for grads in steps_:
                opt.apply(grads, params)
        return [np.asarray(p.numpy() if isinstance(p, rmsprop.Variable) else p) for p in params] + [
            v.numpy() for v in opt.variables]

    expected = run("numpy")
    laid_out.clear()
    actual = run("compiled")
    for index, (e, a) in enumerate(zip(expected, actual)):
        if e.dtype == np.float16:
            assert np.array_equal(e.view(np.uint16), a.view(np.uint16)), f"value {index}"
        elif e.dtype.kind == "f":
            assert_same_bits(e, a, f"value {index}")
        else:
            assert np.array_equal(e, a)
    in_place = case in ("usual", "one variable", "plain arrays", "adjacent views")
    assert len(laid_out) == (0 if in_place else 3)


# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------
def test_kernel_info_says_which_kernel_runs(monkeypatch):
    monkeypatch.delenv("RMSPROP_KERNEL", raising=False)
    rmsprop.set_kernel("numpy")
    info = rmsprop.kernel_info()
    assert info["kernel"] == "numpy" and info["chosen_by"] == "set_kernel()"
    rmsprop.set_kernel(None)
    expected = "compiled" if kernel_choice.compiled_available() else "numpy"
    assert rmsprop.kernel_info()["kernel"] == expected
    monkeypatch.setenv("RMSPROP_KERNEL", "numpy")
    assert rmsprop.kernel_info()["kernel"] == "numpy"
    assert rmsprop.kernel_info()["chosen_by"] == "RMSPROP_KERNEL"


def test_numpy_kernel_forced_does_not_call_the_compiled_one(monkeypatch):
    calls, surveys = [], []
    monkeypatch.setattr(kernel_choice, "_fused", type("Spy", (), {
        "rmsprop": staticmethod(lambda *a, **k: calls.append(a)),
        "survey": staticmethod(lambda *a: surveys.append(a) and False),
        "MIN_PER_THREAD": 1, "__file__": "spy"}))
    rmsprop.set_kernel("numpy")
    w = rmsprop.Variable(np.ones(3, np.float32))
    rmsprop.RMSprop().apply([np.ones(3, np.float32)], [w])
    assert calls == [] and surveys == []
    rmsprop.set_kernel("compiled")
    rmsprop.RMSprop().apply([np.ones(3, np.float32)], [rmsprop.Variable(np.ones(3, np.float32))])
    assert len(calls) == 1 and len(surveys) == 1


def test_a_step_runs_on_the_kernel_set_when_it_starts(monkeypatch):
    # The setting is read once per step: a change made while a step runs
    # (here by a callable learning rate, read while the step is planned,
    # after the gradients were checked) applies from the next step on.
    calls, surveys = [], []
    monkeypatch.setattr(kernel_choice, "_fused", type("Spy", (), {
        "rmsprop": staticmethod(lambda *a, **k: calls.append(a)),
        "survey": staticmethod(lambda *a: surveys.append(a) and False),
        "MIN_PER_THREAD": 1, "__file__": "spy"}))
    monkeypatch.delenv("RMSPROP_KERNEL", raising=False)
    switch_to = []

    def rate():
        if switch_to:
            rmsprop.set_kernel(switch_to.pop())
        return 0.01

    optimizer = rmsprop.RMSprop(learning_rate=rate)
    w = rmsprop.Variable(np.ones(3, np.float32))
    rmsprop.set_kernel("compiled")
    switch_to.append("numpy")
    optimizer.apply([np.ones(3, np.float32)], [w])
    assert (len(surveys), len(calls)) == (1, 1)       # all of it on the compiled kernel
    switch_to.append("compiled")
    optimizer.apply([np.ones(3, np.float32)], [w])
    assert (len(surveys), len(calls)) == (1, 1)       # all of it on the NumPy kernel
    monkeypatch.setenv("RMSPROP_KERNEL", "numpy")
    rmsprop.set_kernel(None)
    optimizer.apply([np.ones(3, np.float32)], [w])
    assert (len(surveys), len(calls)) == (1, 1)       # the environment, at the next step
    monkeypatch.setenv("RMSPROP_KERNEL", "compiled")
    optimizer.apply([np.ones(3, np.float32)], [w])
    assert (len(surveys), len(calls)) == (2, 2)


@pytest.mark.parametrize("bad", ["fast", "", 1, 3.5])
def test_set_kernel_rejects_unknown_names(bad):
    with pytest.raises(ValueError, match="`kernel` must be one of 'numpy', 'compiled'"):
        rmsprop.set_kernel(bad)


def test_bad_environment_kernel_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("RMSPROP_KERNEL", "gpu")
    with pytest.raises(ValueError, match="RMSPROP_KERNEL must be one of .* got 'gpu'"):
        rmsprop.kernel_info()


def test_compiled_kernel_unavailable_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(kernel_choice, "_fused", None)
    monkeypatch.setattr(kernel_choice, "_IMPORT_ERROR", "ImportError: not built")
    with pytest.raises(ValueError, match="not available .ImportError: not built"):
        rmsprop.set_kernel("compiled")
    monkeypatch.delenv("RMSPROP_KERNEL", raising=False)
    assert rmsprop.kernel_info()["kernel"] == "numpy"
    assert rmsprop.kernel_info()["available"] == ["numpy"]


def test_thread_settings(monkeypatch):
    monkeypatch.delenv("RMSPROP_NUM_THREADS", raising=False)
    rmsprop.set_num_threads(None)
    default = rmsprop.num_threads()
    assert 1 <= default <= 8
    monkeypatch.setenv("RMSPROP_NUM_THREADS", "3")
    assert rmsprop.num_threads() == 3
    rmsprop.set_num_threads(5.0)          # R passes whole numbers as doubles
    assert rmsprop.num_threads() == 5
    assert rmsprop.kernel_info()["threads"] == 5
    rmsprop.set_num_threads(None)
    assert rmsprop.num_threads() == 3


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "4", float("nan")])
def test_set_num_threads_rejects_bad_counts(bad):
    with pytest.raises(ValueError, match=r"`count` must be a whole number of at least 1; got"):
        rmsprop.set_num_threads(bad)


def test_bad_environment_thread_count_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("RMSPROP_NUM_THREADS", "many")
    with pytest.raises(ValueError, match="RMSPROP_NUM_THREADS must be .* got 'many'"):
        rmsprop.num_threads()


# ---------------------------------------------------------------------------
# Fork safety
# ---------------------------------------------------------------------------
@compiled
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() here")
def test_steps_with_threads_then_fork(tmp_path):
    n = 4 * kernel_choice.kernel_info()["min_elements_per_thread"]
    rng = np.random.default_rng(3)
    grads = [scaled_gradients(rng, n, "float32", False) for _ in range(3)]

    def steps(kernel, count):
        rmsprop.set_kernel(kernel)
        rmsprop.set_num_threads(4)
        w = rmsprop.Variable(np.linspace(-1, 1, n, dtype=np.float32))
        opt = rmsprop.RMSprop(learning_rate=0.01, momentum=0.9)
        for g in grads[:count]:
            opt.apply([g], [w])
        return w, opt

    expected, _ = steps("numpy", 3)
    w, opt = steps("compiled", 1)            # threads have run in the parent
    out = tmp_path / "child.npy"
    pid = os.fork()
    if pid == 0:                             # child: two more steps on 4 threads
        code = 1
        try:
            for g in grads[1:]:
                opt.apply([g], [w])
            np.save(out, w.numpy())
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert_same_bits(expected.numpy(), np.load(out), "child")
    for g in grads[1:]:                      # the parent goes on as well
        opt.apply([g], [w])
    assert_same_bits(expected.numpy(), w.numpy(), "parent")
