"""Shared set-up of the engine's pytest suite.

The suite is organised by engine module (test_variable.py for variable.py,
test_kernels.py for kernels.py, test_flat_state.py for flat_state.py,
test_step_integrity.py and test_hyperparameters.py for base_optimizer.py,
...), plus suites across modules (Keras replays, properties, bit pins). The
helper modules `keras_cases` and `rmsprop_reference` sit beside the tests;
pytest puts this folder on the import path (`pythonpath` in pyproject.toml),
for the parity suite too.
"""

import numpy as np
import pytest

import rmsprop


@pytest.fixture(autouse=True)
def _restore_floatx():
    """A test that changes floatx (and fails before changing it back) must not
    change the precision of the tests after it."""
    floatx = rmsprop.floatx()
    yield
    rmsprop.set_floatx(floatx)


@pytest.fixture
def rng():
    """A seeded generator: every run sees the same numbers."""
    return np.random.default_rng(20261126)
