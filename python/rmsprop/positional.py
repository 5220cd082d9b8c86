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

import threading
import weakref
from typing import List, Optional, Sequence

import numpy as np

from .checks import argument_error
from .variable import Variable


class ValueTrainer:
    """The Variables an optimizer trains for a caller that owns the values."""

    def __init__(self, optimizer, values, dtype, names, caller="`apply_to_values`"):
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
        self.dtype = np.dtype(dtype)

    def load(self, values, dtype):
        """Copy `values` into the Variables, after checking all of them (a
        rejected call changes nothing)."""
        variables = self.variables
        if len(values) != len(variables):
            raise ValueError(f"The optimizer was first used with {len(variables)} parameters; "
                             f"got {len(values)}. Use a new optimizer for a new model.")
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

    def apply(self, optimizer, grads: Sequence, values: Sequence, dtype="float64",
              names: Optional[Sequence[str]] = None, copy: bool = True,
              caller: str = "`apply_to_values`") -> List[np.ndarray]:
        """See `apply_to_values`; `caller` names the function in messages."""
        values = list(values)
        grads = list(grads)
        if len(grads) != len(values):
            raise ValueError(f"Got {len(grads)} gradients for {len(values)} parameters; "
                             "they must have the same structure.")
        trainer = self._by_optimizer.get(optimizer)
        first = trainer is None
        if first:
            trainer = ValueTrainer(optimizer, values, dtype, names, caller)
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
                    optimizer.build(trainer.variables, compute_dtype=dtype)
                    self._by_optimizer[optimizer] = trainer
            else:
                trainer.load(values, dtype)
            optimizer.apply(grads, trainer.variables)
            if copy:
                return [np.array(v.value, dtype=np.float64) for v in trainer.variables]
            return [_float64_view(v.value) for v in trainer.variables]

    def apply_for_r(self, optimizer, grads, values, dtype, names, single):
        """`apply` the way R's `optimizer_apply()` calls it, at every step.

        Everything that costs R time per call is avoided: the arguments are
        positional, `names` may be one string (reticulate's conversion of a
        character vector of length 1), results are views (R copies them at
        once), a `single` parameter comes back as a bare array rather than a
        list of one (R can then set its attributes without copying the
        numbers again), and an error is returned instead of raised: R checks
        the class of the result, which is much cheaper than wrapping every
        call in an R `tryCatch()`.

        NumPy's floating-point warnings are off: R checks the results and
        warns in R, naming the parameter that became non-finite (a NumPy
        RuntimeWarning would reach R users as raw text on stderr, once per
        session, with an engine source path, and could not be caught).
        """
        try:
            if isinstance(names, str):
                names = [names]
            with np.errstate(all="ignore"):
                result = self.apply(optimizer, grads, values, dtype, names, copy=False,
                                    caller="optimizer_apply()")
        except Exception as error:  # noqa: BLE001 - every error is handed to R as a value
            return error
        return result[0] if single else result

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
    storage, valid until its next step: for callers that convert them at once
    (R's optimizer_apply), which saves a copy of every parameter.
    The first call builds the optimizer on new Variables of `dtype`; later calls
    must pass values of the same count and shapes, in the same order.
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
