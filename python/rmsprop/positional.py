"""Training plain values, matched by position: the engine side of R's `optimizer_apply()`.

The caller owns the parameter values (an R list, say) and passes them in at
every step; for each optimizer a `ValueTrainer` keeps one Variable per
position between calls, copies the values in (callers' arrays may be
read-only views), applies the gradients and hands back new arrays.

`Trainers` keeps the trainer of each optimizer, weakly (an optimizer that
is no longer used elsewhere goes away with its trainer), so nothing is
stored on the optimizer itself. `TRAINERS` is the one R uses, through its
bound method `apply_for_r` (fetched once by R's `init_engine()`), and the
one behind the module functions `apply_to_values` and `finalized_values`.
"""

import math
import threading
import weakref
from typing import List, Optional, Sequence

import numpy as np

from .checks import argument_error
from .variable import Variable

# A sum of squares of floats is finite exactly when every element is (no
# cancellation: squares are >= 0 or NaN), unless finite squares overflow:
# only then is each element looked at. A 1-d array up to `_DOT_MAX` elements
# takes `ndarray.dot` (one C call); others np.add.reduce over every element
# (axis None, positionally), which has no BLAS threads behind it.
_DOT_MAX = 4096
_add_reduce = np.add.reduce
_max_reduce = np.maximum.reduce
_min_reduce = np.minimum.reduce


def non_finite(array) -> bool:
    """True for a float array holding NaN or +-Inf (None and integer arrays:
    False; R finds NA in integers itself)."""
    if array is None or array.dtype.kind != "f":
        return False
    if array.ndim == 1 and array.size <= _DOT_MAX:
        total = array.dot(array)
    else:
        total = _add_reduce(array, None)
    return not math.isfinite(total) and not np.isfinite(array).all()


# A long 1-d result is written and checked chunk by chunk, each chunk
# checked while it is still in cache: one pass over memory instead of two.
# (32,768 float64 numbers, 256 KB, fit every L2 cache; shorter results, and
# results of more dimensions, whose copy reorders the numbers, are written
# whole, then checked.)
_CHUNK = 1 << 15


def write_checked(out, value) -> bool:
    """Copy `value` into the writable array `out` of its shape; True when the
    copy holds NaN or +-Inf."""
    size = out.size
    if out.ndim != 1 or size <= 2 * _CHUNK:
        out[...] = value
        return non_finite(out)
    bad = False
    for start in range(0, size, _CHUNK):
        part = out[start:start + _CHUNK]
        part[...] = value[start:start + _CHUNK]
        if not bad and non_finite(part):
            bad = True
    return bad


# NumPy's floating-point error state, set to "ignore" around R's steps. In
# NumPy 1.x `np.errstate` costs about 5 us per use (two seterr/geterr calls
# in Python), as much as the rest of a small step's bridge; its error object
# is set directly there. NumPy 2 has no error object and a cheap errstate.
if hasattr(np, "seterrobj"):
    def _ignore_float_errors():
        state = np.geterrobj()
        np.seterrobj([state[0], 0, state[2]])     # mask 0: ignore all four kinds
        return state

    def _restore_float_errors(state):
        np.seterrobj(state)
else:
    def _ignore_float_errors():
        state = np.errstate(all="ignore")
        state.__enter__()
        return state

    def _restore_float_errors(state):
        state.__exit__(None, None, None)


class DoesNotFitError(ValueError):
    """A finite value or gradient that would be inf in the dtype it is
    trained in (see `refuse_overflow`); `argument` is "values" or "grads",
    `index` its position (then the element's), `r_position` the 1-based
    column-major position of R's first such element, `count` how many."""


def _overflow(array, dtype, largest):
    """The mask of the finite elements of `array` that are inf in `dtype`, or
    None when there are none."""
    array = array if type(array) is np.ndarray else np.asarray(array)
    kind = array.dtype.kind
    if kind not in "fiu" or not array.size or (
            np.iinfo(array.dtype).max <= largest if kind in "iu"
            else array.dtype.itemsize <= dtype.itemsize):
        return None
    # Within the largest and the smallest element, found chunk by chunk (the
    # smallest while the chunk is in cache: one pass over memory). NaN fails
    # the comparisons and takes the exact path, which ignores it.
    flat = array.ravel(order="K")       # (a view of a contiguous array)
    for start in range(0, flat.size, _CHUNK):
        part = flat[start:start + _CHUNK]
        if not (_max_reduce(part, None) <= largest and _min_reduce(part, None) >= -largest):
            break
    else:
        return None
    with np.errstate(all="ignore"):
        # a value a little above `largest` rounds to it: the cast decides
        mask = np.isinf(array.astype(dtype)) & np.isfinite(array)
    return mask if mask.any() else None


def refuse_overflow(values, grads, dtype, skip_grads, values_fit=False):
    """Refuse a finite value or gradient that `dtype` (float32 or float16)
    cannot hold, before anything changes.

    Keras casts silently (`Variable.assign` converts the value to the
    variable's dtype, `RMSprop.update_step` does `ops.cast(gradient,
    variable.dtype)`; like NumPy's astype, 1e39 becomes inf in float32 and
    the parameter inf or NaN after the step); this engine refuses it
    instead, since a user's value must never silently become inf. A
    caller's NaN and inf are left as they are (Python keeps Keras'
    semantics for them; R refuses them itself).

    With `skip_grads` (a loss-scale optimizer) an overflowing gradient is
    replaced in `grads` by its cast, inf, the overflow signal on which
    dynamic loss scaling skips the step and halves the scale, as a float32
    gradient that overflowed does in Keras.
    With `values_fit` only the gradients are checked (the values are
    results of this dtype passed back).
    """
    largest = float(np.finfo(dtype).max)
    bound = largest * largest
    # In R's order: each parameter, then its gradient.
    for index, value in enumerate(values):
        for argument, array in (("values", None if values_fit else value),
                                ("grads", grads[index] if index < len(grads) else None)):
            # The usual case in one C call: a short 1-d float array whose sum
            # of squares is within largest**2 has no element beyond largest.
            if array is None or (type(array) is np.ndarray and array.ndim == 1
                                 and array.size <= _DOT_MAX and array.dtype.kind == "f"
                                 and array.dot(array) <= bound):
                continue
            mask = _overflow(array, dtype, largest)
            if mask is None:
                continue
            array = np.asarray(array)
            if argument == "grads" and skip_grads:
                with np.errstate(all="ignore"):
                    grads[index] = array.astype(dtype)
                continue
            first = tuple(int(i) for i in np.argwhere(mask)[0])
            error = argument_error(
                DoesNotFitError, argument,
                f"representable in {dtype.name}, the dtype it is trained in (largest: "
                f"{largest!r})", array[first].item(), f", which is inf in {dtype.name}",
                index=(index,) + first)
            error.r_position = int(np.flatnonzero(mask.ravel(order="F"))[0]) + 1
            error.count = int(np.count_nonzero(mask))
            error.largest = largest
            raise error


def narrow_dtype(dtype):
    """`dtype` as a NumPy dtype when it is float32 or float16 (values may
    not fit in it), else None (also for a dtype the Variables will refuse)."""
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        return None
    return dtype if dtype in (np.float32, np.float16) else None


class _WritableInterface:
    """The array interface of a read-only array, marked writable (see `_writable`)."""

    __slots__ = ("__array_interface__", "owner")


def _writable(array):
    """A writable view of `array`, a read-only view of memory the caller may
    write (R's fresh result vector, see `apply_for_r`); it keeps `array`
    (and so R's vector) alive while it exists."""
    holder = _WritableInterface()
    interface = array.__array_interface__
    interface["data"] = (interface["data"][0], False)
    holder.__array_interface__ = interface
    holder.owner = array
    return np.asarray(holder)


class ValueTrainer:
    """The Variables an optimizer trains for a caller that owns the values."""

    def __init__(self, optimizer, values, grads, dtype, names, caller="`apply_to_values`"):
        # float32 and float16 may not hold the caller's values: refused
        # before the Variables cast them, and at every `load`
        # (refuse_overflow); a loss-scale optimizer skips the step on an
        # overflowing gradient.
        narrow = narrow_dtype(dtype)
        self.narrow = narrow is not None
        self.skip_grads = hasattr(optimizer, "inner_optimizer")
        if self.narrow:
            refuse_overflow(values, grads, narrow, self.skip_grads)
        if optimizer.built:
            raise ValueError("This optimizer was already built on other variables; "
                             f"create a new optimizer for {caller}.")
        if names is None:
            names = default_names(len(values))
        names = list(names)
        if len(names) != len(values) or not all(isinstance(n, str) for n in names):
            raise argument_error(ValueError, "names",
                                 f"one string per parameter ({len(values)})", names)
        self.variables = [Variable(v, dtype=dtype, name=n) for v, n in zip(values, names)]
        # Fixed at the first call: the state of each position belongs to its name.
        self.names = names
        self.dtype = np.dtype(dtype)
        # R's record of the last step (`Trainers.apply_for_r`): its number,
        # the float64 values returned (read-only: views of R's vectors, or
        # arrays nothing writes), and the positions of non-finite ones.
        self.step_number = 0
        self.last: Optional[List[np.ndarray]] = None
        self.last_non_finite: List[int] = []

    def write_for_r(self, outs, pack, step_number):
        """Write the variables' values into R's result vectors (see
        `Trainers.apply_for_r`), record them as step `step_number`, and return
        the 0-based positions of those that are not finite."""
        writable_pack = None if pack is None else _writable(pack)
        offset = 0
        last = []
        bad = []
        for index, variable in enumerate(self.variables):
            out = outs[index]
            if out is not None:
                if out.shape != variable.shape or out.dtype != np.float64:
                    raise ValueError(f"Result vector {index + 1} has shape {out.shape}, dtype "
                                     f"{out.dtype}; expected {variable.shape}, float64.")
                if write_checked(_writable(out), variable.value):
                    bad.append(index)
            elif not variable.size:
                out = np.zeros(variable.shape)        # nothing to write
            elif variable.size == pack.size and variable.ndim == 1:
                # the only short result (the usual single small parameter)
                writable_pack[...] = variable.value
                out = pack
                offset = pack.size
            else:
                # R's layout (column-major), in the shared vector of short results.
                end = offset + variable.size
                if writable_pack is None or end > pack.size:
                    raise ValueError(f"The vector of short results is too short for "
                                     f"parameter {index + 1}.")
                writable_pack[offset:end].reshape(variable.shape, order="F")[...] = variable.value
                out = pack[offset:end].reshape(variable.shape, order="F")
                offset = end
            last.append(out)
        if pack is not None:
            if offset != pack.size:
                raise ValueError(f"The vector of short results has {pack.size} elements; "
                                 f"{offset} were written.")
            # the short results are checked at once, one by one only when needed
            if non_finite(pack):
                bad.extend(index for index, out in enumerate(last)
                           if outs[index] is None and non_finite(out))
                bad.sort()
        self.last = last
        self.last_non_finite = bad
        self.step_number = step_number
        return bad

    def load(self, values, dtype, grads, names=None):
        """Copy `values` into the Variables, after checking all of them,
        `names` (None: not given) and `grads` (see `refuse_overflow`): a
        rejected call changes nothing."""
        variables = self.variables
        if len(values) != len(variables):
            raise ValueError(f"The optimizer was first used with {len(variables)} parameters; "
                             f"got {len(values)}. Use a new optimizer for a new model.")
        # Renamed or reordered parameters would silently take over the state
        # (slots, EMA) of the names they replace. (Compared as lists: `!=`
        # on a NumPy array of names is an array, not a verdict.)
        if names is not None and list(names) != self.names:
            raise ValueError(f"The optimizer was first used with parameters named {self.names}; "
                             f"got {list(names)}. The names are fixed at the first call: use a "
                             "new optimizer for a new model.")
        # Compare dtype objects: `.name` is slow in NumPy 1.x, and this runs
        # at every step.
        if np.dtype(dtype) != self.dtype:
            raise ValueError(f"The optimizer was first used with dtype {self.dtype.name}; "
                             f"got dtype {np.dtype(dtype).name}.")
        for index, (variable, value) in enumerate(zip(variables, values)):
            shape = value.shape if type(value) is np.ndarray else np.shape(value)
            if shape != variable.shape:
                raise ValueError(f"Parameter {index + 1} ('{variable.name}') has shape {shape}; "
                                 f"the optimizer was first used with shape {variable.shape}.")
        if self.narrow:
            # (values R passed back unchanged are results of this dtype)
            refuse_overflow(values, grads, self.dtype, self.skip_grads, values is self.last)
        for variable, value in zip(variables, values):
            # Item assignment casts like copyto(casting="unsafe"), without the
            # dispatch cost of a NumPy function call (this runs at every step).
            variable.value[...] = value


class Trainers:
    """The `ValueTrainer` of each optimizer trained through `apply`."""

    def __init__(self):
        self._by_optimizer = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def trainer(self, optimizer) -> Optional[ValueTrainer]:
        return self._by_optimizer.get(optimizer)

    def _step(self, optimizer, grads, values, dtype, names, caller) -> ValueTrainer:
        """Build on (first call) or load `values`, then apply `grads`; the
        caller holds `optimizer._lock` (an RLock) when it reads the results.
        `caller` names the function in messages."""
        if len(grads) != len(values):
            raise ValueError(f"Got {len(grads)} gradients for {len(values)} parameters; "
                             "they must have the same structure.")
        trainer = self._by_optimizer.get(optimizer)
        first = trainer is None
        if first:
            trainer = ValueTrainer(optimizer, values, grads, dtype, names, caller)
        # The optimizer's lock makes loading the values and the step one unit
        # when two threads train the same optimizer.
        with optimizer._lock:
            if first:
                with self._lock:
                    if optimizer in self._by_optimizer:
                        raise RuntimeError(f"Two threads made the first call of {caller} "
                                           "on one optimizer at once.")
                    # The caller picked `dtype` for the arithmetic too (R
                    # computes in float64 by default), so the updates run in
                    # it rather than in floatx.
                    before = optimizer._state_before_build()
                    optimizer.build(trainer.variables, compute_dtype=dtype)
                    self._by_optimizer[optimizer] = trainer
            else:
                trainer.load(values, dtype, grads, names)
            # Whatever R kept of an earlier step no longer names these values.
            trainer.step_number = 0
            trainer.last = None
            try:
                optimizer.apply(grads, trainer.variables)
            except Exception:
                if first:
                    # A refused first step leaves the optimizer unbuilt, as
                    # it was: the next call may bring another structure.
                    with self._lock:
                        del self._by_optimizer[optimizer]
                    optimizer._unbuild(before)
                raise
        return trainer

    def apply(self, optimizer, grads: Sequence, values: Sequence, dtype="float64",
              names: Optional[Sequence[str]] = None, copy: bool = True,
              caller: str = "`apply_to_values`") -> List[np.ndarray]:
        """See `apply_to_values`; `caller` names the function in messages."""
        values = list(values)
        grads = list(grads)
        with optimizer._lock:
            trainer = self._step(optimizer, grads, values, dtype, names, caller)
            if copy:
                return [np.array(v.value, dtype=np.float64) for v in trainer.variables]
            return [_float64_view(v.value) for v in trainer.variables]

    def apply_for_r(self, optimizer, grads, values, dtype, names, outs, last_step, step,
                    check_grads):
        """`apply` the way R's `optimizer_apply()` calls it, at every step.

        Everything that costs R time per call is avoided. The arguments are
        positional (`names` may be one string: reticulate's conversion of a
        character vector of length 1); nothing is returned in the usual case
        (a Python object R would have to convert); an error is returned
        instead of raised (R checks the class of the result, much cheaper
        than wrapping every call in an R `tryCatch()`).

        Values R already holds are not sent again: `values` is empty (or
        None, and so are `names`, which only a first call needs) when R
        passes back exactly the values this trainer wrote at step
        `last_step` (R compares them with `identical()`). They are then loaded
        from `trainer.last`, read-only views of those R vectors (so the step
        starts from the caller's values, whatever happened to the variables
        in between). When another step came in between, `("stale",)` is
        returned and R sends the values.

        NaN and Inf in the values and (with `check_grads`) the gradients are
        found here, before anything changes: `("params", i)` or
        `("grads", i)` (1-based) is returned for the first, and R raises its
        error naming the element and position. Integer arrays are R's to
        check (for NA).

        The results are written into R's memory: `outs[i]` (for i < n), when
        not None, is a fresh float64 R vector (with a dim, so that reticulate
        hands over a read-only view of R's memory) that nothing else in R
        refers to yet; it may be the very vector passed as `grads[i]` or
        `values[i]` (R's duplicate of a plain vector, reused to spare an
        allocation), which is why the results are written only once the
        step is done and neither is read again. The other results go, in
        order and column-major, into the fresh vector `outs[n]` (the pack).
        They are written through writable views dropped before returning,
        and R hands these vectors
        (or copies of parts of the pack) to the caller. Once returned, R never
        changes them in place (reticulate's reference marks them shared).
        The step is recorded as `step`; results that are not finite return
        `("results", [i, ...])` (R warns).

        NumPy's floating-point warnings are off: R warns instead, naming the
        parameter that became non-finite (a NumPy RuntimeWarning would reach
        R users as raw text on stderr, once per session, with an engine
        source path, and could not be caught).
        """
        try:
            if isinstance(names, str):
                names = [names]
            state = _ignore_float_errors()
            try:
                with optimizer._lock:
                    if not values:
                        trainer = self._by_optimizer.get(optimizer)
                        if (trainer is None or trainer.last is None
                                or trainer.step_number != last_step):
                            return ("stale",)
                        values = trainer.last
                        if trainer.last_non_finite:
                            return ("params", trainer.last_non_finite[0] + 1)
                        checked = ()
                    else:
                        values = checked = list(values)
                    grads = list(grads)
                    # In R's order: each parameter, then its gradient.
                    for index, grad in enumerate(grads):
                        if checked and non_finite(checked[index]):
                            return ("params", index + 1)
                        if check_grads and non_finite(grad):
                            return ("grads", index + 1)
                    outs = list(outs)
                    # Each result vector must be R's memory (reticulate's
                    # zero-copy view); a copy would lose the results.
                    for out in outs:
                        if out is not None and out.flags.owndata:
                            raise RuntimeError("reticulate passed a copy of a result vector, "
                                               "not R's memory; the results would be lost "
                                               "(the optimizer was not changed).")
                    trainer = self._step(optimizer, grads, values, dtype, names,
                                         "optimizer_apply()")
                    bad = trainer.write_for_r(outs[:-1], outs[-1], step)
                    if bad:
                        return ("results", [i + 1 for i in bad])
                    return None
            finally:
                _restore_float_errors(state)
        except DoesNotFitError as error:
            # R writes the message, naming the element and position as it
            # does for NA (`params$w contains 1e+39 at [1], ...`).
            return ("overflow", "params" if error.argument == "values" else "grads",
                    error.index[0] + 1, error.r_position, error.count, error.largest)
        except Exception as error:  # noqa: BLE001 - every error is handed to R as a value
            return error

    def finalized(self, optimizer) -> List[np.ndarray]:
        """See `finalized_values`."""
        trainer = self._by_optimizer.get(optimizer)
        if trainer is None:
            raise ValueError("This optimizer has not been used with `apply_to_values` yet.")
        inner = getattr(optimizer, "inner_optimizer", optimizer)
        with optimizer._lock:
            if not inner.use_ema:
                return [np.array(v.value, dtype=np.float64) for v in trainer.variables]
            return [np.array(inner._slot_view("average", i), dtype=np.float64)
                    for i in range(len(trainer.variables))]


TRAINERS = Trainers()


def apply_to_values(optimizer, grads, values, dtype="float64", names=None, copy=True):
    """One step of `optimizer` on `values` (a list of arrays or numbers).

    Returns the updated values as a list of float64 arrays of the same shapes.
    `names` names the Variables (they are checked when a checkpoint is
    resumed); by default they are "param_1", "param_2", ..., the names R's
    `optimizer_apply()` gives unnamed parameters, so that a checkpoint of an
    unnamed run resumes in either language.
    With `copy=False` float64 results are read-only views of the optimizer's
    storage, valid until its next step: for callers that convert them at once,
    which saves a copy of every parameter.
    The first call builds the optimizer on new Variables of `dtype`; later calls
    must pass values of the same count and shapes, in the same order, and
    the same `names` when they give any (a renamed or reordered list is a
    ValueError: the state of each position belongs to its name).
    With `dtype` float32 or float16, a finite value or gradient too large
    for it is a ValueError naming it (`values[0][2]`), raised before
    anything changes, where Keras would round it to inf; under a
    LossScaleOptimizer such a gradient skips the step instead (the overflow
    loss scaling is there to catch).
    """
    return TRAINERS.apply(optimizer, grads, values, dtype, names, copy)


def finalized_values(optimizer):
    """The values `apply_to_values` trains, finalized: with `use_ema`, their
    moving averages (as `finalize_variable_values` would set them), otherwise
    the current values. Float64 copies; the optimizer is left unchanged."""
    return TRAINERS.finalized(optimizer)


def default_names(count: int) -> List[str]:
    """The names of unnamed parameters: "param_1", ..., "param_<count>", in
    both languages (R counts from 1). Python's were once "param_0", ...;
    checkpoints holding those still resume (see checkpoint._same_names)."""
    return [f"param_{i}" for i in range(1, count + 1)]


# What R's `init_engine()` fetches: the bound method of the trainers R uses.
apply_for_r = TRAINERS.apply_for_r


def _float64_view(value):
    """`value` as float64 without copying when it already is: a read-only view
    of the variable's storage, which the caller (reticulate) copies into R."""
    if value.dtype != np.float64:
        return value.astype(np.float64)
    view = value.view()
    view.flags.writeable = False
    return view
