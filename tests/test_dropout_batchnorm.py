"""Dropout and BatchNorm as stand-alone layers (issue 12, the layer API part).

BatchNorm is checked against a numpy reference written here (always) and against PyTorch's
``BatchNorm1d`` (when torch is installed), over several training steps and then evaluation:
forward, backward (dx, dgamma, dbeta) and running statistics, to 1e-10 in float64; and by
centered differences in both modes. Dropout is checked for its statistics (keep rate within
binomial bounds, mean kept, scale exactly 1/(1 - p)), its masks (new on every training
forward, the same for the same seed, replayed by backward) and by centered differences with
its mask fixed (``check_layer`` replays the step of the first forward).
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import mlpfast
from mlpfast.gradcheck import check_layer, eval_numerical_gradient_array, rel_error


# ------------------------------------------------------------------- numpy reference
class NumpyBatchNorm:
    """PyTorch's BatchNorm1d, written out: biased batch variance to normalize, unbiased
    variance in the running estimate."""

    def __init__(self, c, momentum=0.1, eps=1e-5):
        self.gamma, self.beta = np.ones(c), np.zeros(c)
        self.running_mean, self.running_var = np.zeros(c), np.ones(c)
        self.momentum, self.eps = momentum, eps

    def forward(self, x, training):
        if training:
            n = x.shape[0]
            mu = x.mean(axis=0)
            var = ((x - mu) ** 2).mean(axis=0)
            m = self.momentum
            self.running_mean = (1 - m) * self.running_mean + m * mu
            self.running_var = (1 - m) * self.running_var + m * var * n / (n - 1)
        else:
            mu, var = self.running_mean, self.running_var
        self.inv = 1.0 / np.sqrt(var + self.eps)
        self.xhat = (x - mu) * self.inv
        self.training = training
        return self.gamma * self.xhat + self.beta

    def backward(self, g):
        dbeta = g.sum(axis=0)
        dgamma = (g * self.xhat).sum(axis=0)
        if self.training:
            n = g.shape[0]
            dx = self.gamma * self.inv * (g - dbeta / n - self.xhat * dgamma / n)
        else:
            dx = self.gamma * self.inv * g
        return dx, dgamma, dbeta


def run_steps(layer, ref, rng, c, steps=4, evals=2, n=9):
    """Feeds the same batches to `layer` and `ref` (train steps, then eval ones) and
    returns the largest absolute deviation seen in each quantity."""
    worst = dict.fromkeys(["out", "dx", "dgamma", "dbeta", "running_mean", "running_var"], 0.0)

    def dev(key, a, b):
        worst[key] = max(worst[key], float(np.max(np.abs(np.asarray(a) - np.asarray(b)))))

    for step in range(steps + evals):
        training = step < steps
        layer.train(training)
        x = rng.standard_normal((n, c)) * rng.uniform(0.5, 3.0, c) + rng.uniform(-2, 2, c)
        g = rng.standard_normal((n, c))
        out_ref = ref.forward(x, training)
        dev("out", layer.forward(x), out_ref)
        dx_ref, dgamma_ref, dbeta_ref = ref.backward(g)
        dev("dx", layer.backward(g), dx_ref)
        dev("dgamma", layer.grad_weight, dgamma_ref)
        dev("dbeta", layer.grad_bias, dbeta_ref)
        dev("running_mean", layer.running_mean, ref.running_mean)
        dev("running_var", layer.running_var, ref.running_var)
    return worst


@pytest.mark.parametrize("momentum", [0.1, 0.5, 1.0, 0.0])
def test_batchnorm_equals_the_numpy_reference(rng, momentum):
    c = 5
    layer = mlpfast.BatchNorm(c, momentum=momentum, eps=1e-3, dtype="float64")
    ref = NumpyBatchNorm(c, momentum=momentum, eps=1e-3)
    ref.gamma, ref.beta = rng.standard_normal(c), rng.standard_normal(c)
    layer.weight, layer.bias = ref.gamma, ref.beta
    worst = run_steps(layer, ref, rng, c)
    assert max(worst.values()) < 1e-10, worst


def test_batchnorm_equals_torch_batchnorm1d(rng):
    torch = pytest.importorskip("torch")
    c, momentum, eps = 6, 0.2, 1e-5
    tbn = torch.nn.BatchNorm1d(c, momentum=momentum, eps=eps, dtype=torch.float64)
    layer = mlpfast.BatchNorm(c, momentum=momentum, eps=eps, dtype="float64")
    with torch.no_grad():
        tbn.weight.copy_(torch.from_numpy(rng.standard_normal(c)))
        tbn.bias.copy_(torch.from_numpy(rng.standard_normal(c)))
    layer.weight = tbn.weight.detach().numpy()
    layer.bias = tbn.bias.detach().numpy()

    class TorchRef:
        def forward(self, x, training):
            tbn.train(training)
            tbn.zero_grad()
            self.x = torch.tensor(x, requires_grad=True)
            self.out = tbn(self.x)
            self.running_mean = tbn.running_mean.numpy().copy()
            self.running_var = tbn.running_var.numpy().copy()
            return self.out.detach().numpy()

        def backward(self, g):
            self.out.backward(torch.from_numpy(g))
            return (
                self.x.grad.numpy(),
                tbn.weight.grad.numpy().copy(),
                tbn.bias.grad.numpy().copy(),
            )

    worst = run_steps(layer, TorchRef(), rng, c, steps=5, evals=2)
    assert max(worst.values()) < 1e-10, worst


def test_batchnorm_defaults_and_views():
    bn = mlpfast.BatchNorm(3)
    assert (bn.features, bn.num_features, bn.dtype) == (3, 3, "float32")
    assert (bn.momentum, bn.eps, bn.training) == (0.1, 1e-5, True)
    np.testing.assert_array_equal(bn.weight, 1.0)
    np.testing.assert_array_equal(bn.bias, 0.0)
    np.testing.assert_array_equal(bn.running_mean, 0.0)
    np.testing.assert_array_equal(bn.running_var, 1.0)
    for name in ("weight", "bias", "running_mean", "running_var", "grad_weight", "grad_bias"):
        arr = getattr(bn, name)
        assert arr.shape == (3,) and arr.dtype == np.float32, name
    # The views are live: writes change the layer, a training forward shows in them.
    rm = bn.running_mean
    bn.forward(np.array([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]]))
    np.testing.assert_allclose(rm, [0.2, 0.3, 0.4], rtol=1e-6)
    bn.weight[1] = 5.0
    assert bn.weight[1] == 5.0
    rv = bn.running_var
    bn.running_var = [2.0, 3.0, 4.0]  # assignment copies into the memory views show
    np.testing.assert_array_equal(rv, [2.0, 3.0, 4.0])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_batchnorm_keeps_its_dtype_and_float32_is_close(rng, dtype):
    bn = mlpfast.BatchNorm(4, dtype=dtype)
    ref = NumpyBatchNorm(4)
    x = rng.standard_normal((16, 4)) * 3 + 1
    out = bn.forward(x)
    assert out.dtype == np.dtype(dtype)
    assert bn.backward(np.ones((16, 4))).dtype == np.dtype(dtype)
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(out, ref.forward(x, True), atol=tol)


def test_batchnorm_training_needs_two_rows():
    bn = mlpfast.BatchNorm(3, dtype="float64")
    with pytest.raises(ValueError, match=r"x: expected shape \(N, 3\) with N >= 2.*got \(1, 3\)"):
        bn.forward(np.ones((1, 3)))
    np.testing.assert_array_equal(bn.running_mean, 0.0)  # unchanged
    # Evaluation normalizes one row by the running statistics.
    out = bn.eval().forward(np.full((1, 3), 2.0))
    np.testing.assert_allclose(out, 2.0 / np.sqrt(1.0 + 1e-5))


# ------------------------------------------------------------------------ gradcheck
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_gradcheck(rng, training):
    bn = mlpfast.BatchNorm(4, momentum=0.3, dtype="float64")
    bn.weight = rng.standard_normal(4)
    bn.bias = rng.standard_normal(4)
    bn.running_mean = rng.standard_normal(4)
    bn.running_var = rng.uniform(0.5, 2.0, 4)
    bn.train(training)
    x = rng.standard_normal((7, 4)) * 2 + 0.5
    errors = check_layer(bn, x)
    assert set(errors) == {"x", "weight", "bias"}
    assert max(errors.values()) < 1e-7, errors


@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_dropout_gradcheck_with_the_mask_fixed(rng, p):
    drop = mlpfast.Dropout(p, seed=3)
    x = rng.standard_normal((6, 5))
    errors = check_layer(drop, x)
    assert errors["x"] < 1e-7, errors
    # The same property without finite differences: dx = dout * out / x, elementwise.
    out = drop.forward(x)
    g = rng.standard_normal(x.shape)
    np.testing.assert_allclose(drop.backward(g), g * out / x, rtol=1e-14)


def test_dropout_numeric_gradient_by_hand(rng):
    # What check_layer does, spelled out: fixing `step` before each forward fixes the mask.
    drop = mlpfast.Dropout(0.4, seed=11)
    x = rng.standard_normal((4, 6))
    drop.step = 7
    drop.forward(x)
    g = rng.standard_normal(x.shape)
    dx = drop.backward(g)

    def f(xx):
        drop.step = 7
        return drop.forward(xx)

    assert rel_error(dx, eval_numerical_gradient_array(f, x.copy(), g)) < 1e-9


# ------------------------------------------------------------------------- dropout
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_statistics(dtype, p):
    drop = mlpfast.Dropout(p, seed=2024)
    n, c = 500, 200
    x = np.full((n, c), 1.5, dtype=dtype)
    y = drop.forward(x)
    assert y.dtype == dtype and y.shape == x.shape
    kept = y != 0
    # Kept units are scaled by exactly 1/(1 - p) (in the input's dtype).
    scale = dtype(1.0 / (1.0 - p))
    np.testing.assert_array_equal(y[kept], dtype(1.5) * scale)
    # The number kept is Binomial(n c, 1 - p): within 5 standard deviations.
    total = n * c
    sd = np.sqrt(total * p * (1 - p))
    assert abs(kept.sum() - total * (1 - p)) < 5 * sd
    # The mean is kept: E[y] = x, within 5 standard errors.
    se = 1.5 * scale * sd / total
    assert abs(y.astype(np.float64).mean() - 1.5) < 5 * se
    # Every row and column has its share of kept units (no stripes).
    assert abs(kept.mean(axis=0) - (1 - p)).max() < 6 * np.sqrt(p * (1 - p) / n)
    assert abs(kept.mean(axis=1) - (1 - p)).max() < 6 * np.sqrt(p * (1 - p) / c)


def test_dropout_masks_differ_across_forwards_and_repeat_across_seeds():
    x = np.ones((20, 30))
    a, b = mlpfast.Dropout(0.5, seed=5), mlpfast.Dropout(0.5, seed=5)
    masks_a = [a.forward(x) != 0 for _ in range(3)]
    masks_b = [b.forward(x) != 0 for _ in range(3)]
    assert a.step == b.step == 3
    for ma, mb in zip(masks_a, masks_b):
        np.testing.assert_array_equal(ma, mb)  # the same seed, the same masks
    assert not np.array_equal(masks_a[0], masks_a[1])
    assert not np.array_equal(masks_a[1], masks_a[2])
    other = mlpfast.Dropout(0.5, seed=6).forward(x) != 0
    assert not np.array_equal(other, masks_a[0])
    # Backward uses the mask of the last forward.
    g = np.arange(600.0).reshape(20, 30)
    np.testing.assert_array_equal(a.backward(g) != 0, masks_a[2] & (g != 0))
    # Without a seed, two layers draw different seeds.
    assert mlpfast.Dropout().seed != mlpfast.Dropout().seed


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_is_the_identity_in_evaluation(rng, dtype):
    drop = mlpfast.Dropout(0.7, seed=1).eval()
    x = rng.standard_normal((5, 4)).astype(dtype)
    y = drop.forward(x)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, x)
    assert drop.step == 0  # evaluation draws no mask
    g = rng.standard_normal((5, 4)).astype(dtype)
    np.testing.assert_array_equal(drop.backward(g), g)
    # p = 0 is the identity in training too.
    np.testing.assert_array_equal(mlpfast.Dropout(0.0).forward(x), x)


def test_dropout_defaults_and_repr():
    drop = mlpfast.Dropout(seed=0)
    assert (drop.p, drop.seed, drop.step, drop.training) == (0.5, 0, 0, True)
    assert repr(drop) == "Dropout(p=0.5)"
    assert mlpfast.Dropout(0.25).p == 0.25


# ------------------------------------------------------------------ train() / eval()
LAYERS = {
    "Linear": lambda: mlpfast.Linear(3, 3, dtype="float64", seed=0),
    "Maxout": lambda: mlpfast.Maxout(3, 3, dtype="float64", seed=0),
    "Identity": mlpfast.Identity,
    "Sigmoid": mlpfast.Sigmoid,
    "Tanh": mlpfast.Tanh,
    "ReLU": mlpfast.ReLU,
    "LeakyReLU": lambda: mlpfast.LeakyReLU(0.2),
    "ELU": lambda: mlpfast.ELU(0.5),
    "Dropout": lambda: mlpfast.Dropout(0.5, seed=0),
    "BatchNorm": lambda: mlpfast.BatchNorm(3, dtype="float64"),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_train_and_eval_on_every_layer(rng, name):
    layer = LAYERS[name]()
    assert layer.training is True
    assert layer.eval() is layer and layer.training is False
    assert layer.train() is layer and layer.training is True
    assert layer.train(False) is layer and layer.training is False
    assert layer.train(mode=True).training is True
    with pytest.raises(TypeError, match=r"mode: expected a bool, got 1 \(int\)"):
        layer.train(1)
    assert layer.training is True
    x = rng.standard_normal((4, 3))
    if name not in ("Dropout", "BatchNorm"):
        # The other layers compute the same in both modes.
        y_train = layer.forward(x)
        np.testing.assert_array_equal(layer.eval().forward(x), y_train)


# ----------------------------------------------------------------------------- pickle
def test_batchnorm_pickles_with_its_running_statistics_and_mode(rng):
    bn = mlpfast.BatchNorm(4, momentum=0.25, eps=1e-3, dtype="float64")
    bn.weight = rng.standard_normal(4)
    bn.bias = rng.standard_normal(4)
    for _ in range(3):
        bn.forward(rng.standard_normal((8, 4)))
    for training in (True, False):
        bn.train(training)
        for clone in (lambda m: pickle.loads(pickle.dumps(m)), copy.deepcopy):
            back = clone(bn)
            assert type(back) is mlpfast.BatchNorm and repr(back) == repr(bn)
            assert back.training is training
            assert (back.momentum, back.eps, back.dtype) == (0.25, 1e-3, "float64")
            for name in ("weight", "bias", "running_mean", "running_var"):
                np.testing.assert_array_equal(getattr(back, name), getattr(bn, name))
            x = rng.standard_normal((5, 4))
            np.testing.assert_array_equal(back.forward(x), bn.forward(x))
            # In training both moved their running statistics alike.
            np.testing.assert_array_equal(back.running_var, bn.running_var)


def test_dropout_pickles_with_its_seed_step_and_mode():
    drop = mlpfast.Dropout(0.3, seed=42)
    x = np.ones((6, 7), dtype=np.float32)
    drop.forward(x)
    back = pickle.loads(pickle.dumps(drop))
    assert (back.p, back.seed, back.step, back.training) == (0.3, 42, 1, True)
    np.testing.assert_array_equal(back.forward(x), drop.forward(x))  # the same next mask
    drop.eval()
    assert copy.deepcopy(drop).training is False


@pytest.mark.parametrize("name", list(LAYERS))
def test_every_layer_pickles_its_mode(name):
    layer = LAYERS[name]().eval()
    back = pickle.loads(pickle.dumps(layer))
    assert type(back) is type(layer) and repr(back) == repr(layer)
    assert back.training is False
    assert pickle.loads(pickle.dumps(layer.train())).training is True


# -------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("make", "arg", "exc"),
    [
        (lambda: mlpfast.Dropout(1.0), r"p: expected a number in \[0, 1\).*got 1", ValueError),
        (lambda: mlpfast.Dropout(-0.1), r"p: expected .*got -0.1", ValueError),
        (lambda: mlpfast.Dropout(float("nan")), r"p: expected .*got NaN", ValueError),
        (lambda: mlpfast.Dropout("0.5"), r"p: expected", TypeError),
        (lambda: mlpfast.Dropout(0.5, seed=-1), r"seed: expected", ValueError),
        (lambda: mlpfast.BatchNorm(0), r"features: expected an int >= 1.*got 0", ValueError),
        (lambda: mlpfast.BatchNorm(2.0), r"features: expected", TypeError),
        (lambda: mlpfast.BatchNorm(3, momentum=1.5), r"momentum: expected .*got 1.5", ValueError),
        (lambda: mlpfast.BatchNorm(3, momentum=-0.1), r"momentum: expected", ValueError),
        (lambda: mlpfast.BatchNorm(3, eps=0.0), r"eps: expected a finite number > 0", ValueError),
        (lambda: mlpfast.BatchNorm(3, eps=float("inf")), r"eps: expected .*got inf", ValueError),
        (lambda: mlpfast.BatchNorm(3, dtype="float16"), r"dtype: expected", ValueError),
    ],
)
def test_bad_constructor_arguments(make, arg, exc):
    with pytest.raises(exc, match=arg):
        make()


def test_batchnorm_bad_input_leaves_it_unchanged():
    bn = mlpfast.BatchNorm(3, dtype="float64")
    with pytest.raises(ValueError, match="backward: called before forward"):
        bn.backward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"x: expected shape \(N, 3\), got \(2, 4\)"):
        bn.forward(np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"x: expected shape \(N, 3\), got \(3,\)"):
        bn.forward(np.ones(3))
    with pytest.raises(ValueError, match="x: expected finite values"):
        bn.forward(np.array([[1.0, np.nan, 2.0], [0.0, 1.0, 2.0]]))
    with pytest.raises(ValueError, match="x: expected at least one row"):
        bn.forward(np.zeros((0, 3)))
    with pytest.raises(TypeError, match="x: expected a numeric array"):
        bn.forward("abc")
    np.testing.assert_array_equal(bn.running_mean, 0.0)
    np.testing.assert_array_equal(bn.running_var, 1.0)
    bn.forward(np.arange(6.0).reshape(2, 3))
    with pytest.raises(ValueError, match=r"dout: expected shape \(2, 3\) \(the shape of forward"):
        bn.backward(np.ones((3, 3)))
    with pytest.raises(ValueError, match="dout: expected finite values"):
        bn.backward(np.full((2, 3), np.inf))
    assert bn.backward(np.ones((2, 3))).shape == (2, 3)  # still usable
    # Parameter assignments are checked.
    with pytest.raises(ValueError, match=r"weight: expected shape \(3,\), got \(4,\)"):
        bn.weight = np.ones(4)
    with pytest.raises(ValueError, match="bias: expected finite values"):
        bn.bias = [0.0, np.nan, 0.0]
    with pytest.raises(ValueError, match="running_var: expected values >= 0"):
        bn.running_var = [1.0, -1.0, 1.0]
    with pytest.raises(ValueError, match=r"running_mean: expected shape \(3,\)"):
        bn.running_mean = np.zeros((3, 1))
    np.testing.assert_array_equal(bn.weight, 1.0)


def test_dropout_bad_input_leaves_it_unchanged():
    drop = mlpfast.Dropout(0.5, seed=1)
    with pytest.raises(ValueError, match="backward: called before forward"):
        drop.backward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"x: expected shape \(N, features\), got \(3,\)"):
        drop.forward(np.ones(3))
    with pytest.raises(ValueError, match="x: expected finite values"):
        drop.forward(np.array([[1.0, np.inf]]))
    with pytest.raises(TypeError, match="x: expected"):
        drop.forward(np.full((2, 2), "a"))
    assert drop.step == 0  # no mask was drawn
    drop.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"dout: expected shape \(2, 3\) \(the shape of forward"):
        drop.backward(np.ones((2, 4)))
    with pytest.raises(ValueError, match="dout: expected finite values"):
        drop.backward(np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match=r"step: expected an int in \[0, 2\*\*64\)"):
        drop.step = -1
    with pytest.raises(TypeError, match="step: expected"):
        drop.step = 1.5
    assert drop.step == 1
    assert drop.backward(np.ones((2, 3))).shape == (2, 3)  # still usable
