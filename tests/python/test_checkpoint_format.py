"""Checkpoint format 2: a loader that trusts nothing, any number of variables,
exact resume of every piece of state, and file-system manners.

Files are crafted here from the layout in docs/checkpoint-format.md (not with
the code under test): preamble, JSON header, data, data digest.
"""

import hashlib
import json
import os
import stat
import struct
import sys
import tracemalloc
import zipfile

import numpy as np
import pytest

import rmsprop
from rmsprop import schedules
from rmsprop.config import floatx_scope

pytestmark = pytest.mark.filterwarnings("ignore:Gradients do not exist")

MAGIC = b"\x93RMSPROP-CKPT\r\n\x1a"
PREAMBLE = struct.Struct("<16sIIQ32s")
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "data",
                    "checkpoint-v1")


def split(path):
    """(header, data) of a version-2 file, read by the documented layout."""
    raw = open(path, "rb").read()
    magic, version, reserved, size, digest = PREAMBLE.unpack(raw[:PREAMBLE.size])
    assert (magic, version, reserved) == (MAGIC, 2, 0)
    header_bytes = raw[PREAMBLE.size:PREAMBLE.size + size]
    assert hashlib.sha256(header_bytes).digest() == digest
    data = raw[PREAMBLE.size + size:-32]
    assert hashlib.sha256(data).digest() == raw[-32:]
    return json.loads(header_bytes), data


def craft(path, header, data=b"", version=2):
    """Write a file with correct digests around `header` and `data`."""
    header_bytes = json.dumps(header).encode()
    with open(path, "wb") as handle:
        handle.write(PREAMBLE.pack(MAGIC, version, 0, len(header_bytes),
                                   hashlib.sha256(header_bytes).digest()))
        handle.write(header_bytes + data + hashlib.sha256(data).digest())
    return path


def trained(optimizer, shapes=((3, 2), (2,)), steps=3, dtype="float32", names=("w", "b")):
    rng = np.random.default_rng(3)
    variables = [rmsprop.Variable(rng.uniform(-1, 1, s), dtype=dtype, name=n)
                 for s, n in zip(shapes, names)]
    for step in range(steps):
        optimizer.apply([rng.uniform(-2, 2, s).astype(dtype) for s in shapes], variables)
    return optimizer, variables


def saved(tmp_path, optimizer=None, name="c.ckpt"):
    if optimizer is None:
        optimizer, _ = trained(rmsprop.RMSprop(learning_rate=0.1, momentum=0.5))
    return rmsprop.save_optimizer(optimizer, tmp_path / name)


# ---------------------------------------------------------------------------
# 1. No code from a file


def test_a_module_named_by_the_file_is_never_imported(tmp_path, monkeypatch):
    planted = tmp_path / "planted_ckpt_module.py"
    planted.write_text("import pathlib\n"
                       "pathlib.Path(__file__).with_suffix('.ran').write_text('ran')\n"
                       "from rmsprop.schedules import ExponentialDecay as Evil\n"
                       "from rmsprop import RMSprop as EvilOptimizer\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    optimizer = rmsprop.RMSprop(learning_rate=schedules.ExponentialDecay(0.1, 2, 0.5))
    header, data = split(saved(tmp_path, optimizer))
    header["config"]["learning_rate"].update(module="planted_ckpt_module", class_name="Evil")
    with pytest.raises(rmsprop.CheckpointError, match=r"config.*'Evil'"):
        rmsprop.load_optimizer(craft(tmp_path / "schedule.ckpt", header, data))
    header, data = split(saved(tmp_path, optimizer))
    header["class_name"] = "planted_ckpt_module.EvilOptimizer"
    with pytest.raises(rmsprop.CheckpointError, match="class_name"):
        rmsprop.load_optimizer(craft(tmp_path / "class.ckpt", header, data))
    assert "planted_ckpt_module" not in sys.modules
    assert not (tmp_path / "planted_ckpt_module.ran").exists()


def test_pickled_npz_is_not_unpickled(tmp_path):
    """A version-1 file whose value is a pickled object array: unpickling it
    would create `trace` (open(trace, "w")). The loader must refuse the file
    without unpickling, so the trace must not exist afterwards."""
    trace = tmp_path / "unpickled.trace"

    class Trap:
        def __reduce__(self):
            return (open, (str(trace), "w"))

    source = zipfile.ZipFile(os.path.join(DATA, "plain.npz"))
    path = tmp_path / "pickled.npz"
    with source, zipfile.ZipFile(path, "w") as target:
        for name in source.namelist():
            if name == "value_00002.npy":
                import io
                buffer = io.BytesIO()
                np.save(buffer, np.array([Trap()], dtype=object), allow_pickle=True)
                target.writestr(name, buffer.getvalue())
            else:
                target.writestr(name, source.read(name))
    assert not trace.exists()
    with pytest.raises(rmsprop.CheckpointError, match="value_00002"):
        rmsprop.load_optimizer(path)
    assert not trace.exists()


# ---------------------------------------------------------------------------
# 2. Any number of variables


def test_hundred_thousand_variables_resume_bit_identically(tmp_path):
    count = 100_000
    rng = np.random.default_rng(0)
    start = rng.uniform(-1, 1, count).astype("float32")
    grads = [[g.reshape(1) for g in rng.uniform(-1, 1, count).astype("float32")]
             for _ in range(4)]

    def variables(values):
        return [rmsprop.Variable(values[i:i + 1], name=f"v{i}") for i in range(count)]

    def make():
        return rmsprop.RMSprop(learning_rate=0.01, momentum=0.5)

    whole, whole_vars = make(), variables(start)
    for g in grads:
        whole.apply(g, whole_vars)
    first, first_vars = make(), variables(start)
    for g in grads[:2]:
        first.apply(g, first_vars)
    path = rmsprop.save_optimizer(first, tmp_path / "many.ckpt")
    header, _ = split(path)
    assert header["state"]["variables"]["names"][-3:] == ["v99997", "v99998", "v99999"]
    resumed = rmsprop.load_optimizer(path)
    resumed_vars = variables(np.concatenate([v.numpy() for v in first_vars]))
    for g in grads[2:]:
        resumed.apply(g, resumed_vars)
    np.testing.assert_array_equal(np.concatenate([v.numpy() for v in resumed_vars]),
                                  np.concatenate([v.numpy() for v in whole_vars]))
    for kind in ("velocity", "momentum"):
        np.testing.assert_array_equal(
            np.concatenate([v.numpy() for v in resumed.variables if v.name.endswith(kind)]),
            np.concatenate([v.numpy() for v in whole.variables if v.name.endswith(kind)]))


# ---------------------------------------------------------------------------
# 3. Bounded memory on hostile files


def peak_of(function):
    tracemalloc.start()
    try:
        function()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_a_small_file_claiming_a_huge_array_is_refused_before_allocating(tmp_path):
    header, _ = split(saved(tmp_path))
    header["state"]["variables"] = {"names": ["w"], "shapes": [[1 << 38]],
                                    "dtypes": ["float32"]}
    header["state"]["excluded"] = []
    path = craft(tmp_path / "huge.ckpt", header)
    assert os.path.getsize(path) < 2000

    def load():
        with pytest.raises(rmsprop.CheckpointError, match="data.*truncated or extended"):
            rmsprop.load_optimizer(path)
    assert peak_of(load) < 1 << 20


def test_a_version_1_file_claiming_a_huge_array_is_refused_before_allocating(tmp_path):
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(os.path.join(DATA, "plain.npz")) as source, \
            zipfile.ZipFile(path, "w") as target:
        for name in source.namelist():
            content = source.read(name)
            if name == "variable_specs.npy":
                specs = [{"name": "w", "shape": [1 << 38], "dtype": "float32"}]
                import io
                buffer = io.BytesIO()
                np.save(buffer, np.array(json.dumps(specs)))
                content = buffer.getvalue()
            elif name.startswith("value_") and name > "value_00001.npy":
                if name != "value_00002.npy":
                    continue
                header = {"descr": "<f4", "fortran_order": False, "shape": (1 << 38,)}
                import io
                buffer = io.BytesIO()
                np.lib.format.write_array_header_1_0(buffer, header)
                content = buffer.getvalue()
            target.writestr(name, content)

    def load():
        with pytest.raises(rmsprop.CheckpointError, match="value_00002"):
            rmsprop.load_optimizer(path)
    assert peak_of(load) < 1 << 20


def test_a_compressed_archive_without_the_marker_is_not_inflated(tmp_path):
    path = tmp_path / "bomb.npz"
    zeros = bytes(1 << 20)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("weights.npy", "w", force_zip64=True) as member:
            for _ in range(256):                  # 256 MB of zeros, ~250 kB on disk
                member.write(zeros)
    assert os.path.getsize(path) < 1 << 20

    def load():
        with pytest.raises(rmsprop.CheckpointError, match="marker"):
            rmsprop.load_optimizer(path)
    assert peak_of(load) < 1 << 20


# ---------------------------------------------------------------------------
# 4. Restored state is checked as the constructors check it

def _scaled():
    optimizer, _ = trained(rmsprop.LossScaleOptimizer(
        rmsprop.RMSprop(learning_rate=0.1, momentum=0.5), initial_scale=8.0,
        dynamic_growth_steps=3))
    return optimizer


MUTATIONS = {
    "string learning rate": (lambda h: h["config"].update(learning_rate="0.5"),
                             "config.*learning_rate"),
    "learning rate inf in float32": (lambda h: h["config"].update(learning_rate=1e39),
                                     "learning_rate"),
    "negative learning rate": (lambda h: h["config"].update(learning_rate=-0.1),
                               "learning_rate"),
    "huge iterations": (lambda h: h["state"].update(iterations=1e300), "state.iterations"),
    "iterations past int64": (lambda h: h["state"].update(iterations=1 << 63),
                              "state.iterations"),
    "negative iterations": (lambda h: h["state"].update(iterations=-1), "state.iterations"),
    "complex slots": (lambda h: h["state"]["variables"].update(dtypes=["complex64"] * 2),
                      r"state.variables.dtypes\[0\]"),
    "string slots": (lambda h: h["state"]["variables"].update(dtypes=["<U2"] * 2),
                     r"state.variables.dtypes\[0\]"),
    "datetime slots": (lambda h: h["state"]["variables"].update(dtypes=["datetime64"] * 2),
                       r"state.variables.dtypes\[0\]"),
    "negative shape": (lambda h: h["state"]["variables"].update(shapes=[[-3, 2], [2]]),
                       r"state.variables.shapes\[0\]"),
    "slots of another config": (lambda h: h["state"].update(slots=["velocity"]),
                                "state.slots"),
    "unknown key": (lambda h: h["state"].update(extra=1), "state.*'extra'"),
    "missing key": (lambda h: h["state"].pop("iterations"), "state.*'iterations'"),
    "rate dtype": (lambda h: h["state"].update(learning_rate_dtype="int32"),
                   "learning_rate_dtype"),
    "version": (lambda h: h.update(version=3), "header.format"),
}


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_bad_state_is_refused(mutation, tmp_path):
    header, data = split(saved(tmp_path))
    change, field = MUTATIONS[mutation]
    change(header)
    with pytest.raises(rmsprop.CheckpointError, match=field) as info:
        rmsprop.load_optimizer(craft(tmp_path / "bad.ckpt", header, data))
    assert "bad.ckpt" in str(info.value)


@pytest.mark.parametrize("scale, counter", [(0.0, 0), (-8.0, 0), (1e39, 0), (0.1, 0),
                                            (8.0, 3), (8.0, -1), (8.0, 1.5)])
def test_bad_loss_scale_is_refused(scale, counter, tmp_path):
    header, data = split(saved(tmp_path, _scaled()))
    header["loss_scale"] = {"step_counter": counter, "dynamic_scale": scale}
    with pytest.raises(rmsprop.CheckpointError, match="loss_scale"):
        rmsprop.load_optimizer(craft(tmp_path / "bad.ckpt", header, data))


def test_negative_velocity_is_refused(tmp_path):
    header, data = split(saved(tmp_path))
    assert header["state"]["slots"][0] == "velocity"
    data = np.float32(-1.0).tobytes() + data[4:]
    with pytest.raises(rmsprop.CheckpointError, match="velocity of variable 0 .'w'."):
        rmsprop.load_optimizer(craft(tmp_path / "bad.ckpt", header, data))


def test_bad_preamble_fields(tmp_path):
    raw = bytearray(open(saved(tmp_path), "rb").read())
    for offset, value, field in [(16, 3, "version"), (20, 1, "preamble"),
                                 (24, 1 << 40, "header length")]:
        bad = bytearray(raw)
        size = 8 if offset == 24 else 4
        bad[offset:offset + size] = value.to_bytes(size, "little")
        (tmp_path / "bad.ckpt").write_bytes(bytes(bad))
        with pytest.raises(rmsprop.CheckpointError, match=field):
            rmsprop.load_optimizer(tmp_path / "bad.ckpt")


# ---------------------------------------------------------------------------
# 5. One error type, whatever the damage


def fuzz(path, tmp_path, seed):
    raw = open(path, "rb").read()
    rng = np.random.default_rng(seed)
    variants = [raw[:cut] for cut in sorted(set(np.linspace(0, len(raw) - 1, 150).astype(int)))]
    for _ in range(300):
        changed = bytearray(raw)
        for position in rng.integers(0, len(raw), rng.integers(1, 4)):
            changed[position] = (changed[position] + int(rng.integers(1, 256))) % 256
        variants.append(bytes(changed))
    loaded = 0
    target = tmp_path / "fuzzed"
    for variant in variants:
        target.write_bytes(variant)
        try:
            rmsprop.load_optimizer(target)
            loaded += 1
        except rmsprop.CheckpointError as error:
            assert str(target) in str(error)
    return loaded, len(variants)


def test_fuzzed_version_2_files_raise_only_checkpoint_error(tmp_path):
    optimizer, _ = trained(rmsprop.LossScaleOptimizer(rmsprop.RMSprop(
        learning_rate=schedules.CosineDecay(0.1, 10), momentum=0.5, centered=True,
        use_ema=True, weight_decay=0.01, gradient_accumulation_steps=2)))
    loaded, tried = fuzz(saved(tmp_path, optimizer), tmp_path, 1)
    assert loaded == 0          # every change is caught by a digest or a check


@pytest.mark.parametrize("name", ["momentum-centered", "loss-scale", "unbuilt"])
def test_fuzzed_version_1_files_raise_only_checkpoint_error(name, tmp_path):
    loaded, tried = fuzz(os.path.join(DATA, f"{name}.npz"), tmp_path, 2)
    assert loaded < tried


# ---------------------------------------------------------------------------
# 6. The right slots for the right variables


def test_swapped_variables_are_refused_naming_both_lists(tmp_path):
    optimizer, variables = trained(rmsprop.RMSprop(learning_rate=0.1), shapes=((2,), (2,)))
    path = saved(tmp_path, optimizer)
    loaded = rmsprop.load_optimizer(path)
    swapped = [rmsprop.Variable(v.numpy(), name=v.name) for v in reversed(variables)]
    with pytest.raises(ValueError, match=r"\['w', 'b'\].*\['b', 'w'\].*check_names=False"):
        loaded.build(swapped)
    assert not loaded.built
    loaded.build([rmsprop.Variable(v.numpy(), name=v.name) for v in variables])
    assert loaded.built
    relaxed = rmsprop.load_optimizer(path, check_names=False)
    relaxed.build(swapped)
    np.testing.assert_array_equal(relaxed.variables[2].numpy(), optimizer.variables[2].numpy())
    with pytest.raises(TypeError, match="check_names"):
        rmsprop.load_optimizer(path, check_names="no")


def test_unnamed_parameters_are_param_1_and_up_as_in_r(tmp_path):
    optimizer = rmsprop.RMSprop(learning_rate=0.1)
    rmsprop.apply_to_values(optimizer, [1.0, [1.0, 2.0]], [0.0, [0.0, 0.0]])
    # R's optimizer_apply() names unnamed parameters the same way
    trained_values = rmsprop.positional.TRAINERS.trainer(optimizer).variables
    assert [v.name for v in trained_values] == ["param_1", "param_2"]
    path = saved(tmp_path, optimizer)
    resumed = rmsprop.load_optimizer(path)
    rmsprop.apply_to_values(resumed, [1.0, [1.0, 2.0]], [0.0, [0.0, 0.0]])
    assert int(resumed.iterations) == 2


def test_checkpoints_of_unnamed_values_named_from_0_still_resume(tmp_path):
    # Python once named unnamed parameters param_0, param_1, ...: the same
    # positions, so such a checkpoint resumes on unnamed values.
    old = rmsprop.RMSprop(learning_rate=0.1, momentum=0.5)
    values = rmsprop.apply_to_values(old, [1.0, 2.0], [0.0, 0.0], names=["param_0", "param_1"])
    path = saved(tmp_path, old)
    resumed = rmsprop.load_optimizer(path)
    np.testing.assert_array_equal(rmsprop.apply_to_values(resumed, [1.0, 2.0], values),
                                  rmsprop.apply_to_values(old, [1.0, 2.0], values))
    # other names are still refused, with the ways out
    named = rmsprop.RMSprop(learning_rate=0.1)
    rmsprop.apply_to_values(named, [1.0, 2.0], [0.0, 0.0], names=["a", "b"])
    path = saved(tmp_path, named)
    with pytest.raises(ValueError, match=r"\['a', 'b'\].*\['param_1', 'param_2'\].*"
                                         r"`names`.*check_names=False"):
        rmsprop.apply_to_values(rmsprop.load_optimizer(path), [1.0, 2.0], [0.0, 0.0])
    # and a shifted list is not taken for the old scheme
    shifted = rmsprop.RMSprop(learning_rate=0.1)
    rmsprop.apply_to_values(shifted, [1.0, 2.0], [0.0, 0.0], names=["param_1", "param_2"])
    path = saved(tmp_path, shifted)
    with pytest.raises(ValueError, match="param_0"):
        rmsprop.apply_to_values(rmsprop.load_optimizer(path), [1.0, 2.0], [0.0, 0.0],
                                names=["param_0", "param_1"])


def test_other_count_shape_or_dtype_is_refused(tmp_path):
    optimizer, variables = trained(rmsprop.RMSprop(learning_rate=0.1))
    path = saved(tmp_path, optimizer)
    with pytest.raises(ValueError, match="2 variables.*1"):
        rmsprop.load_optimizer(path).build(variables[:1])
    other = [rmsprop.Variable(np.zeros((2, 3)), name="w"), rmsprop.Variable(np.zeros(2), name="b")]
    with pytest.raises(ValueError, match=r"holds shape \(3, 2\) and dtype float32 for variable "
                                         r"1 of 2 \('w'\), but the optimizer is being built on "
                                         r"shape \(2, 3\) and dtype float64 there \('w'\)\."):
        rmsprop.load_optimizer(path).build(other)


# ---------------------------------------------------------------------------
# 7. Everything needed for an exact resume


def _exclude_by_name(variables):
    optimizer = rmsprop.RMSprop(learning_rate=0.1, weight_decay=0.3)
    optimizer.exclude_from_weight_decay(var_names=["b"])
    return optimizer


def _exclude_by_variable(variables):
    optimizer = rmsprop.RMSprop(learning_rate=0.1, weight_decay=0.3)
    optimizer.exclude_from_weight_decay(var_list=[variables[0]])
    return optimizer


def _build_float64(variables):
    optimizer = rmsprop.RMSprop(learning_rate=0.1, momentum=0.3)
    optimizer.build(variables, compute_dtype="float64")
    return optimizer


RESUMES = {
    # name: (factory of variables -> optimizer, dtype, floatx when resumed)
    "exclusion by name": (_exclude_by_name, "float32", None),
    "exclusion by variable": (_exclude_by_variable, "float32", None),
    "accumulation mid-cycle": (lambda v: rmsprop.RMSprop(
        learning_rate=0.1, momentum=0.2, gradient_accumulation_steps=3), "float32", None),
    "ema": (lambda v: rmsprop.RMSprop(learning_rate=0.1, use_ema=True, ema_momentum=0.7,
                                      ema_overwrite_frequency=3), "float32", None),
    "loss scale": (lambda v: rmsprop.LossScaleOptimizer(
        rmsprop.RMSprop(learning_rate=0.1), initial_scale=64.0, dynamic_growth_steps=2),
        "float32", None),
    "schedule": (lambda v: rmsprop.RMSprop(
        learning_rate=schedules.PiecewiseConstantDecay([3, 5], [0.1, 0.05, 0.01])),
        "float32", None),
    "compute_dtype": (_build_float64, "float64", None),
    "floatx at build": (lambda v: rmsprop.RMSprop(learning_rate=0.1), "float64", "float64"),
    "learning rate dtype": (_build_float64, "float64", "float16"),
    "centered float16": (lambda v: rmsprop.RMSprop(learning_rate=0.1, centered=True,
                                                   momentum=0.5), "float16", None),
}


def _gradients(step, dtype):
    rng = np.random.default_rng(100 + step)
    grads = [rng.uniform(-2, 2, (3, 2)).astype(dtype), rng.uniform(-2, 2, 2).astype(dtype)]
    if step == 4:
        grads[0][0, 0] = np.inf          # a skipped step under loss scaling
    return grads


def _variables(values, dtype):
    return [rmsprop.Variable(v, dtype=dtype, name=n) for v, n in zip(values, ("w", "b"))]


@pytest.mark.parametrize("kind", list(RESUMES))
def test_save_load_continue_equals_uninterrupted(kind, tmp_path):
    factory, dtype, resume_floatx = RESUMES[kind]
    rng = np.random.default_rng(9)
    start = [rng.uniform(-1, 1, (3, 2)), rng.uniform(-1, 1, 2)]
    whole_vars = _variables(start, dtype)
    whole = factory(whole_vars)
    grads = [_gradients(step, dtype) if kind == "loss scale" else
             [np.nan_to_num(g, posinf=1.0) for g in _gradients(step, dtype)] for step in range(8)]
    for g in grads:
        whole.apply(g, whole_vars)
    part_vars = _variables(start, dtype)
    part = factory(part_vars)
    for g in grads[:5]:
        part.apply(g, part_vars)
    path = rmsprop.save_optimizer(part, tmp_path / "c.ckpt")
    with floatx_scope(resume_floatx or rmsprop.floatx()):
        resumed = rmsprop.load_optimizer(path)
        resumed_vars = _variables([v.numpy() for v in part_vars], dtype)
        for g in grads[5:]:
            resumed.apply(g, resumed_vars)
    for a, b in zip(whole_vars, resumed_vars):
        assert a.value.tobytes() == b.value.tobytes()
    assert len(whole.variables) == len(resumed.variables)
    for a, b in zip(whole.variables, resumed.variables):
        assert a.dtype == b.dtype and a.value.tobytes() == b.value.tobytes(), a.name
    assert resumed.get_config() == whole.get_config()


# ---------------------------------------------------------------------------
# 7b. What cannot be saved is refused at save time, naming it


def test_a_function_as_learning_rate_is_refused_by_name(tmp_path):
    def my_rate():
        return 0.1

    with pytest.raises(ValueError, match="learning_rate is a function.*my_rate"):
        rmsprop.save_optimizer(rmsprop.RMSprop(learning_rate=my_rate), tmp_path / "c.ckpt")
    with pytest.raises(ValueError, match="inner optimizer's learning_rate.*my_rate"):
        rmsprop.save_optimizer(rmsprop.LossScaleOptimizer(rmsprop.RMSprop(learning_rate=my_rate)),
                               tmp_path / "c.ckpt")
    assert os.listdir(tmp_path) == []


def test_variables_excluded_by_object_before_build_are_refused(tmp_path):
    optimizer = rmsprop.RMSprop(weight_decay=0.1)
    optimizer.exclude_from_weight_decay(var_list=[rmsprop.Variable([1.0], name="bias")])
    with pytest.raises(ValueError, match="'bias'.*var_names"):
        rmsprop.save_optimizer(optimizer, tmp_path / "c.ckpt")
    assert os.listdir(tmp_path) == []


def test_a_non_finite_loss_scale_is_refused_at_save(tmp_path):
    optimizer = rmsprop.LossScaleOptimizer(rmsprop.RMSprop(), initial_scale=2.0)
    optimizer.dynamic_scale.assign(np.float32(np.inf))
    with pytest.raises(ValueError, match="dynamic loss scale is inf"):
        rmsprop.save_optimizer(optimizer, tmp_path / "c.ckpt")


# ---------------------------------------------------------------------------
# 8. File-system manners


@pytest.mark.skipif(os.name != "posix", reason="permission bits are POSIX")
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_a_new_file_gets_the_mode_of_the_umask(umask, tmp_path):
    old = os.umask(umask)
    try:
        path = saved(tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask


@pytest.mark.skipif(os.name != "posix", reason="permission bits are POSIX")
def test_overwriting_keeps_the_mode(tmp_path):
    path = saved(tmp_path)
    os.chmod(path, 0o640)
    saved(tmp_path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_a_temporary_file_left_by_a_killed_save_is_replaced(tmp_path):
    leftover = tmp_path / ".c.ckpt.rmsprop-tmp"
    leftover.write_bytes(b"half a checkpoint from a save that was killed")
    saved(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["c.ckpt"]
    # A failed save removes its own temporary file too.
    optimizer = rmsprop.RMSprop(learning_rate=lambda: 0.1)
    with pytest.raises(ValueError):
        rmsprop.save_optimizer(optimizer, tmp_path / "c.ckpt")
    assert sorted(os.listdir(tmp_path)) == ["c.ckpt"]


def test_saving_onto_a_directory_or_into_a_missing_one(tmp_path):
    (tmp_path / "sub").mkdir()
    with pytest.raises(IsADirectoryError, match="sub.*is a directory") as info:
        saved(tmp_path, name="sub")
    assert "rmsprop-tmp" not in str(info.value)
    with pytest.raises(FileNotFoundError, match="does not exist") as info:
        saved(tmp_path, name="missing/c.ckpt")
    assert "rmsprop-tmp" not in str(info.value)
    assert os.listdir(tmp_path) == ["sub"]


def test_file_and_directory_are_synced_before_the_save_returns(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        info = os.fstat(fd)
        events.append(("fsync", info.st_ino, stat.S_ISDIR(info.st_mode)))
        real_fsync(fd)

    def replace(source, target, **kwargs):
        events.append(("replace", os.stat(source).st_ino, False))
        real_replace(source, target, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    path = saved(tmp_path)
    monkeypatch.undo()
    events.append(("returned", None, None))
    file_inode = os.stat(path).st_ino
    directory_inode = os.stat(tmp_path).st_ino
    assert ("fsync", file_inode, False) in events
    assert ("fsync", directory_inode, True) in events
    replaced = events.index(("replace", file_inode, False))
    assert events.index(("fsync", file_inode, False)) < replaced
    assert replaced < events.index(("fsync", directory_inode, True)) < len(events) - 1
