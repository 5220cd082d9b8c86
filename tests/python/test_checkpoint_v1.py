"""Version-1 checkpoints (written before format 2) still load and continue
exactly as the version-1 code continued them.

The files in tests/data/checkpoint-v1 were written by the version-1 writer
(see generate.py there), together with what the version-1 loader then did:
the gradients of five more steps and the parameters and optimizer variables
after them.
"""

import os

import numpy as np
import pytest

import rmsprop

pytestmark = pytest.mark.filterwarnings("ignore:Gradients do not exist")

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "data",
                    "checkpoint-v1")
NAMES = ["plain", "momentum-centered", "schedule", "loss-scale", "ema",
         "accumulation-mid-cycle", "float64"]
VARIABLE_NAMES = ["kernel", "bias"]


@pytest.mark.parametrize("name", NAMES)
def test_version_1_file_continues_as_before(name):
    with np.load(os.path.join(DATA, f"{name}-expected.npz")) as archive:
        expected = {key: archive[key] for key in archive.files}
    optimizer = rmsprop.load_optimizer(os.path.join(DATA, f"{name}.npz"))
    variables = [rmsprop.Variable(expected[f"before_{i}"], dtype=expected[f"before_{i}"].dtype,
                                  name=vname) for i, vname in enumerate(VARIABLE_NAMES)]
    step = 0
    while f"grad_{step}_0" in expected:
        optimizer.apply([expected[f"grad_{step}_{i}"] for i in range(len(variables))], variables)
        step += 1
    assert step == 5
    assert optimizer.iterations == int(expected["iterations"])
    for i, variable in enumerate(variables):
        after = expected[f"after_{i}"]
        assert variable.dtype == after.dtype
        np.testing.assert_array_equal(variable.numpy(), after)
    state = [v.numpy() for v in optimizer.variables]
    if isinstance(optimizer, rmsprop.LossScaleOptimizer):
        # Since issue 16 the wrapper lists Keras' order: its own (unused)
        # iteration and learning rate first; the files recorded the rest.
        assert [float(v) for v in state[:2]] == [0.0, 0.0]
        state = state[2:]
    assert len(state) == sum(key.startswith("state_") for key in expected)
    for i, value in enumerate(state):
        assert value.dtype == expected[f"state_{i}"].dtype
        np.testing.assert_array_equal(value, expected[f"state_{i}"])


def test_version_1_unbuilt_file():
    optimizer = rmsprop.load_optimizer(os.path.join(DATA, "unbuilt.npz"))
    assert optimizer.get_config() == rmsprop.RMSprop(learning_rate=0.25, momentum=0.5,
                                                     name="fresh").get_config()
    assert not optimizer.built and optimizer.iterations == 0
