"""The update math, in one place, written for speed.

Every function works in place on flat, C-contiguous arrays of one dtype, with
scalars already cast to that dtype, so that NumPy 1.x and 2.x give the same
results (their promotion rules differ only when Python scalars are involved).
Long arrays are processed in chunks that stay in cache, with reusable
chunk-sized scratch buffers (`ChunkScratch`), so a step never allocates
temporaries the size of the parameters. The order of operations is Keras':
each NumPy operation here rounds exactly where the corresponding Keras
operation rounds.

Nothing here knows about optimizers, variables or storage: the functions take
arrays and scalars and nothing else.
"""

from typing import NamedTuple, Optional

import numpy as np

# Elements per chunk: 32768 float32 values are 128 KiB per stream, so the
# five to nine streams of one chunk stay within a typical L2 cache.
CHUNK = 32768


class ChunkScratch(NamedTuple):
    """Two reusable work buffers of CHUNK elements of one dtype, for the
    NumPy kernels' intermediate results."""

    work: np.ndarray
    increment: np.ndarray

    @classmethod
    def empty(cls, dtype) -> "ChunkScratch":
        return cls(np.empty(CHUNK, dtype), np.empty(CHUNK, dtype))


def _chunks(size):
    for start in range(0, size, CHUNK):
        yield start, min(start + CHUNK, size)


def rmsprop_rule(param: np.ndarray, grad: np.ndarray, velocity: np.ndarray,
                 average_grad: Optional[np.ndarray], momentum_slot: Optional[np.ndarray],
                 lr: np.ndarray, rho: np.ndarray, one_minus_rho: np.ndarray,
                 epsilon: np.ndarray, momentum: np.ndarray, scratch: ChunkScratch) -> None:
    """One RMSprop step on flat arrays (Keras' `RMSprop.update_step`).

    `param` (updated in place), `grad`, `velocity` and the optional
    `average_grad` / `momentum_slot` (None when not centered / momentum is 0)
    are 1-d, C-contiguous arrays of one dtype and one length; the slots are
    updated in place. The scalars are 0-d arrays of that dtype (a 0-d array
    gives the same results as a NumPy scalar, and each ufunc call takes it
    without converting it first). `scratch` is only used by this NumPy
    version; a compiled kernel with this signature may ignore it.

    velocity = rho * velocity + (1 - rho) * g^2
    centered: average_grad = rho * average_grad + (1 - rho) * g
              denominator = velocity - average_grad^2 + epsilon
    else:     denominator = velocity + epsilon
    increment = (lr * g) / sqrt(denominator)
    momentum_slot = momentum * momentum_slot + increment; param -= momentum_slot
    (or param -= increment without momentum).

    Every read of `grad` in a chunk comes before the chunk's write to `param`,
    so `grad` may be `param` itself.
    """
    work, increment_buffer = scratch
    size = param.shape[0]
    for start in range(0, size, CHUNK):
        stop = start + CHUNK
        if size <= CHUNK:
            p, g, v = param, grad, velocity
            n = size
        else:
            p, g, v = param[start:stop], grad[start:stop], velocity[start:stop]
            n = p.shape[0]
        t = work[:n]
        inc = increment_buffer[:n]
        np.multiply(g, g, out=t)
        np.multiply(t, one_minus_rho, out=t)
        np.multiply(v, rho, out=v)
        np.add(v, t, out=v)
        if average_grad is not None:
            a = average_grad[start:stop]
            np.multiply(a, rho, out=a)
            np.multiply(g, one_minus_rho, out=t)
            np.add(a, t, out=a)
            np.multiply(a, a, out=t)
            np.subtract(v, t, out=t)
            np.add(t, epsilon, out=t)
        else:
            np.add(v, epsilon, out=t)
        np.sqrt(t, out=t)
        np.multiply(g, lr, out=inc)
        np.divide(inc, t, out=inc)
        if momentum_slot is not None:
            m = momentum_slot[start:stop]
            np.multiply(m, momentum, out=m)
            np.add(m, inc, out=m)
            np.subtract(p, m, out=p)
        else:
            np.subtract(p, inc, out=p)


def decay_weights(param, weight_decay, lr, scratch: ChunkScratch):
    """param = param - param * weight_decay * lr (Keras' decoupled weight decay,
    `BaseOptimizer._apply_weight_decay`)."""
    work = scratch.work
    for start, stop in _chunks(param.size):
        p = param[start:stop]
        t = work[: stop - start]
        np.multiply(p, weight_decay, out=t)
        np.multiply(t, lr, out=t)
        np.subtract(p, t, out=p)


def moving_average(average, param, decay, one_minus_decay, scratch: ChunkScratch):
    """average = decay * average + (1 - decay) * param (Keras'
    `_update_model_variables_moving_average`)."""
    work = scratch.work
    for start, stop in _chunks(param.size):
        a = average[start:stop]
        t = work[: stop - start]
        np.multiply(a, decay, out=a)
        np.multiply(param[start:stop], one_minus_decay, out=t)
        np.add(a, t, out=a)


# NumPy reduces a contiguous array in blocks of this many elements (its ufunc
# buffer size), summing pairwise inside a block and in order across blocks.
_REDUCE_BLOCK = 8192


def sum_of_squares(values, scratch: ChunkScratch):
    """sum(values^2) exactly as `np.sum(np.square(values))` rounds it (which is
    how Keras computes norms), in the dtype of `scratch`, without a temporary
    the size of `values`."""
    flat = values.reshape(-1)
    work = scratch.work
    total = None
    for start in range(0, max(flat.size, 1), _REDUCE_BLOCK):
        block = flat[start:start + _REDUCE_BLOCK]
        squares = work[: block.size]
        np.copyto(squares, block, casting="unsafe")
        np.multiply(squares, squares, out=squares)
        part = np.add.reduce(squares)
        total = part if total is None else total + part
    return total


def clip_by_norm(grad, limit, scratch: ChunkScratch):
    """grad = grad * limit / max(norm, limit), Keras' per-tensor clipping
    (`clip_by_norm`), computed in the dtype of `scratch` and `limit` (written
    back into `grad`).

    Keras takes norm = sqrt(sum) when sum > 0, else the sum itself (0, or NaN
    which then poisons the tensor); a zero tensor stays zero.
    """
    squares = sum_of_squares(grad, scratch)
    norm = np.sqrt(squares) if squares > 0 else squares
    denominator = np.maximum(norm, limit)
    if grad.dtype == limit.dtype:
        np.multiply(grad, limit, out=grad)
        np.divide(grad, denominator, out=grad)
        return
    work = scratch.work
    for start, stop in _chunks(grad.size):
        g = grad[start:stop]
        t = work[: stop - start]
        np.copyto(t, g, casting="unsafe")
        np.multiply(t, limit, out=t)
        np.divide(t, denominator, out=t)
        np.copyto(g, t, casting="unsafe")


def all_finite(values, scratch_flags):
    """True when no element of `values` is inf or NaN (checked chunk by chunk
    into `scratch_flags`, a reusable bool buffer of CHUNK elements)."""
    flat = values.reshape(-1)
    for start, stop in _chunks(flat.size):
        flags = scratch_flags[: stop - start]
        np.isfinite(flat[start:stop], out=flags)
        if not flags.all():
            return False
    return True
