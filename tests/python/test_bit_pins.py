"""Exact bits of short trajectories, so that any dependence on the NumPy
version (or on the CPU's float32 math) fails the suite wherever it runs.

- Schedules: the rates Keras 3.15.1 itself computed (NumPy backend, NumPy
  2.4), as recorded in tests/data/keras_rmsprop_cases.json (the case ids are
  named), written here as float32 hex, at raw iterations 1, 2, ...
- Global clipping: three RMSprop steps per variable dtype, as computed by
  tests/python/rmsprop_reference.py, which writes out Keras' rules op by op
  with explicit dtypes (see test_keras_precision.py for their derivation).
"""

import numpy as np
import pytest

import rmsprop
from rmsprop import schedules

# (schedule, float32 hex of its rate at steps 1, 2, ...; Keras case ids)
KERAS_RATES = [
    (schedules.ExponentialDecay(0.1, 3, 0.5),  # s1-041, s1-066, s1-077
     "3da28cc4 3d810413 3d4ccccd 3d228cc4 3d010413 3ccccccd 3ca28cc5 3c810413 3c4ccccd"),
    (schedules.ExponentialDecay(0.1, 3, 0.5, staircase=True),  # s1-056, s1-065
     "3dcccccd 3dcccccd 3d4ccccd 3d4ccccd 3d4ccccd 3ccccccd 3ccccccd 3ccccccd 3c4ccccd "
     "3c4ccccd 3c4ccccd 3bcccccd"),
    (schedules.PiecewiseConstantDecay([2, 5], [0.1, 0.05, 0.01]),  # s1-012, s1-018, s1-072
     "3dcccccd 3dcccccd 3d4ccccd 3d4ccccd 3d4ccccd 3c23d70a 3c23d70a"),
    (schedules.PolynomialDecay(0.1, 5, 0.01, power=0.5, cycle=True),  # s1-060
     "3db95740 3da340f0 3d890de1 3d4dd222 3c23d70a 3d890de1 3d72df5a 3d4dd222 3d1d88c2 "
     "3c23d70a"),
    (schedules.PolynomialDecay(0.1, 5, 0.01, power=1.0),  # s1-068
     "3da7ef9e 3d83126f 3d3c6a7e 3ce56041 3c23d70a 3c23d70a 3c23d70a 3c23d70a 3c23d70a "
     "3c23d70a 3c23d70a"),
    (schedules.PolynomialDecay(0.1, 5, 0.01, power=2.0, cycle=True),  # s1-074, s1-076
     "3d8a71df 3d2daba0 3cc7e282 3c5ed288 3c23d70a 3cc7e282 3c944674"),
    (schedules.InverseTimeDecay(0.1, 2, 0.5),  # s1-078
     "3da3d70a 3d888889 3d6a0ea1 3d4ccccd 3d360b61 3d23d70a 3d14f209 3d088889 3cfc0fc1 "
     "3cea0ea1 3cda740e 3ccccccd"),
    (schedules.InverseTimeDecay(0.1, 2, 0.5, staircase=True),  # s1-025, s1-029
     "3dcccccd 3d888889 3d888889 3d4ccccd 3d4ccccd 3d23d70a 3d23d70a"),
    (schedules.CosineDecay(0.1, 6, alpha=0.1),  # s1-039, s1-054
     "3dc073f2 3d9eb852 3d6147ad 3d051eb7 3c834ef3 3c23d70b 3c23d70b 3c23d70b 3c23d70b "
     "3c23d70b 3c23d70b"),
    (schedules.CosineDecay(0.05, 6, alpha=0.1, warmup_target=0.2, warmup_steps=2),  # s1-002
     "3e000000 3e4ccccd 3e4073f2 3e1eb852 3de147ad 3d851eb7 3d034ef3 3ca3d70b 3ca3d70b "
     "3ca3d70b 3ca3d70b 3ca3d70b"),
    (schedules.CosineDecayRestarts(0.1, 3, t_mul=1.0, m_mul=0.5, alpha=0.05),  # s1-073
     "3d9c28f6 3ceb851d 3d570a3d 3d266666 3c8a3d73 3ceb851f 3cbae149 3c333330 3c8a3d71 "
     "3c63d70b 3c028f5b 3c333333"),
    (schedules.CosineDecayRestarts(0.1, 3, t_mul=2.0, m_mul=0.5, alpha=0.05),  # s1-019
     "3d9c28f6 3ceb851d 3d570a3d 3d4a01c8 3d266667 3ceb851f 3c8a3d73 3c060d5a 3ceb851f "
     "3ce8348d 3cde7caa"),
]


def float32_hex(value):
    return format(int(np.asarray(value, dtype=np.float32).view(np.uint32)), "08x")


@pytest.mark.parametrize("schedule, rates", KERAS_RATES, ids=lambda x: repr(x)[:60])
def test_schedule_rates_are_keras_bits(schedule, rates):
    want = rates.split()
    steps = range(1, len(want) + 1)
    assert [float32_hex(schedule(step)) for step in steps] == want
    assert [float32_hex(rate) for rate in schedule(np.array(steps))] == want


def test_schedule_rates_reach_the_optimizer_unchanged():
    schedule, rates = KERAS_RATES[3]          # PolynomialDecay with power 0.5
    optimizer = rmsprop.RMSprop(learning_rate=schedule, momentum=0.9)
    variable = rmsprop.Variable(np.zeros(3), dtype="float64")
    seen = []
    for _ in rates.split():
        optimizer.apply([np.full(3, 0.5)], [variable])
        seen.append(float32_hex(optimizer.learning_rate))
    assert seen == rates.split()


# Three steps of RMSprop(learning_rate=0.1, rho=0.9, momentum=0.5,
# global_clipnorm=0.5) on two variables (every step clips), per dtype: the
# bytes of both variables after each step, in hex.
CLIP_INIT = [[0.5, -1.25, 2.0], [[0.75, -0.375]]]
CLIP_GRADS = [([1.7, -2.3, 0.45], [[-3.1, 0.8]]), ([0.2, 0.9, -1.4], [[2.6, -0.35]]),
              ([-2.2, 0.05, 3.3], [[0.7, 1.9]])]
CLIP_BITS = {
    "float16": ["e23179bbbc3e443c88b9", "20a777bb563fd63b6fb9", "ce2f83bb8c3e1b3baebb"],
    "float32": ["da2f3c3ed80b6fbfc187d73f1c7a883f18f330bf",
                "18bae4bc12c26ebfd1d3ea3f06b47a3f0ad12dbf",
                "5e9df93d494270bf369bd13f0447633faeae75bf"],
    "float64": ["00000080fb85c73f000000007be1edbf00000020f8f0fa3f"
                "00000080430ff13f00000000631ee6bf",
                "0000000040979cbf0000004042d8edbf000000207a5afd3f"
                "000000c08056ef3f0000004021bae5bf",
                "00000080ac33bf3f000000204908eebf000000c06633fa3f"
                "00000080e068ec3f000000c0d5b5eebf"],
}


@pytest.mark.parametrize("dtype", sorted(CLIP_BITS))
def test_global_clipping_trajectory_bits(dtype):
    variables = [rmsprop.Variable(np.array(v), dtype=dtype, name=f"w{i}")
                 for i, v in enumerate(CLIP_INIT)]
    optimizer = rmsprop.RMSprop(learning_rate=0.1, rho=0.9, momentum=0.5, global_clipnorm=0.5)
    for grads, want in zip(CLIP_GRADS, CLIP_BITS[dtype]):
        optimizer.apply([np.array(g, dtype=dtype) for g in grads], variables)
        assert b"".join(v.numpy().tobytes() for v in variables).hex() == want
