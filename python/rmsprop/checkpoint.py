"""Saving an optimizer to one file and loading it back (checkpoint format 2).

A file is a fixed 64-byte preamble, a JSON header, the arrays, and a digest:

    magic (16 bytes) | version (uint32) | 0 (uint32) | header length (uint64)
    | SHA-256 of the header (32 bytes) | header (UTF-8 JSON)
    | data: every slot array, little-endian, C order, in the order the header
      describes | SHA-256 of the data (32 bytes)

docs/checkpoint-format.md describes every field. The loader trusts nothing in
a file: it checks the preamble, then the header (its digest, its structure,
the config rebuilt by the constructors, and that the arrays it declares are
the ones this optimizer has, of the sizes the rest of the file holds) before
it reads any array, and every value before anything is restored. Any
problem with the file raises `CheckpointError` naming the file and the field.
Only the engine's own classes are built, by registered name, plus the classes
the caller passes in `custom_objects`; nothing named by the file is imported.

Saving writes a temporary file beside the target (`.<name>.rmsprop-tmp`, one
name per target, so a killed save leaves at most one, replaced by the next
save), syncs it, renames it over the target and syncs the directory.

Version-1 files (`.npz`, written before version 2) still load; see
`_load_version_1`.
"""

import hashlib
import json
import math
import os
import re
import stat
import struct
import zipfile
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np

from . import config as rmsprop_config
from . import rmsprop_optimizer  # noqa: F401  (registers RMSprop)
from .base_optimizer import BaseOptimizer, _dtype_names
from .checks import argument_error, describe
from .loss_scale import LossScaleOptimizer
from .registry import lookup

PathLike = Union[str, "os.PathLike[str]"]

MAGIC = b"\x93RMSPROP-CKPT\r\n\x1a"      # 16 bytes; \r\n and \x1a catch text-mode damage
VERSION = 2
_PREAMBLE = struct.Struct("<16sIIQ32s")  # magic, version, reserved, header length, digest
_DIGEST = 32
_FORMAT_NAME = "rmsprop-checkpoint"
_FLOATS = ("float16", "float32", "float64")
_MAX_HEADER = 1 << 28                     # 256 MiB of JSON: millions of variables
_MAX_DIMS = 32
_MAX_DIM = 1 << 48
_INT64_MAX = (1 << 63) - 1
_V1_MARKER = "rmsprop-checkpoint/1"
_V1_MAX_TEXT = 1 << 28
_OPTIMIZER_BASES = (BaseOptimizer, LossScaleOptimizer)
# The dtypes a variable of a user's Optimizer (`add_variable`) may have in a file.
_VARIABLE_DTYPES = _FLOATS + ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                              "uint64", "bool")
_EXTRAS = object()     # the key of those variables' values among the arrays to write


class CheckpointError(ValueError):
    """A checkpoint file is missing, damaged, not a checkpoint, or holds state
    that this optimizer cannot take; the message names the file and the field."""

    def __init__(self, path: str, field: str, problem: str):
        super().__init__(f"Checkpoint {path!r}, {field}: {problem}")
        self.path = path
        self.field = field


def _resolve(path) -> str:
    try:
        text = os.fspath(path)
    except TypeError:
        raise argument_error(TypeError, "path", "a file path (a string or os.PathLike)",
                             path) from None
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if not text:
        raise ValueError("`path` must not be empty.")
    return os.path.abspath(os.path.expanduser(text))


# ---------------------------------------------------------------------------
# Saving


def _state_of(optimizer) -> Tuple[Dict[str, Any], Optional[Dict[str, list]]]:
    """The JSON-ready description of `optimizer`'s state and its slot arrays."""
    inner = optimizer.inner_optimizer if isinstance(optimizer, LossScaleOptimizer) else optimizer
    config = optimizer.get_config()
    inner_config = config["inner_optimizer"]["config"] if inner is not optimizer else config
    rate = inner_config.get("learning_rate")
    # A callable rate appears in configs as an entry naming the function.
    function = isinstance(rate, dict) and rate.get("class_name") == "function"
    if function or not isinstance(rate, (int, float, dict)) or isinstance(rate, bool):
        where = "the inner optimizer's learning_rate" if inner is not optimizer \
            else "learning_rate"
        module = rate.get("module") if function else getattr(rate, "__module__", "")
        if str(module or "").startswith("rpytools"):
            what = "an R function"       # reticulate's wrapper around it
        else:
            name = rate["config"]["name"] if function else (
                getattr(rate, "__qualname__", None) or getattr(rate, "__name__", None))
            what = f"a function ({name or describe(rate)})"
        raise ValueError(f"Cannot save optimizer '{optimizer.name}': {where} is {what}, and a "
                         "function cannot be stored in a file. Use a number or a "
                         "LearningRateSchedule.")
    state = dict(inner._checkpoint_state())
    if state.get("excluded_variables"):
        raise ValueError(
            f"Cannot save optimizer '{optimizer.name}' before it is built: variables "
            f"{state['excluded_variables']} were excluded from weight decay by object "
            "(exclude_from_weight_decay(var_list=...)), which a file cannot identify. Save "
            "it after it is built, or exclude them by name (var_names=...).")
    state.pop("excluded_variables", None)
    slots = state.pop("slots", None)
    extras = state.pop("optimizer_variables", None)
    if extras:
        # A user's `Optimizer` variables from `add_variable`: described here,
        # their values after the slots in the data section.
        for entry in extras:
            if entry["dtype"] not in _VARIABLE_DTYPES:
                raise ValueError(f"Cannot save optimizer '{optimizer.name}': its variable "
                                 f"{entry['name']!r} has dtype {entry['dtype']}; a file holds "
                                 f"{', '.join(_VARIABLE_DTYPES)}.")
        state["optimizer_variables"] = [{"name": e["name"], "dtype": e["dtype"],
                                         "shape": list(e["shape"])} for e in extras]
        slots = dict(slots or {})
        slots[_EXTRAS] = [e["value"] for e in extras]
    if state["built"]:
        if state["compute_dtype"] is None:     # loaded from version 1, not built since
            state["compute_dtype"] = rmsprop_config.floatx()
        state["variables"] = {"names": state.pop("names"), "shapes": state.pop("shapes"),
                              "dtypes": state.pop("dtypes")}
        state["slots"] = [kind for kind in slots if kind is not _EXTRAS]
    loss_scale = None
    if inner is not optimizer:
        scale = float(optimizer.dynamic_scale.value)
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"Cannot save optimizer '{optimizer.name}': its dynamic loss scale "
                             f"is {scale}, not a positive finite number (every step was "
                             "skipped for non-finite gradients, or the scale overflowed).")
        loss_scale = {"step_counter": int(optimizer.step_counter.value),
                      "dynamic_scale": scale}
    header = {"format": _FORMAT_NAME, "version": VERSION,
              "class_name": type(optimizer).__name__, "config": config,
              "loss_scale": loss_scale, "state": state}
    return header, slots


def _little_endian(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))


def _write(handle, header, slots):
    try:
        header_bytes = json.dumps(header, allow_nan=False, separators=(",", ":")).encode()
    except ValueError as error:
        raise ValueError(f"Cannot save optimizer: its config holds a value JSON cannot "
                         f"store exactly ({error}).") from None
    handle.write(_PREAMBLE.pack(MAGIC, VERSION, 0, len(header_bytes),
                                hashlib.sha256(header_bytes).digest()))
    handle.write(header_bytes)
    digest = hashlib.sha256()
    pending = bytearray()
    for arrays in (slots or {}).values():
        for array in arrays:
            data = memoryview(_little_endian(array)).cast("B")
            if len(data) >= 1 << 16:
                if pending:
                    digest.update(pending)
                    handle.write(pending)
                    pending = bytearray()
                digest.update(data)
                handle.write(data)
            else:
                # Small arrays (100,000 one-element variables) are written in batches.
                pending += data
                if len(pending) >= 1 << 20:
                    digest.update(pending)
                    handle.write(pending)
                    pending = bytearray()
    digest.update(pending)
    handle.write(pending)
    handle.write(digest.digest())


def _temporary_path(path: str) -> str:
    directory, name = os.path.split(path)
    return os.path.join(directory, f".{name}.rmsprop-tmp")


def _sync_directory(directory: str) -> None:
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(directory, flags)
    except OSError:
        return                  # some systems (Windows) cannot open a directory
    try:
        os.fsync(fd)
    except OSError:
        pass                    # nor sync one (some network file systems)
    finally:
        os.close(fd)


def save_optimizer(optimizer, path: PathLike) -> str:
    """Write `optimizer` (config and state) to `path` atomically; returns the path.

    A new file gets the usual permissions (the umask's); an existing file keeps
    its permissions. The write is synced to disk, file and directory, before
    this returns. Raises ValueError for state a file cannot hold (a function as
    learning rate, a non-finite loss scale).
    """
    if not isinstance(optimizer, _OPTIMIZER_BASES):
        raise TypeError(f"`optimizer` must be an rmsprop optimizer; got "
                        f"{type(optimizer).__name__}.")
    path = _resolve(path)
    directory = os.path.dirname(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"Cannot save to {path!r}: it is a directory; give a file name.")
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"Cannot save to {path!r}: the directory {directory!r} does "
                                "not exist.")
    header, slots = _state_of(optimizer)
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = None
    temporary = _temporary_path(path)
    try:
        if os.path.lexists(temporary):
            os.unlink(temporary)        # left by a save that was killed
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) \
            | getattr(os, "O_BINARY", 0)
        fd = os.open(temporary, flags, 0o666)   # the umask applies
    except OSError as error:
        raise type(error)(error.errno, f"Cannot save to {path!r}: {error.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            if mode is not None:          # overwriting keeps the file's permissions
                os.chmod(temporary, mode)
            _write(handle, header, slots)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        if os.path.lexists(temporary):
            os.unlink(temporary)
        if isinstance(error, OSError) and error.strerror:
            raise type(error)(error.errno, f"Cannot save to {path!r}: {error.strerror}") \
                from None
        raise
    _sync_directory(directory)
    return path


# ---------------------------------------------------------------------------
# Loading: checking what the file says


class _Checks:
    """Field checks that raise CheckpointError naming the file and the field."""

    def __init__(self, path: str):
        self.path = path

    def fail(self, field: str, problem: str):
        raise CheckpointError(self.path, field, problem)

    def dict(self, field, value, keys, optional=()):
        if not isinstance(value, dict):
            self.fail(field, f"must be a JSON object; found {describe(value)}")
        missing = [k for k in keys if k not in value]
        extra = [k for k in value if k not in keys and k not in optional]
        if missing:
            self.fail(field, f"missing {', '.join(map(repr, missing))}")
        if extra:
            self.fail(field, f"unexpected {', '.join(map(repr, extra))}")
        return value

    def integer(self, field, value, low, high):
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(field, f"must be an integer; found {describe(value)}")
        if not low <= value <= high:
            self.fail(field, f"must be in [{low}, {high}]; found {value}")
        return value

    def string_list(self, field, value):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(field, f"must be a list of strings; found {describe(value)}")
        return value

    def float_dtype(self, field, value):
        if value not in _FLOATS:
            self.fail(field, f"must be one of {', '.join(_FLOATS)}; found {describe(value)}")
        return np.dtype(value)


def _parse_json(checks, field, data: bytes):
    def refuse_constant(name):
        raise ValueError(f"non-standard JSON constant {name}")

    try:
        return json.loads(data.decode("utf-8"), parse_constant=refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        checks.fail(field, f"is not valid JSON ({type(error).__name__}: {error})")


def _check_variables(checks, variables):
    """(names, shapes, dtypes, bytes per variable) of the declared variables."""
    checks.dict("state.variables", variables, ("names", "shapes", "dtypes"))
    names = checks.string_list("state.variables.names", variables["names"])
    shapes, dtypes = variables["shapes"], variables["dtypes"]
    count = len(names)
    if count == 0:
        checks.fail("state.variables", "a built optimizer has at least one variable")
    for field, values in (("shapes", shapes), ("dtypes", dtypes)):
        if not isinstance(values, list) or len(values) != count:
            checks.fail(f"state.variables.{field}", f"must be a list of {count} entries "
                        f"(one per name); found {describe(values)}")
    sizes = []
    checked_dtypes = []
    known: Dict[str, np.dtype] = {}
    for index, (shape, dtype) in enumerate(zip(shapes, dtypes)):
        if type(shape) is not list or len(shape) > _MAX_DIMS:
            checks.fail(f"state.variables.shapes[{index}]", f"must be a list of at most "
                        f"{_MAX_DIMS} sizes; found {describe(shape)}")
        size = 1
        for dim in shape:
            if type(dim) is not int or not 0 <= dim <= _MAX_DIM:
                checks.integer(f"state.variables.shapes[{index}]", dim, 0, _MAX_DIM)
            size *= dim
        dtype = known.get(dtype) if isinstance(dtype, str) else None
        if dtype is None:
            dtype = checks.float_dtype(f"state.variables.dtypes[{index}]", dtypes[index])
            known[dtypes[index]] = dtype
        checked_dtypes.append(dtype)
        sizes.append(size * dtype.itemsize)
    # The shapes stay JSON lists (checked above): the optimizer reports its own so.
    return names, shapes, checked_dtypes, sizes


def _check_optimizer_variables(checks, state, optimizer):
    """The variables of a user's `Optimizer` made by `add_variable`, as the
    header lists them: [(name, dtype, shape, bytes)]; [] when it lists none."""
    entries = state.get("optimizer_variables")
    if entries is None:
        return []
    if optimizer._declares_slots:
        checks.fail("state.optimizer_variables",
                    f"must be absent for {type(optimizer).__name__}")
    if not isinstance(entries, list) or not entries:
        checks.fail("state.optimizer_variables", f"must be a non-empty list; found "
                    f"{describe(entries)}")
    result = []
    for index, entry in enumerate(entries):
        field = f"state.optimizer_variables[{index}]"
        checks.dict(field, entry, ("name", "dtype", "shape"))
        if not isinstance(entry["name"], str) or not entry["name"]:
            checks.fail(f"{field}.name", f"must be a non-empty string; found "
                        f"{describe(entry['name'])}")
        if entry["dtype"] not in _VARIABLE_DTYPES:
            checks.fail(f"{field}.dtype", f"must be one of {', '.join(_VARIABLE_DTYPES)}; "
                        f"found {describe(entry['dtype'])}")
        shape = entry["shape"]
        if not isinstance(shape, list) or len(shape) > _MAX_DIMS:
            checks.fail(f"{field}.shape", f"must be a list of at most {_MAX_DIMS} sizes; "
                        f"found {describe(shape)}")
        size = 1
        for dim in shape:
            checks.integer(f"{field}.shape", dim, 0, _MAX_DIM)
            size *= dim
        dtype = np.dtype(entry["dtype"])
        result.append((entry["name"], dtype, tuple(shape), size * dtype.itemsize))
    return result


def _check_state(checks, state, optimizer):
    """Check the inner optimizer's state section against `optimizer` (as rebuilt
    from the config); returns it with Python values, and the data layout."""
    keys = ("iterations", "learning_rate_dtype", "excluded_names", "built")
    built_keys = ("compute_dtype", "variables", "excluded", "slots")
    extra_keys = ("optimizer_variables",)
    checks.dict("state", state, keys, optional=built_keys + extra_keys)
    checks.integer("state.iterations", state["iterations"], 0, _INT64_MAX - 1)
    rate_dtype = state["learning_rate_dtype"]
    schedule = isinstance(optimizer.get_config()["learning_rate"], dict)
    if schedule and rate_dtype is not None:
        checks.fail("state.learning_rate_dtype", "must be null for a schedule")
    if not schedule:
        checks.float_dtype("state.learning_rate_dtype", rate_dtype)
    names = checks.string_list("state.excluded_names", state["excluded_names"])
    for name in names:
        try:
            re.compile(name)
        except re.error as error:
            checks.fail("state.excluded_names", f"{name!r} is not a regular expression "
                        f"({error})")
    if not isinstance(state["built"], bool):
        checks.fail("state.built", f"must be true or false; found {describe(state['built'])}")
    if not state["built"]:
        checks.dict("state", state, keys, optional=extra_keys)
        return None
    checks.dict("state", state, keys + built_keys, optional=extra_keys)
    checks.float_dtype("state.compute_dtype", state["compute_dtype"])
    names, shapes, dtypes, sizes = _check_variables(checks, state["variables"])
    excluded = state["excluded"]
    if not isinstance(excluded, list):
        checks.fail("state.excluded", f"must be a list of positions; found {describe(excluded)}")
    for position in excluded:
        checks.integer("state.excluded", position, 0, len(names) - 1)
    if len(set(excluded)) != len(excluded):
        checks.fail("state.excluded", "lists a position twice")
    kinds = list(optimizer._all_slot_kinds())
    if not optimizer._declares_slots:
        # A user's `rmsprop.Optimizer` makes its slots in `build()`: the file
        # names them after the base class's; `_PendingState.adopt` checks that
        # the build made the same.
        saved = state["slots"]
        if (isinstance(saved, list) and saved[:len(kinds)] == kinds
                and all(isinstance(k, str) and k for k in saved)
                and len(set(saved)) == len(saved)):
            kinds = list(saved)
    if state["slots"] != kinds:
        checks.fail("state.slots", f"the file holds slots {describe(state['slots'])}, but its "
                    f"config makes an optimizer with slots {kinds}")
    return names, shapes, dtypes, sizes, kinds


def _check_loss_scale(checks, value, optimizer):
    if not isinstance(optimizer, LossScaleOptimizer):
        if value is not None:
            checks.fail("loss_scale", f"must be null for {type(optimizer).__name__}")
        return None
    checks.dict("loss_scale", value, ("step_counter", "dynamic_scale"))
    checks.integer("loss_scale.step_counter", value["step_counter"], 0,
                   optimizer.dynamic_growth_steps - 1)
    scale = value["dynamic_scale"]
    with np.errstate(over="ignore"):
        exact = isinstance(scale, float) and float(np.float32(scale)) == scale
    if not exact or isinstance(scale, bool) or not isinstance(scale, (int, float)) \
            or not math.isfinite(scale) or scale <= 0:
        checks.fail("loss_scale.dynamic_scale", "must be a positive finite float32 number; "
                    f"found {describe(scale)}")
    return value


def _rebuild(checks, class_name, config, custom_objects, rate_dtype):
    """The optimizer the config describes, built by its own class's constructor."""
    try:
        cls = lookup("optimizer", class_name, _OPTIMIZER_BASES, custom_objects)
    except (TypeError, ValueError) as error:
        checks.fail("class_name", str(error))
    if not isinstance(config, dict):
        checks.fail("config", f"must be a JSON object; found {describe(config)}")
    try:
        # A numeric rate is stored in floatx at construction, as Keras does;
        # rebuild it in the dtype it had.
        with rmsprop_config.floatx_scope(rate_dtype or rmsprop_config.floatx()), \
                np.errstate(over="ignore"):
            optimizer = cls.from_config(config, custom_objects=custom_objects)
    except Exception as error:  # the constructors' checks name the argument
        checks.fail("config", f"does not make a {class_name}: {type(error).__name__}: {error}")
    rate = np.asarray(optimizer.learning_rate)[()]    # a Variable, or a schedule's value
    if not np.isfinite(rate):
        checks.fail("config.learning_rate", f"is {rate} in its dtype {rate_dtype}")
    return optimizer


class _PendingState:
    """A loaded state waiting for `build()`: checks the variables it is built on
    (count, shapes, dtypes, and names unless `check_names` is False), then
    hands the state to the optimizer."""

    def __init__(self, path, state, check_names):
        self.path = path
        self.state = state
        self.compute_dtype = state["compute_dtype"]
        self.check_names = check_names

    def adopt(self, optimizer):
        saved, now = self.state, optimizer._checkpoint_state()
        source = f"The checkpoint {self.path!r}"
        if len(now["names"]) != len(saved["names"]):
            raise ValueError(f"{source} was saved for {len(saved['names'])} variables; the "
                             f"optimizer is being built on {len(now['names'])}.")
        for index, name in enumerate(now["names"]):
            if (now["shapes"][index] != saved["shapes"][index]
                    or now["dtypes"][index] != saved["dtypes"][index]):
                raise ValueError(
                    f"{source} holds shape {tuple(saved['shapes'][index])} and dtype "
                    f"{saved['dtypes'][index]} for variable {index + 1} of "
                    f"{len(now['names'])} ('{saved['names'][index]}'), but the optimizer is "
                    f"being built on shape {tuple(now['shapes'][index])} and dtype "
                    f"{now['dtypes'][index]} there ('{name}').")
        if self.check_names and not _same_names(saved["names"], now["names"]):
            raise ValueError(
                f"{source} was saved for variables named {_name_list(saved['names'])}, but the "
                f"optimizer is being built on {_name_list(now['names'])}: the slots would go to "
                "other variables. Build it on the variables in the saved order (unnamed "
                "parameters are named param_1, param_2, ...: pass the saved names with "
                "`names`), or load with check_names=False if the names alone changed.")
        if saved["compute_dtype"] is not None and now["compute_dtype"] != saved["compute_dtype"]:
            raise ValueError(f"{source} was computing in {saved['compute_dtype']}; the "
                             f"optimizer is being built with compute_dtype="
                             f"{now['compute_dtype']}. Build it without compute_dtype to "
                             "resume exactly.")
        problem = _other_variables(saved.get("optimizer_variables", ()), now, built=True)
        if problem:
            raise ValueError(f"{source} {problem}.")
        if list(now["slots"]) != list(saved["slots"]):
            raise ValueError(f"{source} holds the slots {list(saved['slots'])}, but this "
                             f"optimizer's build() made {list(now['slots'])}.")
        optimizer._restore_checkpoint_state(saved)


def _same_names(saved: List[str], now: List[str]) -> bool:
    """The saved names are the variables' names. Unnamed parameters trained by
    position (`apply_to_values`, R's `optimizer_apply()`) are "param_1", ...
    (positional.default_names); Python named them "param_0", ... before, and
    such a checkpoint names the same positions."""
    if saved == now:
        return True
    count = len(saved)
    return (saved == [f"param_{i}" for i in range(count)]
            and now == [f"param_{i}" for i in range(1, count + 1)])


def _other_variables(saved, now, built=False):
    """What is wrong when a checkpoint's `add_variable` variables (`saved`,
    from the file) are not the optimizer's (`now`, its `_checkpoint_state()`):
    they must have the same names, dtypes and shapes, in order; None when
    they do. Before build (`built` False) only those made in `__init__`
    exist, which come first."""
    have = [(e["name"], e["dtype"], list(e["shape"]))
            for e in now.get("optimizer_variables", ())]
    want = [(e["name"], e["dtype"], list(e["shape"])) for e in saved]
    if have != (want if built else want[:len(have)]):
        return (f"holds the optimizer variables (name, dtype, shape) {want}, but this "
                f"optimizer has {have}")
    return None


def _name_list(names: List[str]) -> str:
    if len(names) <= 20:
        return repr(names)
    return repr(names[:10])[:-1] + f", ... ({len(names)} in all)]"


def _read_exactly(handle, size, checks, field):
    data = handle.read(size)
    if len(data) != size:
        checks.fail(field, f"the file ends early (truncated): wanted {size} bytes, "
                    f"found {len(data)}")
    return data


def _runs(dtypes):
    """(dtype, positions) for each run of consecutive positions of one dtype."""
    runs: List[tuple] = []
    for index, dtype in enumerate(dtypes):
        if runs and runs[-1][0] is dtype:
            runs[-1][1].append(index)
        else:
            runs.append((dtype, [index]))
    return runs


def _read_slots(handle, checks, layout, rmsprop_velocity=True, extras=()):
    """Read the data section into one array per (slot kind, variable), then
    one per entry of `extras` (the variables of a user's `Optimizer`, see
    `_check_optimizer_variables`), checking its digest and
    (`rmsprop_velocity`: the engine's own slots) that velocities are not
    negative. Returns (slots, the arrays of `extras`)."""
    names, shapes, dtypes, sizes, kinds = layout
    digest = hashlib.sha256()
    slots = {}
    velocities = []
    for kind in kinds:
        buffer = bytearray(sum(sizes))
        view = memoryview(buffer)
        if handle.readinto(view) != len(buffer):
            checks.fail("data", "the file ends early (truncated)")
        digest.update(view)
        arrays = []
        offset = 0
        for dtype, run in _runs(dtypes):
            # One array per run of variables of one dtype; each variable's slot
            # is a view of it.
            count = sum(sizes[i] for i in run) // dtype.itemsize
            flat = np.frombuffer(buffer, dtype=dtype.newbyteorder("<"), count=count,
                                 offset=offset)
            if not flat.dtype.isnative:
                flat = flat.astype(dtype)
            if kind == "velocity" and rmsprop_velocity:
                velocities.append(flat)
            start = 0
            for index in run:
                shape = shapes[index]
                stop = start + sizes[index] // dtype.itemsize
                view = flat[start:stop]
                arrays.append(view if len(shape) == 1 else view.reshape(shape))
                start = stop
            offset += count * dtype.itemsize
        slots[kind] = arrays
    values = []
    for name, dtype, shape, size in extras:
        data = _read_exactly(handle, size, checks, f"data of optimizer variable {name!r}")
        digest.update(data)
        values.append(np.frombuffer(data, dtype=dtype.newbyteorder("<")).astype(dtype)
                      .reshape(shape))
    if _read_exactly(handle, _DIGEST, checks, "data digest") != digest.digest():
        checks.fail("data", "the arrays do not match their SHA-256 digest (the file is "
                    "damaged)")
    if handle.read(1):
        checks.fail("data", "the file goes on after the data digest")
    if velocities and any((flat < 0).any() for flat in velocities):
        index = next(i for i, v in enumerate(slots["velocity"]) if (v < 0).any())
        checks.fail(f"velocity of variable {index} ('{names[index]}')",
                    "holds negative values (a mean of squares cannot be negative)")
    return slots, values


def load_optimizer(path: PathLike, custom_objects: Optional[Mapping[str, type]] = None,
                   check_names: bool = True):
    """Rebuild the optimizer saved at `path`.

    Only the engine's own classes load by name; a user's own classes (a
    LearningRateSchedule subclass) load when passed in `custom_objects`, a dict
    mapping class names to classes. Nothing named by the file is imported.

    The saved state is taken up when the optimizer is built (or first applied)
    on variables of the same shapes, dtypes and names, in the same order, as
    when it was saved; `check_names=False` accepts other names. Any problem
    with the file raises `CheckpointError` (a ValueError) naming the file and
    the field.
    """
    path = _resolve(path)
    if not isinstance(check_names, bool):
        raise argument_error(TypeError, "check_names", "True or False", check_names)
    checks = _Checks(path)
    try:
        return _load(checks, custom_objects, check_names)
    except CheckpointError:
        raise
    except Exception as error:
        # Whatever else damage makes the readers raise (zip and .npy parsing
        # raise many kinds), it is still a problem with the file.
        raise CheckpointError(path, "file", f"is damaged ({type(error).__name__}: "
                              f"{error})") from None


def _load(checks, custom_objects, check_names):
    path = checks.path
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        checks.fail("file", "no such file")
    except OSError as error:
        checks.fail("file", f"cannot be opened ({error.strerror})")
    with handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            checks.fail("file", "is not a regular file")
        start = handle.read(_PREAMBLE.size)
        if start[:4] == b"PK\x03\x04":
            return _load_version_1(checks, handle, custom_objects, check_names)
        if start[:len(MAGIC)] != MAGIC[:len(start)] or len(start) < len(MAGIC):
            checks.fail("marker", "not an rmsprop checkpoint (the file does not start with "
                        "the rmsprop checkpoint marker)")
        if len(start) < _PREAMBLE.size:
            checks.fail("preamble", "the file ends early (truncated)")
        _, version, reserved, header_size, header_digest = _PREAMBLE.unpack(start)
        if version != VERSION:
            checks.fail("version", f"format version {version} is not supported (this engine "
                        f"reads versions 1 and {VERSION})")
        if reserved != 0:
            checks.fail("preamble", f"reserved field is {reserved}, not 0")
        if header_size > min(_MAX_HEADER, info.st_size - _PREAMBLE.size):
            checks.fail("header length", f"{header_size} bytes, more than the file holds "
                        f"({info.st_size} bytes in all) or than {_MAX_HEADER}")
        header_bytes = _read_exactly(handle, header_size, checks, "header")
        if hashlib.sha256(header_bytes).digest() != header_digest:
            checks.fail("header", "does not match its SHA-256 digest (the file is damaged)")
        header = _parse_json(checks, "header", header_bytes)
        checks.dict("header", header,
                    ("format", "version", "class_name", "config", "loss_scale", "state"))
        if header["format"] != _FORMAT_NAME or header["version"] != VERSION:
            checks.fail("header.format", f"must be {_FORMAT_NAME!r} version {VERSION}; found "
                        f"{describe(header['format'])} version {describe(header['version'])}")
        state = header["state"]
        checks.dict("state", state, (), optional=tuple(state) if isinstance(state, dict) else ())
        rate_dtype = state.get("learning_rate_dtype")
        if rate_dtype is not None:
            checks.float_dtype("state.learning_rate_dtype", rate_dtype)
        optimizer = _rebuild(checks, header["class_name"], header["config"], custom_objects,
                             rate_dtype)
        loss_scale = _check_loss_scale(checks, header["loss_scale"], optimizer)
        inner = optimizer.inner_optimizer if loss_scale is not None else optimizer
        layout = _check_state(checks, state, inner)
        extras = _check_optimizer_variables(checks, state, inner)
        data_bytes = (0 if layout is None else len(layout[4]) * sum(layout[3])) + sum(
            size for _, _, _, size in extras)
        expected_size = _PREAMBLE.size + header_size + data_bytes + _DIGEST
        if info.st_size != expected_size:
            checks.fail("data", f"the header declares {data_bytes} bytes of arrays, so the "
                        f"file should have {expected_size} bytes; it has {info.st_size} "
                        "(truncated or extended)")
        slots, values = _read_slots(handle, checks, layout or ([], [], [], [], []),
                                    rmsprop_velocity=inner._declares_slots, extras=extras)
    restored = [{"name": name, "dtype": dtype.name, "shape": list(shape), "value": value}
                for (name, dtype, shape, _), value in zip(extras, values)]
    return _restore(optimizer, inner, state, layout, slots, loss_scale, path, check_names,
                    restored)


def _restore(optimizer, inner, state, layout, slots, loss_scale, path, check_names,
             extras=()):
    if extras:
        # Made in the optimizer's __init__ they can be checked now; made by
        # its build(), when it is built (_PendingState.adopt).
        # (A file saved before build holds only those of __init__: all must be there.)
        problem = _other_variables(extras, inner._checkpoint_state(), built=not state["built"])
        if problem:
            _Checks(path).fail("state.optimizer_variables", problem)
    if state["excluded_names"]:
        inner.exclude_from_weight_decay(var_names=state["excluded_names"])
    restored = {"iterations": state["iterations"], "built": state["built"]}
    pending = None
    if layout is not None:
        names, shapes, dtypes, _, _ = layout
        restored.update(compute_dtype=state.get("compute_dtype"), names=names,
                        shapes=shapes, dtypes=_dtype_names(dtypes),
                        excluded=list(state["excluded"]), slots=slots,
                        learning_rate_dtype=state["learning_rate_dtype"],
                        excluded_names=list(state["excluded_names"]))
        pending = _PendingState(path, restored, check_names)
    if extras:
        restored["optimizer_variables"] = list(extras)
    inner._restore_checkpoint_state(restored, pending)
    if loss_scale is not None:
        optimizer.step_counter.assign(loss_scale["step_counter"])
        optimizer.dynamic_scale.assign(loss_scale["dynamic_scale"])
    return optimizer


# ---------------------------------------------------------------------------
# Version 1: an .npz (zip) of 0-d string arrays and `value_%05d` arrays


def _v1_member(checks, archive, name, limit):
    """The header-checked .npy member `name`: (dtype, shape, open stream)."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        checks.fail(name, "missing")
    if info.file_size > limit:
        checks.fail(name, f"declares {info.file_size} bytes, more than {limit}")
    stream = archive.open(info)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            checks.fail(name, f"unsupported .npy version {version}")
    except (ValueError, EOFError, OSError, zipfile.BadZipFile) as error:
        checks.fail(name, f"is not a readable .npy array ({error})")
    if fortran or dtype.hasobject:
        checks.fail(name, "holds an object or Fortran-ordered array")
    return dtype, shape, stream, info


def _v1_read(checks, archive, name, limit, want_dtype=None, want_shape=None):
    dtype, shape, stream, info = _v1_member(checks, archive, name, limit)
    with stream:
        if want_dtype is not None and (dtype.kind != "f" or dtype.name != want_dtype.name
                                       or tuple(shape) != tuple(want_shape)):
            checks.fail(name, f"holds {dtype} {tuple(shape)}; expected {want_dtype.name} "
                        f"{tuple(want_shape)}")
        if want_dtype is None and dtype.kind not in "Uiuf":
            checks.fail(name, f"holds dtype {dtype}")
        count = math.prod(shape)
        if count * dtype.itemsize > min(limit, info.file_size):
            checks.fail(name, f"its header declares {count * dtype.itemsize} bytes of data, more "
                        f"than the archive holds for it ({info.file_size}) or than {limit}")
        try:
            data = stream.read(count * dtype.itemsize)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
            checks.fail(name, f"is damaged ({error})")
        if len(data) != count * dtype.itemsize:
            checks.fail(name, "is truncated")
        return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


def _v1_text(checks, archive, name, limit=_V1_MAX_TEXT):
    value = _v1_read(checks, archive, name, limit)
    if value.dtype.kind != "U" or value.shape != ():
        checks.fail(name, "is not a string")
    return str(value)


def _load_version_1(checks, handle, custom_objects, check_names):
    """Load a version-1 file into the same checks and restore as version 2.

    Values are taken by the number in `value_<n>` (not in string order, which
    put value_100000 before value_10001), and each member's dtype and shape are
    checked before it is decompressed.
    """
    handle.seek(0)
    try:
        archive = zipfile.ZipFile(handle)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        checks.fail("file", f"not an rmsprop checkpoint (not a readable zip: {error})")
    with archive:
        names = archive.namelist()
        if "format.npy" not in names:
            checks.fail("marker", f"not an rmsprop checkpoint (no {_V1_MARKER!r} marker)")
        if _v1_text(checks, archive, "format.npy", 1024) != _V1_MARKER:
            checks.fail("marker", f"not an rmsprop checkpoint (no {_V1_MARKER!r} marker)")
        class_name = _v1_text(checks, archive, "class_name.npy")
        config = _parse_json(checks, "config", _v1_text(checks, archive, "config.npy").encode())
        specs = _parse_json(checks, "variable_specs",
                            _v1_text(checks, archive, "variable_specs.npy").encode())
        numbers = []
        for name in names:
            match = re.fullmatch(r"value_(\d{1,9})\.npy", name)
            if match:
                numbers.append(int(match.group(1)))
            elif name not in ("format.npy", "class_name.npy", "config.npy",
                              "variable_specs.npy"):
                checks.fail(name, "unexpected member")
        if sorted(numbers) != list(range(len(numbers))):
            checks.fail("value_<n>", "the values are not numbered 0, 1, 2, ...")
        # The leading values: [step_counter, dynamic_scale] for a LossScaleOptimizer,
        # then iterations, then the learning rate unless it is a schedule.
        is_scaled = class_name == "LossScaleOptimizer"
        inner_config = config
        if is_scaled:
            inner_config = config.get("inner_optimizer") if isinstance(config, dict) else None
            inner_config = inner_config.get("config") if isinstance(inner_config, dict) else None
        if not isinstance(inner_config, dict):
            checks.fail("config", f"must be a JSON object; found {describe(inner_config)}")
        schedule = isinstance(inner_config.get("learning_rate"), dict)
        lead = (["step_counter", "dynamic_scale"] if is_scaled else []) + ["iterations"]
        if not schedule:
            lead.append("learning_rate")
        if len(numbers) < len(lead):
            checks.fail("value_<n>", f"the file holds {len(numbers)} values; it needs at "
                        f"least {len(lead)}")
        values = {}
        for number, what in enumerate(lead):
            member = f"value_{number:05d}.npy"
            value = _v1_read(checks, archive, member, 1024)
            kind = "f" if what in ("dynamic_scale", "learning_rate") else "i"
            if value.shape != () or value.dtype.kind != kind:
                checks.fail(member, f"{what} must be a single "
                            f"{'integer' if kind == 'i' else 'float'}; found {value.dtype} "
                            f"{value.shape}")
            values[what] = value[()]
        # The learning rate variable had floatx's dtype at save time: keep it.
        rate_dtype = None if schedule else checks.float_dtype(
            "learning_rate", values["learning_rate"].dtype.name).name
        optimizer = _rebuild(checks, class_name, config, custom_objects, rate_dtype)
        inner = optimizer.inner_optimizer if is_scaled else optimizer
        if not schedule:
            try:
                inner.learning_rate = float(values["learning_rate"])
            except (TypeError, ValueError) as error:
                checks.fail("learning_rate", str(error))
        layout = None
        expected = len(lead)
        if specs is not None:
            if not isinstance(specs, list):
                checks.fail("variable_specs", f"must be a list; found {describe(specs)}")
            variables = {"names": [], "shapes": [], "dtypes": []}
            for index, spec in enumerate(specs):
                checks.dict(f"variable_specs[{index}]", spec, ("name", "shape", "dtype"))
                for key in ("name", "shape", "dtype"):
                    variables[key + "s"].append(spec[key])
            names_, shapes, dtypes, sizes = _check_variables(checks, variables)
            kinds = list(inner._all_slot_kinds())
            layout = (names_, shapes, dtypes, sizes, kinds)
            expected += len(kinds) * len(shapes)
        if len(numbers) != expected:
            checks.fail("value_<n>", f"the file holds {len(numbers)} values; its config and "
                        f"variable_specs need {expected}")
        slots = {}
        number = len(lead)
        for kind in (layout[4] if layout else []):
            slots[kind] = []
            for shape, dtype, size in zip(layout[1], layout[2], layout[3]):
                slots[kind].append(_v1_read(checks, archive, f"value_{number:05d}.npy",
                                            size + 1024, dtype, shape))
                number += 1
    state = {"iterations": int(values["iterations"]), "excluded_names": [],
             "built": layout is not None, "learning_rate_dtype": rate_dtype}
    checks.integer("iterations", state["iterations"], 0, _INT64_MAX - 1)
    loss_scale = None
    if is_scaled:
        loss_scale = _check_loss_scale(
            checks, {"step_counter": int(values["step_counter"]),
                     "dynamic_scale": float(values["dynamic_scale"])}, optimizer)
    if layout is not None:
        # Version 1 did not record the compute dtype: as then, floatx at build.
        state.update(compute_dtype=None, excluded=[])
        for index, velocity in enumerate(slots.get("velocity", ())):
            if (velocity < 0).any():
                checks.fail(f"velocity of variable {index} ('{layout[0][index]}')",
                            "holds negative values")
    return _restore(optimizer, inner, state, layout, slots, loss_scale, checks.path,
                    check_names)
