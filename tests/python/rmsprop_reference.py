"""A plain, independent RMSprop written from Keras 3's formulas, one line per formula.

Used as the oracle by the new test files. It deliberately shares no code with
the engine: no flat buffers, no chunking, no in-place kernels, just the
formulas applied tensor by tensor.

`dtype` is the variables' dtype (gradient preprocessing -- loss-scale division,
accumulation, clipping -- runs in it); `compute` is the dtype the update, the
weight decay and the EMA run in (the engine computes float64 variables in
floatx unless floatx is float64). By default compute == dtype.
"""

import numpy as np

import rmsprop
from rmsprop.config import floatx_scope


# The tests' name for the engine's temporary-floatx helper.
floatx_as = floatx_scope


def stored_rate(value):
    """A numeric learning rate as the optimizer stores it: in a floatx scalar."""
    return float(np.dtype(rmsprop.floatx()).type(value))


class ReferenceRMSprop:
    def __init__(self, values, *, dtype="float64", compute=None, learning_rate=0.001, rho=0.9,
                 momentum=0.0, epsilon=1e-7, centered=False, weight_decay=None,
                 decay_mask=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 loss_scale_factor=None, gradient_accumulation_steps=None):
        self.dt = np.dtype(dtype).type
        self.ct = np.dtype(compute or dtype).type
        self.vars = [np.array(v, dtype=self.dt) for v in values]
        # learning_rate: a float, or a function of the raw iteration count.
        self.learning_rate = learning_rate
        self.rho, self.momentum, self.epsilon, self.centered = rho, momentum, epsilon, centered
        self.weight_decay = weight_decay
        self.decay_mask = decay_mask or [True] * len(self.vars)
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.use_ema, self.ema_momentum = use_ema, ema_momentum
        self.ema_overwrite_frequency = ema_overwrite_frequency
        self.loss_scale_factor = loss_scale_factor
        self.k = gradient_accumulation_steps or None
        zeros = lambda t: [np.zeros(np.shape(v), dtype=t) for v in self.vars]  # noqa: E731
        self.velocity = zeros(self.ct)
        self.average_gradient = zeros(self.ct)
        self.momentum_slot = zeros(self.ct)
        self.average = zeros(self.ct)
        self.accumulator = zeros(self.dt)
        self.raw = 0

    @property
    def iterations(self):
        return self.raw // self.k if self.k else self.raw

    def rate(self):
        lr = self.learning_rate
        return float(lr(self.raw)) if callable(lr) else float(lr)

    def finalize(self):
        if self.use_ema:
            self.vars = [a.astype(self.dt) for a in self.average]

    def step(self, grads):
        dt, ct = self.dt, self.ct
        present = [i for i, g in enumerate(grads) if g is not None]
        assert present, "the reference needs at least one gradient"
        g = {i: np.array(grads[i], dtype=dt) for i in present}

        if self.loss_scale_factor is not None:
            for i in present:
                g[i] = g[i] / dt(self.loss_scale_factor)

        update = True
        if self.k:
            update = (self.raw + 1) % self.k == 0
            for i in present:
                if update:
                    g[i] = (g[i] + self.accumulator[i]) / dt(self.k)
                else:
                    self.accumulator[i] = self.accumulator[i] + g[i]

        if update:
            if self.clipnorm is not None:
                c = dt(self.clipnorm)
                for i in present:
                    n = np.sqrt(np.sum(g[i] * g[i]))
                    g[i] = g[i] * c / np.maximum(n, c)
            elif self.global_clipnorm is not None:
                # Keras' clip_by_global_norm on its NumPy backend: ops.square
                # converts float64 to float32 (dtypes.result_type), unless the
                # optimizer computes in float64; the product g * scale is NumPy's.
                squash = dt is np.float64 and ct is not np.float64
                sums = [np.sum(np.square(g[i].astype(np.float32) if squash else g[i]))
                        for i in present]
                nt = np.result_type(*[s.dtype for s in sums]).type
                n = np.sqrt(np.sum(np.array(sums, dtype=nt)))
                with np.errstate(divide="ignore", invalid="ignore"):
                    scale = nt(self.global_clipnorm) * np.minimum(
                        nt(1) / n, nt(1.0 / self.global_clipnorm)) + (n - n)
                for i in present:
                    product = np.promote_types(dt, nt)
                    g[i] = (g[i].astype(product) * product.type(scale)).astype(dt)
            elif self.clipvalue is not None:
                c = dt(self.clipvalue)
                for i in present:
                    g[i] = np.clip(g[i], -c, c)

            x = {i: self.vars[i].astype(ct) for i in present}
            if self.weight_decay is not None:
                for i in present:
                    if self.decay_mask[i]:
                        x[i] = x[i] - x[i] * ct(self.weight_decay) * ct(self.rate())

            lr, rho, eps, mom = ct(self.rate()), ct(self.rho), ct(self.epsilon), ct(self.momentum)
            one_minus_rho = ct(1 - self.rho)
            for i in present:
                gi = g[i].astype(ct)
                self.velocity[i] = rho * self.velocity[i] + one_minus_rho * (gi * gi)
                if self.centered:
                    self.average_gradient[i] = rho * self.average_gradient[i] + one_minus_rho * gi
                    average = self.average_gradient[i]
                    denominator = (self.velocity[i] - average * average) + eps
                else:
                    denominator = self.velocity[i] + eps
                increment = (lr * gi) / np.sqrt(denominator)
                if self.momentum > 0:
                    self.momentum_slot[i] = mom * self.momentum_slot[i] + increment
                    x[i] = x[i] - self.momentum_slot[i]
                else:
                    x[i] = x[i] - increment
                self.vars[i] = x[i].astype(dt)
            if self.k:
                self.accumulator = [np.zeros_like(a) for a in self.accumulator]

        if self.use_ema:
            iterations = self.iterations
            m = ct(self.ema_momentum) if iterations != 0 else ct(0)
            for i, var in enumerate(self.vars):
                self.average[i] = m * self.average[i] + (ct(1) - m) * var.astype(ct)
            freq = self.ema_overwrite_frequency
            if freq is not None and (iterations + 1) % freq == 0:
                self.vars = [a.astype(dt) for a in self.average]

        self.raw += 1


TOLERANCE = {"float16": 2e-3, "float32": 2e-6, "float64": 1e-12}


def assert_close(actual, expected, dtype, what=""):
    """Relative tolerance per dtype, with an absolute floor scaled by the magnitude."""
    tolerance = TOLERANCE[np.dtype(dtype).name]
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    finite = expected[np.isfinite(expected)]
    scale = max(1.0, float(np.max(np.abs(finite), initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=tolerance, atol=tolerance * scale,
                               equal_nan=True, err_msg=what)
