"""rmsprop: Keras 3's RMSprop optimizer as a small, fast NumPy engine.

>>> import numpy as np, rmsprop
>>> w = rmsprop.Variable([1.0, 2.0])
>>> opt = rmsprop.RMSprop(learning_rate=0.1)
>>> opt.apply([np.array([0.5, -0.5])], [w])
"""

from . import schedules
from .checkpoint import CheckpointError, load_optimizer, save_optimizer
from .config import floatx, set_floatx
from .kernel_choice import kernel_info, num_threads, set_kernel, set_num_threads
from .loss_scale import LossScaleOptimizer
from .optimizer import Optimizer
from .positional import apply_to_values, finalized_values  # noqa: F401 (for R)
from .rmsprop_optimizer import RMSprop
from .variable import Variable

__version__ = "0.1.0"

# The public API. `apply_to_values` and `finalized_values` are the R
# package's entry points (R's optimizer_apply() and optimizer_finalize()),
# importable but not part of it.
__all__ = [
    "RMSprop", "Optimizer", "LossScaleOptimizer", "Variable", "schedules", "floatx", "set_floatx",
    "save_optimizer", "load_optimizer", "CheckpointError", "__version__",
    "kernel_info", "set_kernel", "set_num_threads", "num_threads",
]
