"""Where an optimizer keeps its numbers: flat, per-dtype storage.

`FlatStorage` is the one interface the optimizer uses for storage. The
variables it is built on are grouped by dtype (`DtypeGroup`). Each group
keeps one contiguous buffer per slot kind (velocity, momentum, ...), and each
per-variable slot is a view into it, so the update math runs once over a whole
group instead of once per tensor. When every member of a group is an
`rmsprop.Variable`, the members' values are moved into one buffer too
(`Variable._rehome`); plain NumPy arrays stay where they are.

For one step, `begin_step` lays the gradients, parameters and slots of each
group out as flat arrays (`GroupStep`), `apply_rule` runs an update rule over
them, and `finish_step` stores what the step computed. Gradients, and
plain-array parameters, are brought next to each other chunk by chunk as the
rule reaches them (`PackedGradients`) when only the rule touches them, or,
when other steps (clipping, weight decay, EMA, ...) need them whole, gathered
into group-sized work buffers around the step.
"""

import functools
import itertools
import operator
from typing import Dict, List, NamedTuple

import numpy as np

from . import kernel_choice
from .kernels import CHUNK, ChunkScratch
from .variable import Variable


_BASE = operator.attrgetter("base")
_NOT_NONE = functools.partial(operator.is_not, None)
_WRITEABLE = operator.attrgetter("flags.writeable")

# Slots used while preparing gradients, which happens in the storage dtype.
PREPROCESSING_SLOTS = ("gradient_accumulator",)


class SurveyedGradients(list):
    """Gradients by position that `FlatStorage.surveyed` found to be NumPy
    arrays of their variables' shapes and numeric dtypes, none sharing memory
    with a parameter: what the per-gradient checks and `unaliased` would
    pass unchanged."""


class GatherBuffers(NamedTuple):
    """Chunk-sized buffers of one dtype into which small members' gradients
    and parameters are copied together right before the rule reads them."""

    grads: np.ndarray
    params: np.ndarray


class Scratch:
    """An optimizer's reusable chunk-sized buffers, by dtype, allocated once."""

    def __init__(self) -> None:
        self._math: Dict[np.dtype, ChunkScratch] = {}
        self._gather: Dict[np.dtype, GatherBuffers] = {}

    def math(self, dtype) -> ChunkScratch:
        """Work buffers for the kernels' intermediate results."""
        buffers = self._math.get(dtype)
        if buffers is None:
            buffers = self._math[dtype] = ChunkScratch.empty(dtype)
        return buffers

    def gather(self, dtype) -> GatherBuffers:
        buffers = self._gather.get(dtype)
        if buffers is None:
            buffers = self._gather[dtype] = GatherBuffers(np.empty(CHUNK, dtype),
                                                          np.empty(CHUNK, dtype))
        return buffers


class DtypeGroup:
    """The variables of one dtype: their layout and their flat buffers."""

    def __init__(self, dtype, indices, shapes, compute_dtype=None,
                 on_storage_taken=None) -> None:
        self._on_storage_taken = on_storage_taken    # the storage's, told of a move
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
        # True when values are stored in another dtype than the math runs in.
        self.casts = self.compute != self.dtype
        self.indices = list(indices)            # positions in the optimizer's variable list
        self.shapes = [tuple(s) for s in shapes]
        sizes = [int(np.prod(s, dtype=np.int64)) for s in self.shapes]
        self.offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).tolist()
        self.total = self.offsets[-1]
        self.slots: Dict[str, np.ndarray] = {}  # slot kind -> flat buffer (storage dtype)
        self.param_buffer = None               # set while the members' storage lives here
        self._grad_buffer = None
        self._gather_buffer = None
        self._working_slots: Dict[str, np.ndarray] = {}  # compute-dtype copies
        self._compute_grad_buffer = None
        self._pack_plan = None
        self._large_members = None              # positions of members of a chunk or more
        # Views of a buffer shaped like the members, kept for the last buffer
        # asked about (the same one at every step), as (buffer, views).
        self._pack_views = (None, None)
        self._member_views = (None, None)

    def segment(self, position):
        return self.offsets[position], self.offsets[position + 1]

    def add_slot(self, kind):
        self.slots[kind] = np.zeros(self.total, self.dtype)

    def slot_view(self, kind, position):
        start, stop = self.segment(position)
        return self.slots[kind][start:stop].reshape(self.shapes[position])

    # -- work buffers, allocated on first use and kept ---------------------
    def grad_buffer(self):
        """Flat gradients in the storage dtype, where preprocessing happens."""
        if self._grad_buffer is None:
            self._grad_buffer = np.empty(self.total, self.dtype)
        return self._grad_buffer

    def gather_buffer(self):
        if self._gather_buffer is None:
            self._gather_buffer = np.empty(self.total, self.compute)
        return self._gather_buffer

    def compute_grad_buffer(self):
        if self._compute_grad_buffer is None:
            self._compute_grad_buffer = np.empty(self.total, self.compute)
        return self._compute_grad_buffer

    def load_working_slots(self):
        """The slots as compute-dtype arrays for one step (the storage itself when
        the dtypes agree, else copies, as a Keras read of them would be)."""
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

    # -- the members' storage ---------------------------------------------
    def rehome(self, variables):
        """Move the members' storage into one buffer, when all are Variables."""
        if self.casts or not all(isinstance(v, Variable) for v in variables):
            return
        self.param_buffer = np.empty(self.total, self.dtype)
        for position, variable in enumerate(variables):
            start, stop = self.segment(position)
            variable._rehome(self.param_buffer[start:stop].reshape(self.shapes[position]),
                             holder=self)

    def storage_taken(self):
        """Called by a member Variable whose storage another optimizer has moved
        into its own buffer: from now on the members are read and written
        where they are, like plain arrays."""
        self.param_buffer = None
        if self._on_storage_taken is not None:
            self._on_storage_taken()

    def member_views(self, flat):
        """Per-member views (shaped like the members) of the group-sized `flat`."""
        cached, views = self._member_views
        if cached is not flat:
            views = [flat[start:stop].reshape(shape) for start, stop, shape
                     in zip(self.offsets, self.offsets[1:], self.shapes)]
            self._member_views = (flat, views)
        return views

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

    # -- reading members chunk by chunk -----------------------------------
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
        if self._large_members is None:
            self._large_members = [members for _, _, members in self.pack_plan()
                                   if type(members) is int]
        for member in self._large_members:
            array = arrays[member]
            if array.dtype != self.compute or not array.flags.c_contiguous:
                return False
        return True

    def pack_plan(self):
        if self._pack_plan is None:
            self._pack_plan = self._plan_packs()
        return self._pack_plan

    def pack_views(self, buffer):
        """For each entry of the pack plan, views of chunk buffer `buffer`
        shaped like the pack's members."""
        cached, views = self._pack_views
        if views is None or cached is not buffer:
            views = []
            position_of = {index: position for position, index in enumerate(self.indices)}
            for start, stop, members in self.pack_plan():
                positions = [] if type(members) is int or buffer is None else [
                    position_of[i] for i in _member_list(members)]
                views.append([buffer[self.offsets[q] - start:self.offsets[q + 1] - start]
                              .reshape(self.shapes[q]) for q in positions])
            self._pack_views = (buffer, views)
        return views

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


class PackedGradients:
    """A group's gradients left where the caller keeps them, read chunk by chunk
    (and, with `with_params`, its parameters too, when they are plain arrays).

    Runs of small members are copied together into one chunk-sized buffer just
    before the rule reads them (parameters are copied back just after it
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

    def member_arrays(self, flat_param):
        """(parameters, gradients) as a rule reading lists of arrays takes
        them: the members' gradient arrays in the group's order, and the
        members' parameter arrays likewise (or `flat_param` when the
        parameters were not given as arrays)."""
        indices = self._group.indices
        if len(indices) == len(self._grads):
            # The group is every variable, in order (positions are unique and
            # ascending): the lists as given.
            grads = self._grads
            params = self._params
        else:
            grads = [self._grads[i] for i in indices]
            params = None if self._params is None else [self._params[i] for i in indices]
        return (flat_param if params is None else params), grads

    def apply(self, rule, flat_param, slots, scalars, scratch):
        """Run `rule(param, grad, *slots, *scalars, scratch)` over the group,
        one pack or large member at a time; `flat_param` is the group's flat
        parameter array unless the parameters were given as arrays."""
        grads, params = self._grads, self._params
        group = self._group
        packs = zip(group.pack_plan(), group.pack_views(self._param_buffer))
        for (start, stop, members), views in packs:
            slot_pieces = [None if s is None else s[start:stop] for s in slots]
            if type(members) is int:
                g = grads[members].reshape(-1)
                p = flat_param[start:stop] if params is None else params[members].reshape(-1)
                rule(p, g, *slot_pieces, *scalars, scratch)
                continue
            g = self._grad_buffer[: stop - start]
            # axis=None flattens each member in C order, as reshape(-1) would.
            np.concatenate(_select(grads, members), axis=None, out=g, casting="unsafe")
            if params is None:
                rule(flat_param[start:stop], g, *slot_pieces, *scalars, scratch)
                continue
            selected = _select(params, members)
            p = self._param_buffer[: stop - start]
            np.concatenate(selected, axis=None, out=p)
            rule(p, g, *slot_pieces, *scalars, scratch)
            for array, view in zip(selected, views):      # the new values, back in place
                array[...] = view


def _member_list(members):
    return range(members.start, members.stop) if type(members) is slice else members


def _select(values, members):
    return values[members] if type(members) is slice else [values[i] for i in members]


class GroupStep:
    """One group's arrays during one step.

    `grads`: flat gradients in the storage dtype (a private copy when the
    step writes into them), a `PackedGradients`, or None when no member has
    one. `runs`: the [start, stop) ranges of the members that have one;
    `whole`: they are one run over the whole group (the usual step).
    `params`: the flat parameters (None when packed with the
    gradients); `gathered` when they are a copy to write back. `slots`: the
    compute-dtype slot arrays by kind (None on steps that do not read them);
    `accumulator`: the stored gradient accumulator, if any.
    """

    __slots__ = ("group", "present", "runs", "whole", "grads", "params", "gathered", "slots",
                 "accumulator")

    def __init__(self, group, present, grads, slots):
        self.group = group
        self.present = present
        self.runs = group.runs(present)
        self.whole = self.runs == [[0, group.total]]
        self.grads = grads
        self.params = None
        self.gathered = False
        self.slots = slots
        self.accumulator = group.slots.get("gradient_accumulator")


class FlatStorage:
    """The storage of an optimizer built on `variables` (Variables or writable
    float arrays), its updates computed in `compute_dtype`."""

    def __init__(self, variables, compute_dtype) -> None:
        self.variables = list(variables)
        self.shapes = [tuple(np.shape(v)) for v in self.variables]
        self.dtypes = [np.dtype(v.dtype) for v in self.variables]
        self.scratch = Scratch()
        by_dtype: Dict[np.dtype, List[int]] = {}
        for index, dtype in enumerate(self.dtypes):
            by_dtype.setdefault(dtype, []).append(index)
        self.groups = [DtypeGroup(dtype, indices, [self.shapes[i] for i in indices],
                                  compute_dtype, self._layout_changed)
                       for dtype, indices in by_dtype.items()]
        self._group_of = {}
        for group in self.groups:
            for position, index in enumerate(group.indices):
                self._group_of[index] = (group, position)
            group.rehome([self.variables[i] for i in group.indices])
        self._all_plain = not any(isinstance(v, Variable) for v in self.variables)
        # For the survey of each step's gradients: per position, ndim then the
        # dimensions (see `surveyed`).
        self._shape_table = np.array([n for shape in self.shapes for n in (len(shape), *shape)],
                                     dtype=np.intp).tobytes()
        self._layout_changed()

    def _layout_changed(self):
        """Recompute what depends on where the parameters live (at build, and
        when a group loses its members' storage to another optimizer)."""
        self._buffered = all(g.param_buffer is not None for g in self.groups)
        self._owners = None          # see `unaliased`
        self._param_memory = None    # see `surveyed`

    # -- slots ------------------------------------------------------------
    def add_slot(self, kind) -> List[np.ndarray]:
        """A zero slot `kind` for every variable; returns the per-variable views."""
        for group in self.groups:
            group.add_slot(kind)
        return [self.slot_view(kind, i) for i in range(len(self.variables))]

    def slot_view(self, kind, index):
        group, position = self._group_of[index]
        return group.slot_view(kind, position)

    # -- parameters -------------------------------------------------------
    def param_arrays(self, override=None):
        """The array each trainable value is stored in, by position
        (`override`: plain arrays standing in for the variables)."""
        if override is not None:
            return override
        if self._all_plain:
            return self.variables
        return [v.value if isinstance(v, Variable) else v for v in self.variables]

    def alias_owners(self, override=None):
        """ids of the arrays that own the parameters' memory (or are the
        parameters): a gradient that is one of them, or a NumPy view of one,
        shares memory with a parameter."""
        owners = set()
        for group in self.groups:
            if override is None and group.param_buffer is not None:
                owners.add(id(group.param_buffer))
        arrays = self.param_arrays(override)
        for group in self.groups:
            if override is None and group.param_buffer is not None:
                continue
            for index in group.indices:
                array = arrays[index]
                owners.add(id(array))
                if array.base is not None:
                    owners.add(id(array.base))
        return owners

    def buffered(self, override=None):
        """True when every group's parameters live in the group's own buffer."""
        return override is None and self._buffered

    def surveyed(self, grads, override=None):
        """`grads` (a list by position) as `SurveyedGradients` when one pass of
        the compiled survey (`kernel_choice.survey`) finds each one a NumPy
        array of its variable's shape and an integer or float dtype, sharing
        no memory with a parameter; else None (then the per-gradient checks
        and `unaliased` run, with their messages). With many small tensors,
        reading each gradient's shape, dtype and base from Python costs as
        much as their update."""
        memory = self._param_memory if override is None else None
        if memory is None:
            if self.buffered(override):
                memory = [group.param_buffer for group in self.groups]
            else:
                memory = list(self.param_arrays(override))
            # The arrays holding the parameters stay the same from step to
            # step when they are the groups' buffers or plain arrays.
            if override is None and (self._buffered or self._all_plain):
                self._param_memory = memory
        if kernel_choice.survey(grads, self._shape_table, memory):
            return SurveyedGradients(grads)
        return None

    def unaliased(self, grads, override=None):
        """`grads` (by position, None for none), with those that share memory
        with a parameter replaced by copies: a gradient that is a parameter
        array, or a NumPy view of a parameter's memory. Weight decay, and the
        rule on earlier members, write parameters before every gradient is
        read; a copy gives the results a separate gradient would."""
        if type(grads) is SurveyedGradients:
            return grads                # found sharing no memory with a parameter
        if override is not None:
            owners = self.alias_owners(override)
        else:
            owners = self._owners
            if owners is None:
                owners = self._owners = self.alias_owners()
        bases = list(map(_BASE, filter(_NOT_NONE, grads)))
        if ((not any(map(_NOT_NONE, bases)) or owners.isdisjoint(map(id, bases)))
                and (self.buffered(override) or owners.isdisjoint(map(id, grads)))):
            return grads
        grads = list(grads)
        for index, grad in enumerate(grads):
            if grad is not None and (id(grad) in owners or id(grad.base) in owners):
                grads[index] = grad.copy()
        return grads

    def first_read_only(self):
        """The position of a parameter a step could not write (a plain array,
        or a Variable's storage outside the group buffers, made read-only),
        or None."""
        if self._buffered:
            return None
        arrays = self.param_arrays()
        if all(map(_WRITEABLE, arrays)):
            return None
        for group in self.groups:
            if group.param_buffer is None:
                for index in group.indices:
                    if not arrays[index].flags.writeable:
                        return index
        return None

    # -- one step ---------------------------------------------------------
    def begin_step(self, grads, *, private, load_slots, whole_params, pack_params,
                   override=None) -> List[GroupStep]:
        """Lay out one step: `grads[i]` is the gradient of variable i or None.

        `private`: the step writes into the gradients, so copy them;
        `load_slots`: the step reads the slots; `whole_params`: the step
        reads or writes the parameters; `pack_params`: only the rule writes
        them (plain arrays may then be gathered chunk by chunk). Only private
        buffers are written here: nothing the caller can see changes.
        """
        work = []
        surveyed = type(grads) is SurveyedGradients      # then none is None
        for group in self.groups:
            present = ([True] * len(group.indices) if surveyed
                       else [grads[i] is not None for i in group.indices])
            slots = group.load_working_slots() if load_slots else None
            work.append(GroupStep(group, present, self._flat_gradients(group, grads, private),
                                  slots))
            if group.casts:
                group.compute_grad_buffer()      # allocated now, not midway through the step
        if whole_params:
            # Only groups whose parameters live outside their buffer read the
            # arrays (reading every Variable's `value` costs as much as the
            # update of a small tensor).
            arrays = (None if self.buffered(override) else self.param_arrays(override))
            for step in work:
                group = step.group
                if (pack_params and override is None and group.param_buffer is None
                        and isinstance(step.grads, PackedGradients)):
                    buffer = self.scratch.gather(group.compute).params
                    packed = step.grads.with_params(arrays, buffer)
                    if packed is not None:
                        step.grads = packed
                        continue
                step.params, step.gathered = self._flat_params(group, arrays, override)
        return work

    def update_in_place(self, grads, rule, slot_kinds, scalars_of, override=None) -> bool:
        """The usual step of a rule alone, without its layout (`begin_step`,
        `GroupStep`, `finish_step`: for small updates they cost more than
        the update): one dtype group whose parameters live in its buffer,
        stored in the compute dtype (Variables; not `override`), or are
        plain arrays of the compute dtype, every
        gradient present and surveyed (`SurveyedGradients`). Runs
        `rule.lists(parameter buffer, the gradients, *slots,
        *scalars_of(compute dtype))` (a slot kind None passes None), the
        call the laid-out step makes for such a group: the compiled kernel
        reads the gradients where they are. False, having changed nothing,
        when the step is not of that kind or the rule declines the arrays (a
        gradient of another dtype or layout, which the laid-out step
        converts first)."""
        if type(grads) is not SurveyedGradients or len(self.groups) != 1:
            return False
        group = self.groups[0]
        if self.buffered(override):
            params = group.param_buffer
        elif override is None and self._all_plain and not group.casts:
            # Plain arrays of the compute dtype, in the group's order (the
            # slots' order), none sharing memory with another (refused at
            # build): the kernel reads and writes the list where it is, and
            # declines, having written nothing, an array that is not writable
            # and C-contiguous.
            params = self.variables if len(self.variables) > 1 else self.variables[0]
        else:
            return False
        return rule.lists(params, grads if len(grads) > 1 else grads[0],
                          *map(group.slots.get, slot_kinds), *scalars_of(group.compute))

    def apply_rule(self, step: GroupStep, rule, slot_kinds, scalars):
        """Run `rule(param, grad, *slots, *scalars, scratch)` over the members
        of `step` that have a gradient, on flat compute-dtype arrays; a kind
        None in `slot_kinds` passes None for that slot."""
        group = step.group
        slots = list(map(step.slots.get, slot_kinds))    # no slot is named None
        scratch = self.scratch.math(group.compute)
        grads = step.grads
        if isinstance(grads, PackedGradients):
            # A rule that reads lists of arrays (`rule.lists`, the compiled
            # kernel) takes the members as they are; it returns False when it
            # declines them, having changed nothing.
            lists = getattr(rule, "lists", None)
            if lists is None or not lists(*grads.member_arrays(step.params), *slots, *scalars):
                grads.apply(rule, step.params, slots, scalars, scratch)
            return
        if group.casts:
            grads = group.compute_grad_buffer()
            np.copyto(grads, step.grads, casting="unsafe")
        params = step.params
        if step.whole:
            rule(params, grads, *slots, *scalars, scratch)    # every member: the usual step
            return
        for start, stop in step.runs:
            rule(params[start:stop], grads[start:stop],
                 *[None if s is None else s[start:stop] for s in slots], *scalars, scratch)

    def apply_fused_rule(self, step: GroupStep, rule, slot_kinds, scalars, fused) -> bool:
        """Run a rule that reads lists of arrays (`rule.lists`, the compiled
        kernel) over the whole group (`step.whole`: every member has a
        gradient) with the steps `fused` (`kernel_choice.FusedSteps`, or
        None) in the same pass; False, having changed nothing, when the rule
        has no such form or declines the arrays."""
        lists = getattr(rule, "lists", None)
        if lists is None or not step.whole:
            return False
        group = step.group
        slots = list(map(step.slots.get, slot_kinds))    # no slot is named None
        grads = step.grads
        if isinstance(grads, PackedGradients):
            params, grads = grads.member_arrays(step.params)
        else:
            params = step.params
            if group.casts:
                buffer = group.compute_grad_buffer()
                np.copyto(buffer, grads, casting="unsafe")
                grads = buffer
        return lists(params, grads, *slots, *scalars, fused)

    def finish_step(self, work: List[GroupStep], *, updated, overwritten, override=None):
        """Store the step's slots and write gathered parameters back: those
        the rule `updated`, or all when the EMA `overwritten` them."""
        arrays = None
        for step in work:
            group = step.group
            if step.slots is not None:
                group.store_working_slots()
            if step.gathered and (updated or overwritten):
                if arrays is None:
                    arrays = self.param_arrays(override)
                # Only what the step wrote goes back: a value that was merely
                # read must keep its stored precision.
                written = [True] * len(step.present) if overwritten else step.present
                for index, view, here in zip(group.indices, group.member_views(step.params),
                                             written):
                    if here:
                        np.copyto(arrays[index], view, casting="unsafe")

    def _flat_gradients(self, group, grads, private):
        """The group's gradients as one flat array of its dtype (a private copy if
        `private`), or, when only the rule reads them, as `PackedGradients`."""
        members = group.indices
        if len(members) == 1 and not private:
            grad = grads[members[0]]
            if grad is None:
                return None
            if grad.dtype == group.dtype and grad.flags.c_contiguous:
                return grad.reshape(-1)
        if type(grads) is SurveyedGradients and len(members) == len(grads):
            present, complete = grads, True     # every variable, in order; none is None
        else:
            present = [grads[i] for i in members]
            complete = not any(map(operator.is_, present, itertools.repeat(None)))
        if complete and not private:
            packed = group.packed_gradients(grads, self.scratch.gather(group.compute).grads)
            if packed is not None:
                return packed
        buffer = group.grad_buffer()
        if complete:
            # axis=None flattens each input in C order, as reshape(-1) would.
            np.concatenate(present, axis=None, out=buffer, casting="unsafe")
        else:
            for position, grad in enumerate(present):
                if grad is not None:
                    start, stop = group.segment(position)
                    np.copyto(buffer[start:stop], grad.reshape(-1), casting="unsafe")
        return buffer

    def _flat_params(self, group, arrays, override):
        """(flat parameter array, whether it is a gathered copy to write back)."""
        if override is None and group.param_buffer is not None:
            return group.param_buffer, False
        members = [arrays[i] for i in group.indices]
        if len(members) == 1 and members[0].flags.c_contiguous and not group.casts:
            return members[0].reshape(-1), False
        buffer = group.gather_buffer()
        np.concatenate(members, axis=None, out=buffer, casting="unsafe")
        return buffer, True
