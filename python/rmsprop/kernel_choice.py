"""Which update kernel runs, and on how many threads.

Two kernels compute the RMSprop rule with the same bits:

* "numpy": `kernels.py`, one NumPy pass per Keras operation. The reference,
  and the fallback for float16 and for anything the compiled kernel declines.
* "compiled": `_fused.c`, every operation of the rule for an element in one
  pass, over lists of arrays, on up to `num_threads()` threads. Built by
  `pip install` when a C compiler is there; optional (a failed build leaves
  the NumPy kernel, and importing rmsprop never fails because of it).

By default the compiled kernel runs when it was built. `RMSPROP_KERNEL=numpy`
or `=compiled` in the environment, or `set_kernel()`, force one. An optimizer
reads the setting once at the start of each step (`compiled_active()`, in
`BaseOptimizer.apply`) and runs the whole step on that kernel: a change takes
effect at the next step. (Reading the environment costs a small step about a
microsecond each time.)

Threads: `set_num_threads()`, else `RMSPROP_NUM_THREADS`, else the number of
cores this process may use, at most 8. An update smaller than
`_fused.MIN_PER_THREAD` elements per thread uses fewer threads (one for small
updates). Threads are started for one update and joined before it returns,
so nothing is left running that a fork()ed child would inherit half-alive.
"""

import importlib.util
import numbers
import os
from typing import NamedTuple, Optional

import numpy as np

from . import kernels

try:
    from . import _fused  # type: ignore[attr-defined]  # (C, no stub)
except ImportError as error:       # not built: no compiler at install, or removed
    _fused = None
    _IMPORT_ERROR: Optional[str] = (
        "not built: the installed package has no rmsprop._fused (no C compiler or "
        "Python headers when it was installed?)"
        if importlib.util.find_spec(f"{__package__}._fused") is None
        else f"{type(error).__name__}: {error}")
else:
    _IMPORT_ERROR = None

KERNELS = ("numpy", "compiled")
MAX_DEFAULT_THREADS = 8

_kernel_setting: Optional[str] = None       # set_kernel(); None: environment or default
_threads_setting: Optional[int] = None      # set_num_threads(); None: environment or default


def compiled_available() -> bool:
    return _fused is not None


def _checked_kernel(name, what):
    if not isinstance(name, str) or name not in KERNELS:
        raise ValueError(f"{what} must be one of {', '.join(repr(k) for k in KERNELS)}; "
                         f"got {name!r}.")
    if name == "compiled" and _fused is None:
        raise ValueError(f"{what}='compiled', but the compiled kernel is not available "
                         f"({_IMPORT_ERROR}); reinstall rmsprop with a C compiler present, "
                         "or use 'numpy'.")
    return name


def set_kernel(name: Optional[str]) -> None:
    """Force the update kernel: "numpy" or "compiled"; None goes back to the
    default (`RMSPROP_KERNEL`, else the compiled kernel when built)."""
    global _kernel_setting
    _kernel_setting = None if name is None else _checked_kernel(name, "`kernel`")


def compiled_active() -> bool:
    """True when updates run the compiled kernel now."""
    return _fused is not None and active_kernel() == "compiled"


def active_kernel() -> str:
    """The kernel updates use now ("numpy" or "compiled")."""
    if _kernel_setting is not None:
        return _kernel_setting
    wanted = os.environ.get("RMSPROP_KERNEL", "")
    if wanted:
        return _checked_kernel(wanted, "RMSPROP_KERNEL")
    return "compiled" if _fused is not None else "numpy"


def _checked_threads(value, what):
    """A thread count: a whole number >= 1 (an int or a whole float such as
    R's 4; written as text when `what` is the environment variable)."""
    number = None
    if isinstance(value, str) and what == "RMSPROP_NUM_THREADS":
        try:
            number = int(value.strip())
        except ValueError:
            pass
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        if float(value).is_integer():
            number = int(value)
    if number is None or number < 1:
        raise ValueError(f"{what} must be a whole number of at least 1; got {value!r}.")
    return number


def default_num_threads() -> int:
    """The number of cores this process may use, at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_DEFAULT_THREADS))


def set_num_threads(count: Optional[int]) -> None:
    """Threads the compiled kernel may use for one large update; None goes back
    to the default (`RMSPROP_NUM_THREADS`, else the cores, at most 8). The
    results are the same for any count."""
    global _threads_setting
    _threads_setting = None if count is None else _checked_threads(count, "`count`")


def num_threads() -> int:
    """Threads the compiled kernel may use for one large update now."""
    if _threads_setting is not None:
        return _threads_setting
    wanted = os.environ.get("RMSPROP_NUM_THREADS", "")
    if wanted:
        return _checked_threads(wanted, "RMSPROP_NUM_THREADS")
    return default_num_threads()


def kernel_info() -> dict:
    """Which kernel runs, which are available, why, and the thread settings."""
    return {
        "kernel": active_kernel(),
        "available": ["numpy", "compiled"] if _fused is not None else ["numpy"],
        "chosen_by": ("set_kernel()" if _kernel_setting is not None else
                      "RMSPROP_KERNEL" if os.environ.get("RMSPROP_KERNEL") else "default"),
        "compiled_error": _IMPORT_ERROR,
        "compiled_path": None if _fused is None else _fused.__file__,
        "threads": num_threads(),
        "default_threads": default_num_threads(),
        "min_elements_per_thread": None if _fused is None else _fused.MIN_PER_THREAD,
        "float16": "numpy",
    }


class FusedSteps(NamedTuple):
    """The steps around the rule that the compiled kernel does in the same
    pass, for one group of one step (each None when not fused): the field
    names are `_fused.rmsprop`'s keyword arguments. Values are in the dtype of
    the update, as the unfused steps round them.

    clip: clipvalue (steps.clip_by_value, Keras' `_clip_gradients`);
    weight_decay: decay with the update's learning rate (kernels.decay_weights,
    Keras' `_apply_weight_decay`); ema_average, ema_decay,
    ema_one_minus_decay: the moving average of the updated parameters
    (kernels.moving_average, Keras' `_update_model_variables_moving_average`).
    """

    clip: Optional[np.generic] = None
    weight_decay: Optional[np.generic] = None
    ema_average: Optional[np.ndarray] = None
    ema_decay: np.generic = np.float64(0.0)
    ema_one_minus_decay: np.generic = np.float64(1.0)


_NOTHING_FUSED: dict = {}       # the kernel's keyword arguments when no step is fused


def fused_rmsprop(params, grads, velocity, average_grad, momentum_slot,
                  lr, rho, one_minus_rho, epsilon, momentum,
                  fused: Optional[FusedSteps] = None) -> bool:
    """Run the rule with the compiled kernel when it is built and takes these
    arrays; False when the caller must run the NumPy kernel. Called for steps
    that run the compiled kernel (`compiled_active()`, read once per step).

    `params` / `grads`: one array or a list of arrays each (read as one
    sequence of elements); the slots: flat arrays of the same length.
    float32 or float64 throughout, C-contiguous, native byte order; anything
    else (float16, a gradient of another dtype) is declined before any value
    changes, and the NumPy kernel then does the step. `fused`: steps around
    the rule to do in the same pass (declined with the rest: the caller then
    runs them unfused).
    """
    if _fused is None:
        return False
    # The kernel splits an update only from two threads' worth of elements
    # on; below that, skip reading the setting (the environment and the
    # affinity mask cost a small step a few microseconds).
    threads = num_threads() if velocity.size >= 2 * _fused.MIN_PER_THREAD else 1
    try:
        _fused.rmsprop(params, grads, velocity, average_grad, momentum_slot,
                       lr, rho, one_minus_rho, epsilon, momentum, threads,
                       **(_NOTHING_FUSED if fused is None else fused._asdict()))
    except TypeError:
        # An array of another dtype or layout: found while checking the
        # arrays, before anything was written.
        return False
    return True


def survey(grads, shape_table, param_memory) -> bool:
    """True when the compiled survey (`_fused.survey`, one C pass over the
    list `grads`) finds every gradient a numpy.ndarray with the shape of
    `shape_table` (ndim then dimensions per position, as native ints), an
    integer or float dtype in native byte order, sharing no memory with any
    array of `param_memory`. False when it finds otherwise, or when the
    compiled kernel is not built. Called only for steps that run the compiled
    kernel (`compiled_active()`, read once per step): on the NumPy kernel the
    Python checks run, so that `make test` exercises them."""
    if _fused is None:
        return False
    return _fused.survey(grads, np.ndarray, shape_table, param_memory)


def rmsprop_rule(param, grad, velocity, average_grad, momentum_slot,
                 lr, rho, one_minus_rho, epsilon, momentum, scratch) -> None:
    """`kernels.rmsprop_rule` (same signature, same bits), by the compiled
    kernel when it takes the arrays, else by the NumPy one: the rule of a
    step that runs the compiled kernel.

    `rmsprop_rule.lists` (= `fused_rmsprop`) runs the rule on lists of
    arrays when it can, so that many small tensors need no gathering.
    """
    if not fused_rmsprop(param, grad, velocity, average_grad, momentum_slot,
                         lr, rho, one_minus_rho, epsilon, momentum):
        kernels.rmsprop_rule(param, grad, velocity, average_grad, momentum_slot,
                             lr, rho, one_minus_rho, epsilon, momentum, scratch)


rmsprop_rule.lists = fused_rmsprop  # type: ignore[attr-defined]
