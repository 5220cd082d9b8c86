"""How the version-1 checkpoint fixtures in this folder were made.

Run once, with the version-1 writer (commit 88018ed, before format 2), from
the repository root:  .venv/bin/python tests/data/checkpoint-v1/generate.py

For each configuration it trains 5 steps, saves `<name>.npz` (format 1) and
records in `<name>-expected.npz` what the version-1 code then did: the
parameters at the save, the gradients of 5 more steps, and the parameters and
optimizer variables after continuing with the loaded optimizer. The test
`tests/python/test_checkpoint_v1.py` checks that today's loader continues
from these files exactly so. The files are kept as made; this script is the
record of how, not something the tests run (today's writer writes format 2).
"""

import os

import numpy as np

import rmsprop
from rmsprop import schedules

HERE = os.path.dirname(os.path.abspath(__file__))
SHAPES = [("kernel", (3, 2)), ("bias", (2,))]

CONFIGS = {
    "plain": ("float32", lambda: rmsprop.RMSprop(learning_rate=0.05)),
    "momentum-centered": ("float32", lambda: rmsprop.RMSprop(
        learning_rate=0.05, momentum=0.7, centered=True, weight_decay=0.01)),
    "schedule": ("float32", lambda: rmsprop.RMSprop(
        learning_rate=schedules.ExponentialDecay(0.1, 3, 0.5), momentum=0.1)),
    "loss-scale": ("float32", lambda: rmsprop.LossScaleOptimizer(
        rmsprop.RMSprop(learning_rate=0.05, momentum=0.5), initial_scale=256.0,
        dynamic_growth_steps=2)),
    "ema": ("float32", lambda: rmsprop.RMSprop(
        learning_rate=0.05, use_ema=True, ema_momentum=0.8, ema_overwrite_frequency=3)),
    "accumulation-mid-cycle": ("float32", lambda: rmsprop.RMSprop(
        learning_rate=0.05, momentum=0.3, gradient_accumulation_steps=3, clipnorm=1.0)),
    "float64": ("float64", lambda: rmsprop.RMSprop(
        learning_rate=0.05, momentum=0.9, centered=True)),
}


def gradients(step, dtype, nonfinite):
    rng = np.random.default_rng(1000 + step)
    grads = [rng.uniform(-3, 3, shape).astype(dtype) for _, shape in SHAPES]
    if nonfinite and step in (2, 6):
        grads[0][1, 1] = np.inf if step == 2 else np.nan
    return grads


def main():
    for name, (dtype, factory) in CONFIGS.items():
        rng = np.random.default_rng(5)
        variables = [rmsprop.Variable(rng.uniform(-1, 1, shape).astype(dtype), dtype=dtype,
                                      name=vname) for vname, shape in SHAPES]
        optimizer = factory()
        nonfinite = name == "loss-scale"
        for step in range(5):
            optimizer.apply(gradients(step, dtype, nonfinite), variables)
        path = os.path.join(HERE, f"{name}.npz")
        rmsprop.save_optimizer(optimizer, path)
        before = [v.numpy() for v in variables]
        loaded = rmsprop.load_optimizer(path)
        copies = [rmsprop.Variable(b, dtype=dtype, name=vname)
                  for b, (vname, _) in zip(before, SHAPES)]
        grads = [gradients(step, dtype, nonfinite) for step in range(5, 10)]
        for g in grads:
            loaded.apply(g, copies)
        expected = {f"before_{i}": b for i, b in enumerate(before)}
        for s, g in enumerate(grads):
            for i, x in enumerate(g):
                expected[f"grad_{s}_{i}"] = x
        for i, c in enumerate(copies):
            expected[f"after_{i}"] = c.numpy()
        for i, v in enumerate(loaded.variables):
            expected[f"state_{i}"] = v.numpy()
        expected["iterations"] = np.array(loaded.iterations)
        np.savez(os.path.join(HERE, f"{name}-expected.npz"), **expected)
    # An optimizer saved before it was built.
    rmsprop.save_optimizer(rmsprop.RMSprop(learning_rate=0.25, momentum=0.5, name="fresh"),
                           os.path.join(HERE, "unbuilt.npz"))


if __name__ == "__main__":
    main()
