"""Saving an optimizer to one `.npz` file and loading it back.

The file holds the optimizer's class and config (JSON), the shapes and dtypes
of the variables it was built on, and every optimizer variable. It is written
to a temporary file beside the target and renamed over it, so a crash never
leaves a half-written file where a good one was. Loading never unpickles.
"""

import json
import os
import tempfile
import zipfile

import numpy as np

from .base_optimizer import BaseOptimizer
from .loss_scale import LossScaleOptimizer
from .registry import lookup
from . import rmsprop_optimizer  # noqa: F401  (registers RMSprop)

FORMAT = "rmsprop-checkpoint/1"


def optimizer_class(class_name, custom_objects=None):
    return lookup("optimizer", class_name, (BaseOptimizer, LossScaleOptimizer), custom_objects)


def _contains_callable_rate(config):
    inner = config.get("inner_optimizer")
    if isinstance(inner, dict):
        return _contains_callable_rate(inner["config"])
    return callable(config.get("learning_rate"))


def save_optimizer(optimizer, path):
    """Write `optimizer` (config and state) to `path` atomically; returns the path."""
    if not isinstance(optimizer, (BaseOptimizer, LossScaleOptimizer)):
        raise TypeError(
            f"`optimizer` must be an rmsprop optimizer; got {type(optimizer).__name__}.")
    path = os.path.abspath(os.path.expanduser(os.fspath(path)))
    config = optimizer.get_config()
    if _contains_callable_rate(config):
        raise ValueError("Cannot save an optimizer whose learning_rate is a function: a function "
                         "cannot be stored in a file. Use a number or a learning rate schedule.")
    specs, values = optimizer._checkpoint_payload()
    arrays = {
        "format": np.array(FORMAT),
        "class_name": np.array(type(optimizer).__name__),
        "config": np.array(json.dumps(config)),
        "variable_specs": np.array(json.dumps(specs)),
    }
    for index, value in enumerate(values):
        arrays[f"value_{index:05d}"] = np.asarray(value)
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"Cannot save to {path!r}: directory {directory!r} does not exist.")
    handle = tempfile.NamedTemporaryFile(dir=directory, prefix=".rmsprop-", suffix=".tmp",
                                         delete=False)
    try:
        with handle:
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        if os.path.exists(handle.name):
            os.unlink(handle.name)
        raise
    return path


def load_optimizer(path, custom_objects=None):
    """Rebuild the optimizer saved at `path`.

    Only the engine's own classes load by name; a user's own classes (a
    LearningRateSchedule subclass) load when passed in `custom_objects`, a dict
    mapping class names to classes. Nothing named by the file is imported.

    Its state is taken up when it is built (or first applied) on variables of
    the same shapes and dtypes, in the same order, as when it was saved.
    """
    path = os.path.abspath(os.path.expanduser(os.fspath(path)))
    if not os.path.exists(path):
        raise FileNotFoundError(f"No checkpoint at {path!r}.")
    try:
        with np.load(path, allow_pickle=False) as archive:
            contents = {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
        raise ValueError(f"{path!r} is not a readable rmsprop checkpoint "
                         f"(truncated or not an .npz file): {error}") from None
    if contents.get("format") is None or str(contents["format"]) != FORMAT:
        raise ValueError(f"{path!r} is not an rmsprop checkpoint (no '{FORMAT}' marker).")
    try:
        cls = optimizer_class(str(contents["class_name"]), custom_objects)
        config = json.loads(str(contents["config"]))
        specs = json.loads(str(contents["variable_specs"]))
    except (KeyError, json.JSONDecodeError) as error:
        raise ValueError(f"{path!r} is a damaged rmsprop checkpoint: {error}") from None
    keys = sorted(k for k in contents if k.startswith("value_"))
    values = [contents[k] for k in keys]
    optimizer = cls.from_config(config, custom_objects=custom_objects)
    optimizer._restore_checkpoint(specs, values)
    return optimizer
