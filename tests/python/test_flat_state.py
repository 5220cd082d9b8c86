"""Direct tests of flat_state.py: the optimizer's storage.

A rule that adds the gradient to the parameter (p += g) and counts into a
slot makes every layout visible: whatever the storage gathers, packs, casts
or writes back, each member must end as its own p + g, untouched members
unchanged.
"""

import numpy as np
import pytest

import rmsprop
from rmsprop.flat_state import FlatStorage, PackedGradients
from rmsprop.kernels import CHUNK


def add_rule(param, grad, counter, scratch):
    """p += g; counter += 1 (over the elements it was given)."""
    np.add(param, grad, out=param, casting="unsafe")
    np.add(counter, 1, out=counter)


SHAPES = [(7,), (3, 5), (CHUNK + 3,), (2,), (100, 100), (CHUNK,), ()]


def make(kind, rng, dtype="float32", shapes=SHAPES):
    values = [rng.standard_normal(s).astype(dtype) for s in shapes]
    if kind == "Variable":
        return values, [rmsprop.Variable(v, dtype=dtype) for v in values]
    return values, [v.copy() for v in values]


def run_step(storage, grads, **options):
    settings = dict(private=False, load_slots=True, whole_params=True, pack_params=True)
    settings.update(options)
    work = storage.begin_step(grads, **settings)
    for step in work:
        if step.runs:
            storage.apply_rule(step, add_rule, ["counter"], [])
    storage.finish_step(work, updated=True, overwritten=False)


@pytest.mark.parametrize("kind", ["Variable", "array"])
@pytest.mark.parametrize("private", [False, True])
@pytest.mark.parametrize("missing", [None, 1, 2])
def test_every_layout_updates_each_member_with_its_own_gradient(rng, kind, private, missing):
    values, variables = make(kind, rng)
    storage = FlatStorage(variables, "float32")
    counters = storage.add_slot("counter")
    grads = [rng.standard_normal(v.shape).astype("float32") for v in values]
    if missing is not None:
        grads[missing] = None
    run_step(storage, grads, private=private)
    for index, (variable, value, grad) in enumerate(zip(variables, values, grads)):
        want = value if grad is None else value + grad
        assert np.asarray(variable).tobytes() == want.tobytes(), index
        assert np.all(counters[index] == (0 if grad is None else 1)), index


def test_a_group_of_variables_lives_in_one_buffer_and_plain_arrays_stay_put(rng):
    _, variables = make("Variable", rng)
    storage = FlatStorage(variables, "float32")
    [group] = storage.groups
    assert group.param_buffer is not None and storage.buffered()
    for position, variable in enumerate(variables):
        start, stop = group.segment(position)
        assert np.shares_memory(variable.value, group.param_buffer[start:stop])
    _, arrays = make("array", rng)
    plain = FlatStorage(arrays, "float32")
    assert plain.groups[0].param_buffer is None and not plain.buffered()
    assert all(a is b for a, b in zip(plain.param_arrays(), arrays))


def test_groups_by_dtype_in_order_of_first_appearance_with_their_compute_dtype():
    variables = [np.zeros(2, "float64"), np.zeros(3, "float32"), np.zeros(4, "float64"),
                 np.zeros(1, "float16")]
    storage = FlatStorage(variables, "float32")
    assert [(g.dtype.name, g.indices, g.compute.name) for g in storage.groups] == [
        ("float64", [0, 2], "float32"), ("float32", [1], "float32"),
        ("float16", [3], "float16")]
    views = storage.add_slot("velocity")
    assert [v.shape for v in views] == [(2,), (3,), (4,), (1,)]
    assert np.shares_memory(views[0], storage.groups[0].slots["velocity"])
    assert np.shares_memory(views[2], storage.groups[0].slots["velocity"])


def test_members_stored_wider_than_computed_are_rounded_once_on_the_way_back(rng):
    values, variables = make("Variable", rng, dtype="float64", shapes=[(5,), (CHUNK + 1,)])
    storage = FlatStorage(variables, "float32")
    storage.add_slot("counter")
    grads = [rng.standard_normal(v.shape) for v in values]
    run_step(storage, grads)
    for variable, value, grad in zip(variables, values, grads):
        want = (value.astype("float32") + grad.astype("float32")).astype("float64")
        assert variable.numpy().tobytes() == want.tobytes()


def test_gradients_are_read_chunk_by_chunk_only_when_nothing_else_writes_them(rng):
    _, variables = make("array", rng)
    storage = FlatStorage(variables, "float32")
    storage.add_slot("counter")
    grads = [np.ones(v.shape, "float32") for v in variables]
    [shared] = storage.begin_step(grads, private=False, load_slots=True, whole_params=True,
                                  pack_params=True)
    assert isinstance(shared.grads, PackedGradients)
    [private] = storage.begin_step(grads, private=True, load_slots=True, whole_params=True,
                                   pack_params=True)
    assert isinstance(private.grads, np.ndarray)
    assert private.grads.shape == (storage.groups[0].total,)
    assert not any(np.shares_memory(private.grads, g) for g in grads)


def test_the_pack_plan_keeps_large_members_alone_and_packs_small_ones_up_to_a_chunk(rng):
    _, variables = make("array", rng)
    [group] = FlatStorage(variables, "float32").groups
    covered = 0
    for start, stop, members in group.pack_plan():
        assert start == covered
        covered = stop
        if type(members) is int:
            assert stop - start >= CHUNK
        else:
            assert stop - start <= CHUNK
    assert covered == group.total


def test_aliased_gradients_are_copied_and_others_left_alone(rng):
    values, variables = make("Variable", rng, shapes=[(4,), (3,)])
    storage = FlatStorage(variables, "float32")
    separate = [np.ones(4, "float32"), np.ones(3, "float32")]
    assert storage.unaliased(separate) is separate
    aliased = [variables[0].value, separate[1]]
    result = storage.unaliased(aliased)
    assert not np.shares_memory(result[0], variables[0].value)
    assert np.array_equal(result[0], variables[0].value)
    assert result[1] is separate[1]
    _, arrays = make("array", rng, shapes=[(4,), (3,)])
    plain = FlatStorage(arrays, "float32")
    result = plain.unaliased([arrays[0], arrays[1][::-1], None])
    assert not np.shares_memory(result[0], arrays[0])
    assert not np.shares_memory(result[1], arrays[1]) and result[2] is None


def test_a_read_only_parameter_is_found(rng):
    _, arrays = make("array", rng, shapes=[(4,), (3,)])
    storage = FlatStorage(arrays, "float32")
    assert storage.first_read_only() is None
    arrays[1].setflags(write=False)
    assert storage.first_read_only() == 1


def test_a_group_whose_storage_another_optimizer_takes_keeps_working(rng):
    values, variables = make("Variable", rng, shapes=[(4,), (3,)])
    first = FlatStorage(variables, "float32")
    first.add_slot("counter")
    FlatStorage(variables[1:], "float32")          # moves variable 1 away
    assert first.groups[0].param_buffer is None and not first.buffered()
    grads = [np.ones(4, "float32"), np.ones(3, "float32")]
    run_step(first, grads)
    for variable, value in zip(variables, values):
        assert variable.numpy().tobytes() == (value + np.float32(1)).tobytes()
