"""Mistakes a Keras or TensorFlow user makes get errors that say what
happened (issue 16, "Mistakes get errors that say what happened")."""

import warnings

import numpy as np
import pytest

import rmsprop


def built():
    w, b = rmsprop.Variable([1.0, 2.0], name="w"), rmsprop.Variable(0.5, name="b")
    optimizer = rmsprop.RMSprop(learning_rate=0.1)
    optimizer.build([w, b])
    return optimizer, [w, b]


def test_gradients_as_a_dict_are_refused_naming_the_mistake():
    optimizer, variables = built()
    with pytest.raises(TypeError, match="got a dict"):
        optimizer.apply({"w": np.ones(2), "b": np.float32(1)}, variables)
    assert optimizer.iterations == 0


def test_tensorflow_style_pairs_point_at_apply_gradients():
    optimizer = rmsprop.RMSprop(learning_rate=0.1)
    w = rmsprop.Variable([1.0, 2.0], name="w")
    with pytest.raises(TypeError, match="apply_gradients"):
        optimizer.apply(list(zip([np.ones(2)], [w])), [w])
    assert not optimizer.built               # refused before building
    optimizer.apply_gradients(zip([np.ones(2)], [w]))
    assert optimizer.iterations == 1


def test_a_string_gradient_is_a_dtype_error():
    optimizer, variables = built()
    with pytest.raises(TypeError, match="'b' must be numeric; got 'abc'"):
        optimizer.apply([np.ones(2), "abc"], variables)


def test_the_missing_gradient_warning_points_at_the_callers_line():
    optimizer, variables = built()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        optimizer.apply([np.ones(2), None], variables)
        optimizer.apply_gradients([(np.ones(2), variables[0]), (None, variables[1])])
    assert len(caught) == 2
    assert all(w.filename == __file__ for w in caught), [w.filename for w in caught]


@pytest.mark.parametrize("wrapped", [False, True])
def test_no_gradients_at_all_is_a_no_op_as_in_keras(wrapped):
    optimizer = rmsprop.RMSprop(learning_rate=0.1)
    if wrapped:
        optimizer = rmsprop.LossScaleOptimizer(optimizer, initial_scale=8.0)
    optimizer.apply([], [])
    assert not optimizer.built and optimizer.iterations == 0
    state = [v.numpy() for v in optimizer.variables]
    optimizer.apply([])
    assert [v.numpy().tobytes() for v in optimizer.variables] == [s.tobytes() for s in state]
