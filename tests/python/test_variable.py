"""rmsprop.Variable, floatx, and training plain NumPy arrays of every float dtype."""

import warnings

import numpy as np
import pytest

import rmsprop
from rmsprop_reference import ReferenceRMSprop, assert_close, floatx_as, stored_rate

# ---------------------------------------------------------------------------
# Variable


def test_numpy_returns_a_copy():
    v = rmsprop.Variable([1.0, 2.0], name="w")
    copy = v.numpy()
    copy[0] = 100.0
    np.testing.assert_array_equal(v.numpy(), [1.0, 2.0])
    assert copy is not v.numpy()


def test_constructor_copies_its_input():
    source = np.array([1.0, 2.0])
    v = rmsprop.Variable(source)
    source[0] = 9.0
    assert v.numpy()[0] == 1.0
    read_only = np.array([3.0, 4.0])
    read_only.setflags(write=False)
    w = rmsprop.Variable(read_only)
    w.assign([5.0, 6.0])
    np.testing.assert_array_equal(read_only, [3.0, 4.0])
    np.testing.assert_array_equal(w.numpy(), [5.0, 6.0])


def test_constructor_from_another_variable():
    a = rmsprop.Variable([1.0, 2.0], name="a")
    b = rmsprop.Variable(a, name="b")
    b.assign([3.0, 4.0])
    np.testing.assert_array_equal(a.numpy(), [1.0, 2.0])
    np.testing.assert_array_equal(b.numpy(), [3.0, 4.0])


def test_assign_in_place_and_shape_mismatch():
    v = rmsprop.Variable(np.zeros((2, 2)), name="kernel")
    storage = v.value
    returned = v.assign([[1.0, 2.0], [3.0, 4.0]])
    # Keras' assign returns the assigned value, not the variable.
    assert type(returned) is np.ndarray and returned.dtype == np.float64
    np.testing.assert_array_equal(returned, [[1.0, 2.0], [3.0, 4.0]])
    assert returned is not storage
    assert v.value is storage
    np.testing.assert_array_equal(v.numpy(), [[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(ValueError) as info:
        v.assign([1.0, 2.0, 3.0, 4.0])
    message = str(info.value)
    assert "kernel" in message and "(4,)" in message and "(2, 2)" in message
    np.testing.assert_array_equal(v.numpy(), [[1.0, 2.0], [3.0, 4.0]])
    v.assign(rmsprop.Variable(np.full((2, 2), 7.0)))
    np.testing.assert_array_equal(v.numpy(), np.full((2, 2), 7.0))


def test_assign_add_and_sub():
    v = rmsprop.Variable([1.0, 2.0])
    np.testing.assert_array_equal(v.assign_add([0.5, 0.5]), np.array([1.5, 2.5], np.float32))
    v.assign_sub([1.0, 0.0])
    np.testing.assert_array_equal(v.numpy(), np.array([0.5, 2.5], dtype=np.float32))


def test_shape_dtype_name_ndim_size():
    v = rmsprop.Variable(np.zeros((2, 3)), dtype="float64", name="kernel")
    assert v.shape == (2, 3)
    assert v.dtype == "float64" and isinstance(v.dtype, str)
    assert v.name == "kernel"
    assert v.ndim == 2 and v.size == 6 and len(v) == 2
    assert v.path == "kernel" and v.trainable is True
    assert "kernel" in repr(v)


def test_bad_names_and_values():
    with pytest.raises(TypeError, match="name"):
        rmsprop.Variable([1.0], name=5)
    with pytest.raises(TypeError, match="initializer"):
        rmsprop.Variable(["a", "b"])
    with pytest.raises(TypeError, match="dtype"):
        rmsprop.Variable([1.0], dtype="not-a-dtype")


def test_asarray_and_arithmetic():
    v = rmsprop.Variable([1.0, 2.0, 3.0])
    array = np.asarray(v)
    assert isinstance(array, np.ndarray)
    np.testing.assert_array_equal(array, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(np.asarray(v, dtype=np.float64), [1.0, 2.0, 3.0])
    copy = np.array(v, copy=True)
    copy[0] = 50.0
    assert v.numpy()[0] == 1.0
    for result, expected in [(v + 1, [2.0, 3.0, 4.0]), (2 * v, [2.0, 4.0, 6.0]),
                             (v - v, [0.0, 0.0, 0.0]), (v ** 2, [1.0, 4.0, 9.0]),
                             (-v, [-1.0, -2.0, -3.0]), (np.sqrt(v), np.sqrt([1.0, 2.0, 3.0])),
                             (v[1:], [2.0, 3.0])]:
        assert type(result) is np.ndarray
        np.testing.assert_allclose(result, expected, rtol=1e-7)
    assert float(rmsprop.Variable(2.5)) == 2.5
    assert int(rmsprop.Variable(3.0)) == 3
    # Arithmetic made a new array: the variable is unchanged.
    np.testing.assert_array_equal(v.numpy(), [1.0, 2.0, 3.0])


def test_dtype_comes_from_an_array_initializer():
    # Keras >= 3.8: without a dtype, an array keeps its dtype; Python floats
    # and lists of floats give floatx, Python ints int32.
    assert rmsprop.floatx() == "float32"
    assert rmsprop.Variable(np.zeros(2)).dtype == "float64"
    assert rmsprop.Variable(np.zeros(2, np.float16)).dtype == "float16"
    assert rmsprop.Variable(np.arange(3, dtype=np.int32)).dtype == "int32"
    assert rmsprop.Variable(np.float64(1.0)).dtype == "float64"
    assert rmsprop.Variable(rmsprop.Variable([1.0], dtype="float64")).dtype == "float64"
    assert rmsprop.Variable([1.0, 2.0]).dtype == "float32"
    assert rmsprop.Variable([1, 2.5]).dtype == "float32"
    assert rmsprop.Variable(2.5).dtype == "float32"
    with floatx_as("float64"):
        assert rmsprop.Variable([1.0]).dtype == "float64"
        assert rmsprop.Variable("zeros", shape=(2,)).dtype == "float64"
    with floatx_as("float16"):
        assert rmsprop.Variable([1.0]).dtype == "float16"
    assert rmsprop.Variable(np.zeros(2), dtype="float32").dtype == "float32"


@pytest.mark.parametrize("value", [3, [1, 2, 3]], ids=["int", "int-list"])
def test_python_ints_give_int32(value):
    assert rmsprop.Variable(value).dtype == "int32"


def test_a_float64_array_trains_as_float64_storage():
    w = rmsprop.Variable(np.array([0.1, 0.2]))
    rmsprop.RMSprop(learning_rate=0.01).apply([np.array([1.0, -1.0])], [w])
    assert w.value.dtype == np.float64


def test_a_variable_is_not_a_boolean():
    for value in ([0.0], 0.0, [1.0, 2.0]):
        with pytest.raises(TypeError, match="boolean"):
            bool(rmsprop.Variable(value))
        with pytest.raises(TypeError, match="boolean"):
            if rmsprop.Variable(value):
                pass


def test_keras_argument_order_and_initializers():
    v = rmsprop.Variable("ones", (2, 3), "float64", False, name="w")
    assert v.shape == (2, 3) and v.dtype == "float64" and v.trainable is False
    np.testing.assert_array_equal(v.numpy(), np.ones((2, 3)))
    z = rmsprop.Variable(initializer="zeros", shape=(4,))
    assert z.dtype == "float32" and not z.numpy().any()
    calls = []

    def init(shape, dtype=None):
        calls.append((shape, dtype))
        return np.full(shape, 0.5, dtype=dtype)

    c = rmsprop.Variable(init, shape=(2,), dtype="float16", name="c")
    assert calls == [((2,), np.dtype("float16"))] and c.dtype == "float16"
    np.testing.assert_array_equal(c.numpy(), [0.5, 0.5])
    with pytest.raises(ValueError, match="shape"):
        rmsprop.Variable("zeros")
    with pytest.raises(ValueError, match="glorot"):
        rmsprop.Variable("glorot", shape=(2,))
    with pytest.raises(ValueError, match="shape"):
        rmsprop.Variable(lambda shape, dtype=None: np.zeros(3), shape=(2,))
    with pytest.raises(ValueError, match="shape"):
        rmsprop.Variable([1.0, 2.0], shape=(3,))
    assert rmsprop.Variable([1.0, 2.0], shape=(2,)).shape == (2,)


def test_trainable_is_settable():
    v = rmsprop.Variable([1.0])
    v.trainable = False
    assert v.trainable is False


def test_name_with_a_slash_is_refused():
    with pytest.raises(ValueError, match="/"):
        rmsprop.Variable([1.0], name="dense/kernel")


def test_unnamed_variables_get_unique_names_and_slots_never_repeat():
    a, b = rmsprop.Variable([1.0]), rmsprop.Variable([2.0])
    assert a.name != b.name
    assert all(n == "variable" or n.startswith("variable_") for n in (a.name, b.name))
    optimizer = rmsprop.RMSprop()
    optimizer.build([a, b])
    names = [v.name for v in optimizer.variables]
    assert len(names) == len(set(names))


def test_round_and_scalar_conversions():
    v = rmsprop.Variable([1.26, -2.5], dtype="float64")
    np.testing.assert_array_equal(round(v), [1.0, -2.0])
    np.testing.assert_array_equal(round(v, 1), [1.3, -2.5])
    assert float(rmsprop.Variable(2.5)) == 2.5
    with pytest.raises(TypeError, match="scalar"):
        float(rmsprop.Variable([2.5]))
    with pytest.raises(TypeError, match="scalar"):
        int(rmsprop.Variable([2]))


def test_floatx_get_set_and_bad_value():
    assert rmsprop.floatx() == "float32"
    with floatx_as("float64"):
        assert rmsprop.floatx() == "float64"
    assert rmsprop.floatx() == "float32"
    for bad in ("float8", "int32", None, 32, "Float32"):
        with pytest.raises(ValueError) as info:
            rmsprop.set_floatx(bad)
        assert repr(bad) in str(info.value)
        assert rmsprop.floatx() == "float32"
    # The scope restores the previous floatx also when its block raises.
    with pytest.raises(RuntimeError):
        with floatx_as("float16"):
            raise RuntimeError("inside")
    assert rmsprop.floatx() == "float32"


# ---------------------------------------------------------------------------
# Plain NumPy arrays, dtypes, memory order

RNG = np.random.default_rng(21)
INIT = [RNG.uniform(-1, 1, (3, 4)), RNG.uniform(-1, 1, (5,)), RNG.uniform(-1, 1, (2, 2, 2))]
GRADS = [[RNG.uniform(-1, 1, v.shape) for v in INIT] for _ in range(4)]
CONFIGS = [
    {},
    dict(momentum=0.9, centered=True),
    dict(weight_decay=0.05, clipnorm=0.5, use_ema=True, ema_overwrite_frequency=2),
    dict(gradient_accumulation_steps=2, global_clipnorm=1.0, loss_scale_factor=2.0),
]


def train(variables, dtype, config, grad_order="C"):
    optimizer = rmsprop.RMSprop(learning_rate=0.05, **config)
    for grads in GRADS:
        optimizer.apply([np.array(g, dtype=dtype, order=grad_order) for g in grads], variables)
    optimizer.finalize_variable_values(variables)
    return optimizer


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_plain_arrays_updated_in_place_like_variables(dtype, config):
    arrays = [np.array(v, dtype=dtype) for v in INIT]
    ids = [id(a) for a in arrays]
    train(arrays, dtype, config)
    variables = [rmsprop.Variable(v, dtype=dtype) for v in INIT]
    train(variables, dtype, config)
    assert [id(a) for a in arrays] == ids
    for array, variable in zip(arrays, variables):
        assert array.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(array, variable.numpy())
        assert not np.array_equal(array, np.array(INIT[0] if array.shape == (3, 4) else
                                                  INIT[1] if array.shape == (5,) else INIT[2],
                                                  dtype=dtype))


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_each_float_dtype_against_reference(dtype):
    config = dict(momentum=0.5, centered=True, weight_decay=0.01)
    variables = [rmsprop.Variable(v, dtype=dtype) for v in INIT]
    optimizer = rmsprop.RMSprop(learning_rate=0.05, **config)
    # float64 variables are computed in floatx (float32) unless floatx is float64.
    compute = "float32" if dtype == "float64" else dtype
    reference = ReferenceRMSprop(INIT, dtype=dtype, compute=compute,
                                 learning_rate=stored_rate(0.05), **config)
    for grads in GRADS:
        optimizer.apply([np.array(g, dtype=dtype) for g in grads], variables)
        reference.step(grads)
    for variable, want in zip(variables, reference.vars):
        assert variable.dtype == dtype
        assert_close(variable.numpy(), want, compute)


def test_mixed_dtypes_in_one_optimizer():
    dtypes = ["float16", "float32", "float64"]
    variables = [rmsprop.Variable(v, dtype=d) for v, d in zip(INIT, dtypes)]
    optimizer = rmsprop.RMSprop(learning_rate=0.05, momentum=0.3)
    for grads in GRADS:
        optimizer.apply([np.array(g, dtype=d) for g, d in zip(grads, dtypes)], variables)
    for index, dtype in enumerate(dtypes):
        compute = "float32" if dtype == "float64" else dtype
        reference = ReferenceRMSprop([INIT[index]], dtype=dtype, compute=compute,
                                     learning_rate=stored_rate(0.05), momentum=0.3)
        for grads in GRADS:
            reference.step([grads[index]])
        assert variables[index].dtype == dtype
        assert_close(variables[index].numpy(), reference.vars[0], compute)


@pytest.mark.parametrize("var_dtype, grad_dtype", [
    ("float32", "float64"), ("float32", "float16"), ("float64", "float32"),
    ("float16", "float32"), ("float32", "int64")])
def test_gradients_of_another_dtype_are_cast(var_dtype, grad_dtype):
    config = dict(momentum=0.5, clipvalue=0.8)
    grads = [[np.array(g * 4, dtype=grad_dtype) for g in step] for step in GRADS]
    cast = [rmsprop.Variable(v, dtype=var_dtype) for v in INIT]
    given = [rmsprop.Variable(v, dtype=var_dtype) for v in INIT]
    first, second = rmsprop.RMSprop(**config), rmsprop.RMSprop(**config)
    for step in grads:
        first.apply([g.astype(var_dtype) for g in step], cast)
        given_step = [g.copy() for g in step]
        second.apply(given_step, given)
        for g, original in zip(given_step, step):
            assert g.dtype == np.dtype(grad_dtype)
            np.testing.assert_array_equal(g, original)
    for a, b in zip(cast, given):
        assert b.dtype == var_dtype
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_c_and_f_order_give_identical_results(dtype, config):
    c_arrays = [np.array(v, dtype=dtype, order="C") for v in INIT]
    f_arrays = [np.array(v, dtype=dtype, order="F") for v in INIT]
    assert not f_arrays[0].flags.c_contiguous
    train(c_arrays, dtype, config, grad_order="C")
    train(f_arrays, dtype, config, grad_order="F")
    mixed = [np.array(v, dtype=dtype, order="F") for v in INIT]
    train(mixed, dtype, config, grad_order="C")
    for c, f, m in zip(c_arrays, f_arrays, mixed):
        assert f.flags.f_contiguous
        np.testing.assert_array_equal(c, f)
        np.testing.assert_array_equal(c, m)


def test_strided_view_is_updated_in_place():
    base = np.zeros((4, 6))
    base[:, ::2] = np.arange(12).reshape(4, 3) / 10.0
    view = base[:, ::2]
    expected = rmsprop.Variable(view.copy(), dtype="float64")
    grads = np.linspace(-1, 1, 12).reshape(4, 3)
    rmsprop.RMSprop(momentum=0.5).apply([grads], [view])
    rmsprop.RMSprop(momentum=0.5).apply([grads], [expected])
    np.testing.assert_array_equal(base[:, ::2], expected.numpy())
    np.testing.assert_array_equal(base[:, 1::2], 0.0)   # the gaps are untouched


def test_mixing_variables_and_arrays():
    array = np.array(INIT[0], dtype="float32")
    variable = rmsprop.Variable(INIT[1], name="v")
    reference = [rmsprop.Variable(INIT[0]), rmsprop.Variable(INIT[1])]
    first, second = rmsprop.RMSprop(momentum=0.2), rmsprop.RMSprop(momentum=0.2)
    for grads in GRADS:
        first.apply([np.float32(grads[0]), np.float32(grads[1])], [array, variable])
        second.apply([np.float32(grads[0]), np.float32(grads[1])], reference)
    np.testing.assert_array_equal(array, reference[0].numpy())
    np.testing.assert_array_equal(variable.numpy(), reference[1].numpy())


def test_two_optimizers_sharing_variables_stay_correct():
    # The second optimizer may move the Variables' storage; the first must notice.
    shared = [rmsprop.Variable(v) for v in INIT[:2]]
    copies = [rmsprop.Variable(v) for v in INIT[:2]]
    opt_a, opt_b = rmsprop.RMSprop(momentum=0.5), rmsprop.RMSprop(rho=0.5)
    ref_a, ref_b = rmsprop.RMSprop(momentum=0.5), rmsprop.RMSprop(rho=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for grads in GRADS:
            g = [np.float32(x) for x in grads[:2]]
            opt_a.apply(g, shared)
            opt_b.apply([g[1], g[0]], [shared[1], shared[0]])
            ref_a.apply(g, copies)
            ref_b.apply([g[1], g[0]], [copies[1], copies[0]])
    for a, b in zip(shared, copies):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("dtype", ["complex128", "object", "U3"])
def test_variable_rejects_non_real_dtypes(dtype):
    with pytest.raises(TypeError, match="dtype"):
        rmsprop.Variable([1.0, 2.0], dtype=dtype)


# Sizes around the kernels' chunk: small members packed together, runs that
# would cross a chunk, and members of a chunk or more read in place.
PACK_SHAPES = [(7,), (3, 5), (20000,), (15000,), (40000,), (2,), (300, 200), (1,), (33000,)]


def _pack_values(rng, dtypes, order):
    return [np.array(rng.standard_normal(shape), dtype=d, order=order)
            for shape, d in zip(PACK_SHAPES, dtypes)]


@pytest.mark.parametrize("config", [{}, dict(momentum=0.9, centered=True)])
@pytest.mark.parametrize("layout", ["C", "F", "float64 gradients"])
@pytest.mark.parametrize("kind", ["Variable", "array"])
def test_members_gathered_chunk_by_chunk_match_gathering_first(config, layout, kind):
    from rmsprop.flat_state import PackedGradients
    rng = np.random.default_rng(3)
    # float32 and float64 interleaved: each dtype group's members are not consecutive.
    dtypes = ["float64" if i % 3 == 1 else "float32" for i in range(len(PACK_SHAPES))]
    order = "F" if layout == "F" else "C"
    init = _pack_values(rng, dtypes, order)
    if kind == "Variable":
        packed = [rmsprop.Variable(v, dtype=v.dtype) for v in init]
        gathered = [rmsprop.Variable(v, dtype=v.dtype) for v in init]
    else:
        packed = [v.copy(order="K") for v in init]
        gathered = [v.copy(order="K") for v in init]
        # A strided view among the small members: read and written through it.
        base = np.zeros((2, 14), dtype="float32")
        base[:, ::2] = init[0].reshape(1, 7)
        packed[0] = base[:, ::2][0]
    first = rmsprop.RMSprop(learning_rate=0.01, **config)
    # Dividing by a loss scale of 1 changes no number but makes the optimizer
    # gather every member into group-sized buffers first.
    second = rmsprop.RMSprop(learning_rate=0.01, loss_scale_factor=1.0, **config)
    for _ in range(3):
        grads = _pack_values(rng, dtypes, order)
        if layout == "float64 gradients":
            grads = [g.astype("float64") for g in grads]
        first.apply(grads, packed)
        second.apply(grads, gathered)
    for a, b in zip(packed, gathered):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for a, b in zip(first.variables, second.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    if kind == "array":
        np.testing.assert_array_equal(base[:, 1::2], 0.0)     # the view's gaps untouched
    # The chunk-by-chunk path was the one taken where the large members allow it.
    group = next(g for g in first._storage.groups if g.dtype == np.float32)
    chunked = group.packed_gradients(grads, np.empty(0, np.float32))
    assert isinstance(chunked, PackedGradients) == (layout == "C")
    if chunked is not None and kind == "array":
        assert chunked.with_params(packed, np.empty(0, np.float32)) is not None


def test_value_is_the_storage_and_moves_once_when_an_optimizer_is_built():
    # The documented promise of `Variable.value` (issue 10, section 6).
    w = rmsprop.Variable([1.0, 2.0], name="w")
    before_build = w.value
    before_build[0] = 5.0                     # the storage itself: writes show
    assert w.numpy()[0] == 5.0
    optimizer = rmsprop.RMSprop(learning_rate=0.1)
    optimizer.build([w])
    assert not np.shares_memory(before_build, w.value)   # moved at build ...
    assert before_build.tolist() == [5.0, 2.0]           # ... keeping the old numbers
    after_build = w.value
    for _ in range(3):
        optimizer.apply([np.ones(2)], [w])
    assert w.value is after_build                        # ... and not again while training
    assert after_build.tolist() == w.numpy().tolist()
    after_build[1] = -1.0
    assert w.numpy()[1] == -1.0
    # A second optimizer built on it moves it again, and the first one
    # still updates the variable where it now lives.
    second = rmsprop.RMSprop(learning_rate=0.1)
    second.build([w])
    assert not np.shares_memory(after_build, w.value)
    value = w.numpy()
    optimizer.apply([np.ones(2)], [w])
    assert not np.array_equal(w.numpy(), value)
