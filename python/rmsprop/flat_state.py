"""Flat, per-dtype storage for optimizer slots (and, where possible, parameters).

The variables an optimizer is built on are grouped by dtype. Each group keeps
one contiguous buffer per slot kind (velocity, momentum, ...), and each
per-variable slot is a view into it, so the update math runs once over a whole
group instead of once per tensor. When every member of a group is an
`rmsprop.Variable`, the members' values are moved into one buffer too
(`Variable._rehome`); plain NumPy arrays stay where they are. Gradients, and
plain-array parameters, are brought next to each other chunk by chunk as the
update reaches them (`PackedGradients`), or, when other steps (clipping,
weight decay, EMA, ...) need them whole, gathered into group-sized work
buffers around the step.
"""

import numpy as np

from .kernels import CHUNK, chunk_pieces
from .variable import Variable


# Slots used while preparing gradients, which happens in the storage dtype.
PREPROCESSING_SLOTS = ("gradient_accumulator",)


class DtypeGroup:
    """The variables of one dtype: their layout and their flat buffers."""

    def __init__(self, dtype, indices, shapes, compute_dtype=None):
        self.dtype = np.dtype(dtype)            # how values are stored
        # How the update math runs. Keras (numpy backend, float32 policy)
        # reads a float64 variable and its slots as float32 inside the update,
        # weight decay and EMA, and stores the float32 results back; its
        # gradient preprocessing (unscaling, accumulation, clipping) runs in the
        # variable's own dtype. Narrower floats are computed as they are.
        compute = self.dtype if compute_dtype is None else np.dtype(compute_dtype)
        self.compute = compute if self.dtype.itemsize > compute.itemsize else self.dtype
        # Per-tensor clipnorm runs in the policy dtype itself, even for half
        # precision variables (again what the reference trajectories show).
        self.policy = compute
        self.indices = list(indices)            # positions in the optimizer's variable list
        self.shapes = [tuple(s) for s in shapes]
        sizes = [int(np.prod(s, dtype=np.int64)) for s in self.shapes]
        self.offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).tolist()
        self.total = self.offsets[-1]
        self.slots = {}                        # slot kind -> flat buffer (storage dtype)
        self.param_buffer = None               # set when the members' storage lives here
        self._grad_buffer = None
        self._gather_buffer = None
        self._working_slots = {}               # compute-dtype copies, when the dtypes differ
        self._compute_grad_buffer = None
        self._pack_plan = None
        self._pack_views = None

    @property
    def casts(self):
        """True when values are stored in another dtype than the math runs in."""
        return self.compute != self.dtype

    def segment(self, position):
        return self.offsets[position], self.offsets[position + 1]

    def add_slot(self, kind):
        self.slots[kind] = np.zeros(self.total, self.dtype)

    def slot_view(self, kind, position):
        start, stop = self.segment(position)
        return self.slots[kind][start:stop].reshape(self.shapes[position])

    def grad_buffer(self):
        """Flat gradients in the storage dtype, where preprocessing happens."""
        if self._grad_buffer is None:
            self._grad_buffer = np.empty(self.total, self.dtype)
        return self._grad_buffer

    def compute_grads(self, flat_grad):
        """`flat_grad` in the compute dtype (itself when no cast is needed)."""
        if not self.casts or flat_grad is None or isinstance(flat_grad, PackedGradients):
            return flat_grad
        if self._compute_grad_buffer is None:
            self._compute_grad_buffer = np.empty(self.total, self.compute)
        np.copyto(self._compute_grad_buffer, flat_grad, casting="unsafe")
        return self._compute_grad_buffer

    def packed_gradients(self, grads, buffer):
        """The members' gradients (`grads[i]`, all present), to be read piece by
        piece without first gathering them into a group-sized buffer; None when
        that cannot be done (see `PackedGradients`)."""
        if self.casts or len(self.indices) < 2 or not self.large_members_in_place(grads):
            return None
        return PackedGradients(self, grads, buffer)

    def large_members_in_place(self, arrays):
        """True when the arrays (by optimizer position) of the members of a
        chunk or more can be used in place: compute dtype, C-contiguous."""
        for _, _, members in self.pack_plan():
            if type(members) is int:
                array = arrays[members]
                if array.dtype != self.compute or not array.flags.c_contiguous:
                    return False
        return True

    def pack_plan(self):
        if self._pack_plan is None:
            self._pack_plan = self._plan_packs()
        return self._pack_plan

    def pack_views(self, buffer):
        """For each entry of the pack plan, views of chunk buffer `buffer`
        shaped like the pack's members (cached for the last buffer)."""
        cached = self._pack_views
        if cached is None or cached[0] is not buffer:
            views = []
            position_of = {index: position for position, index in enumerate(self.indices)}
            for start, stop, members in self.pack_plan():
                positions = [] if type(members) is int or buffer is None else [
                    position_of[i] for i in _member_list(members)]
                views.append([buffer[self.offsets[q] - start:self.offsets[q + 1] - start]
                              .reshape(self.shapes[q]) for q in positions])
            cached = self._pack_views = (buffer, views)
        return cached[1]

    def _plan_packs(self):
        """[(start, stop, members)]: consecutive members smaller than a chunk,
        packed together up to a chunk (`members` selects their gradients: a
        slice, or a list of positions), and each member of a chunk or more
        alone (`members` is its position)."""
        plan = []
        pack = []
        pack_start = 0

        def close_pack():
            if pack:
                consecutive = pack == list(range(pack[0], pack[-1] + 1))
                members = slice(pack[0], pack[-1] + 1) if consecutive else list(pack)
                plan.append((pack_start, start, members))
                pack.clear()

        for position, index in enumerate(self.indices):
            start, stop = self.segment(position)
            if stop - start >= CHUNK:
                close_pack()
                plan.append((start, stop, index))
                pack_start = stop
                continue
            if stop - pack_start > CHUNK:
                close_pack()
                pack_start = start
            pack.append(index)
        start = self.total
        close_pack()
        return plan

    def gather_buffer(self):
        if self._gather_buffer is None:
            self._gather_buffer = np.empty(self.total, self.compute)
        return self._gather_buffer

    def load_working_slots(self):
        """The slots as compute-dtype arrays for one step (the storage itself when
        the dtypes agree, else fresh copies, as a Keras read of them would be)."""
        if not self.casts:
            return self.slots
        for kind, stored in self.slots.items():
            if kind in PREPROCESSING_SLOTS:
                self._working_slots[kind] = stored
                continue
            working = self._working_slots.get(kind)
            if working is None:
                working = self._working_slots[kind] = np.empty(self.total, self.compute)
            np.copyto(working, stored, casting="unsafe")
        return self._working_slots

    def store_working_slots(self):
        """Write a step's slot values back, rounded to the storage dtype."""
        if self.casts:
            for kind, stored in self.slots.items():
                if kind not in PREPROCESSING_SLOTS:
                    np.copyto(stored, self._working_slots[kind], casting="unsafe")

    def rehome(self, variables):
        """Move the members' storage into one buffer, when all are Variables."""
        if self.casts or not all(isinstance(v, Variable) for v in variables):
            return
        self.param_buffer = np.empty(self.total, self.dtype)
        for position, variable in enumerate(variables):
            start, stop = self.segment(position)
            variable._rehome(self.param_buffer[start:stop].reshape(self.shapes[position]))

    def owns_storage_of(self, variables):
        """True while every member still stores its value in `param_buffer`."""
        buffer = self.param_buffer
        return buffer is not None and all(
            isinstance(v, Variable) and v._value.base is buffer for v in variables
        )

    def member_views(self, flat):
        """Per-member views (shaped like the members) of the group-sized `flat`,
        cached for the last buffer asked about (the gather buffer, every step)."""
        cached = getattr(self, "_member_views", None)
        if cached is None or cached[0] is not flat:
            views = [flat[start:stop].reshape(shape) for start, stop, shape
                     in zip(self.offsets, self.offsets[1:], self.shapes)]
            cached = self._member_views = (flat, views)
        return cached[1]

    def runs(self, present):
        """Contiguous [start, stop) ranges covering the members flagged in `present`."""
        if all(present):
            return [[0, self.total]]      # every member: one run (the usual step)
        runs = []
        for position, here in enumerate(present):
            if not here:
                continue
            start, stop = self.segment(position)
            if runs and runs[-1][1] == start:
                runs[-1][1] = stop
            else:
                runs.append([start, stop])
        return runs


class PackedGradients:
    """A group's gradients left where the caller keeps them, read chunk by chunk
    (and, with `with_params`, its parameters too, when they are plain arrays).

    Runs of small members are copied together into one chunk-sized buffer just
    before the update reads them (parameters are copied back just after it
    wrote them), so every copy is still in cache when it is used: gathering
    every member into a group-sized buffer first, and scattering back after,
    costs full extra trips through memory. A member of a chunk or more is read
    (and written) in place. Used when only the update rule touches the
    gradients (and, for parameters, when nothing else in the step does).
    """

    def __init__(self, group, grads, grad_buffer, params=None, param_buffer=None):
        self._group = group
        self._grads = grads
        self._grad_buffer = grad_buffer
        self._params = params
        self._param_buffer = param_buffer

    def with_params(self, params, buffer):
        """These gradients, plus the members' parameter arrays `params` (by
        position in the optimizer, like the gradients) updated through chunk
        buffer `buffer`; None when a large member cannot be updated in place."""
        group = self._group
        if not group.large_members_in_place(params):
            return None
        return PackedGradients(group, self._grads, self._grad_buffer, params, buffer)

    def pieces(self, flat_param):
        """(start, stop, param, grad) pieces covering the group; `param` is a
        slice of `flat_param` unless the parameters were given as arrays."""
        grads, params = self._grads, self._params
        group = self._group
        packs = zip(group.pack_plan(), group.pack_views(self._param_buffer))
        for (start, stop, members), views in packs:
            if type(members) is int:
                g = grads[members].reshape(-1)
                p = flat_param[start:stop] if params is None else params[members].reshape(-1)
                for first in range(0, stop - start, CHUNK):
                    last = min(first + CHUNK, stop - start)
                    yield start + first, start + last, p[first:last], g[first:last]
                continue
            g = self._grad_buffer[: stop - start]
            # axis=None flattens each member in C order, as reshape(-1) would.
            np.concatenate(_select(grads, members), axis=None, out=g, casting="unsafe")
            if params is None:
                yield start, stop, flat_param[start:stop], g
                continue
            selected = _select(params, members)
            p = self._param_buffer[: stop - start]
            np.concatenate(selected, axis=None, out=p)
            yield start, stop, p, g
            # Resumed once the update has written `p`: back into the members.
            for array, view in zip(selected, views):
                array[...] = view


def _member_list(members):
    return range(members.start, members.stop) if type(members) is slice else members


def _select(values, members):
    return values[members] if type(members) is slice else [values[i] for i in members]


def update_pieces(flat_param, flat_grad, start, stop):
    """(start, stop, param, grad) pieces of [start, stop) for the update
    kernels, from flat arrays or from a group's PackedGradients (which always
    cover the whole group)."""
    if isinstance(flat_grad, PackedGradients):
        return flat_grad.pieces(flat_param)
    return chunk_pieces(flat_param, flat_grad, start, stop)
