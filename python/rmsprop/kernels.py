"""The update math, in one place, written for speed.

Every function works in place on flat, C-contiguous arrays of one dtype, with
scalars already cast to that dtype, so that NumPy 1.x and 2.x give the same
results (their promotion rules differ only when Python scalars are involved).
Long arrays are processed in chunks that stay in cache, with two reusable
scratch buffers, so a step never allocates temporaries the size of the
parameters. The order of operations is Keras': each NumPy operation here rounds
exactly where the corresponding Keras operation rounds.
"""

import numpy as np

# Elements per chunk: 32768 float32 values are 128 KiB per stream, so the
# five to nine streams of one chunk stay within a typical L2 cache.
CHUNK = 32768


class Scratch:
    """Chunk-sized buffers per dtype, allocated once and reused: two work
    buffers for the math, and two into which gradients and parameters are
    gathered."""

    def __init__(self):
        self._buffers = {}
        self._gather = {}

    def get(self, dtype):
        buffers = self._buffers.get(dtype)
        if buffers is None:
            buffers = (np.empty(CHUNK, dtype), np.empty(CHUNK, dtype))
            self._buffers[dtype] = buffers
        return buffers

    def gather(self, dtype):
        buffers = self._gather.get(dtype)
        if buffers is None:
            buffers = self._gather[dtype] = (np.empty(CHUNK, dtype), np.empty(CHUNK, dtype))
        return buffers


def _chunks(size):
    for start in range(0, size, CHUNK):
        yield start, min(start + CHUNK, size)


def chunk_pieces(param, grad, start, stop):
    """(start, stop, param[start:stop], grad[start:stop]) for the chunks of [start, stop)."""
    for first in range(start, stop, CHUNK):
        last = min(first + CHUNK, stop)
        yield first, last, param[first:last], grad[first:last]


def rmsprop_update(pieces, velocity, average_grad, momentum_slot,
                   lr, rho, one_minus_rho, epsilon, momentum, scratch):
    """One RMSprop step on flat arrays, piece by piece.

    `pieces` yields (start, stop, p, g): the flat parameters (updated in place)
    and gradients of elements [start, stop) of the flat slots, at most CHUNK
    elements (`chunk_pieces` of flat arrays, or a group's members gathered
    chunk by chunk).

    velocity = rho * velocity + (1 - rho) * g^2
    centered: average_grad = rho * average_grad + (1 - rho) * g
              denominator = velocity - average_grad^2 + epsilon
    else:     denominator = velocity + epsilon
    increment = (lr * g) / sqrt(denominator)
    momentum_slot = momentum * momentum_slot + increment; param -= momentum_slot
    (or param -= increment without momentum).

    `average_grad` / `momentum_slot` are None when not centered / momentum == 0.
    The scalars have the arrays' dtype. Pass them as 0-d arrays: the results
    are the same as with NumPy scalars, but each ufunc call takes a 0-d array
    without converting it first (about 0.4 us less per call, ~6 calls per
    chunk).
    """
    work, increment_buffer = scratch
    for start, stop, p, g in pieces:
        n = stop - start
        v = velocity[start:stop]
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


def decay_weights(param, weight_decay, lr, scratch):
    """param = param - param * weight_decay * lr (Keras' decoupled weight decay)."""
    work = scratch[0]
    for start, stop in _chunks(param.size):
        p = param[start:stop]
        t = work[: stop - start]
        np.multiply(p, weight_decay, out=t)
        np.multiply(t, lr, out=t)
        np.subtract(p, t, out=p)


def moving_average(average, param, decay, one_minus_decay, scratch):
    """average = decay * average + (1 - decay) * param."""
    work = scratch[0]
    for start, stop in _chunks(param.size):
        a = average[start:stop]
        t = work[: stop - start]
        np.multiply(a, decay, out=a)
        np.multiply(param[start:stop], one_minus_decay, out=t)
        np.add(a, t, out=a)


# NumPy reduces a contiguous array in blocks of this many elements (its ufunc
# buffer size), summing pairwise inside a block and in order across blocks.
_REDUCE_BLOCK = 8192


def sum_of_squares(values, scratch):
    """sum(values^2) exactly as `np.sum(np.square(values))` rounds it (which is
    how Keras computes norms), in the dtype of `scratch`, without a temporary
    the size of `values`."""
    flat = values.reshape(-1)
    work = scratch[0]
    total = None
    for start in range(0, max(flat.size, 1), _REDUCE_BLOCK):
        block = flat[start:start + _REDUCE_BLOCK]
        squares = work[: block.size]
        np.copyto(squares, block, casting="unsafe")
        np.multiply(squares, squares, out=squares)
        part = np.add.reduce(squares)
        total = part if total is None else total + part
    return total


def clip_by_norm(grad, limit, scratch):
    """grad = grad * limit / max(norm, limit), Keras' per-tensor clipping,
    computed in the dtype of `scratch` and `limit` (written back into `grad`).

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
    work = scratch[0]
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
