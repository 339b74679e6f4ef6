"""Tests of the loss functions: values and gradients against numpy, gradchecks, shapes, dtypes."""

from __future__ import annotations

import numpy as np
import numpy_reference as ref
import pytest

import mlpfast
from mlpfast.gradcheck import eval_numerical_gradient, rel_error


def check_grad(fn, scores):
    """rel_error between fn's analytic gradient and a numeric one at ``scores``."""
    _, analytic = fn(scores)
    numeric = eval_numerical_gradient(lambda s: fn(s)[0], scores.copy())
    return rel_error(analytic, numeric)


# --------------------------------------------------------------------------- softmax
def test_softmax_matches_numpy(rng):
    s = rng.standard_normal((7, 4))
    y = rng.integers(0, 4, 7)
    loss, ds = mlpfast.softmax_loss(s, y)
    ref_loss, ref_ds = ref.softmax_loss(s, y)
    assert isinstance(loss, float)
    assert loss == pytest.approx(ref_loss, rel=1e-13)
    assert ds.shape == s.shape and ds.dtype == np.float64
    np.testing.assert_allclose(ds, ref_ds, rtol=1e-12, atol=1e-15)


def test_softmax_uniform_scores_give_log_c():
    loss, ds = mlpfast.softmax_loss(np.zeros((3, 5)), [0, 1, 4])
    assert loss == pytest.approx(np.log(5.0), rel=1e-14)
    np.testing.assert_allclose(ds.sum(axis=1), 0.0, atol=1e-16)


def test_softmax_gradcheck(rng):
    s = rng.standard_normal((6, 5))
    y = rng.integers(0, 5, 6)
    assert check_grad(lambda v: mlpfast.softmax_loss(v, y), s) < 1e-7


def test_softmax_is_stable_for_huge_scores():
    loss, ds = mlpfast.softmax_loss(np.array([[1000.0, 0.0], [-1000.0, 1000.0]]), [0, 0])
    assert np.isfinite(loss) and np.all(np.isfinite(ds))
    assert loss == pytest.approx(1000.0, rel=1e-12)  # row 0 contributes 0, row 1 contributes 2000


# --------------------------------------------------------------------------- svm
def test_svm_matches_numpy(rng):
    s = 3 * rng.standard_normal((8, 4))
    y = rng.integers(0, 4, 8)
    assert np.min(np.abs(ref.svm_margins(s, y))) > 1e-3  # off the hinge kinks
    loss, ds = mlpfast.svm_loss(s, y)
    ref_loss, ref_ds = ref.svm_loss(s, y)
    assert loss == pytest.approx(ref_loss, rel=1e-13)
    np.testing.assert_allclose(ds, ref_ds, rtol=1e-13, atol=1e-15)


def test_svm_custom_margin(rng):
    s = 3 * rng.standard_normal((8, 4))
    y = rng.integers(0, 4, 8)
    loss, ds = mlpfast.svm_loss(s, y, margin=2.5)
    ref_loss, ref_ds = ref.svm_loss(s, y, margin=2.5)
    assert loss == pytest.approx(ref_loss, rel=1e-13)
    np.testing.assert_allclose(ds, ref_ds, rtol=1e-13, atol=1e-15)


def test_svm_gradcheck_away_from_kinks(rng):
    s = 3 * rng.standard_normal((6, 4))
    y = rng.integers(0, 4, 6)
    assert np.min(np.abs(ref.svm_margins(s, y))) > 1e-3
    assert check_grad(lambda v: mlpfast.svm_loss(v, y), s) < 1e-7


def test_svm_zero_margin_is_not_counted():
    # s_1 - s_0 + 1 == 0 exactly: the hinge is at its kink, which counts as inactive.
    loss, ds = mlpfast.svm_loss(np.array([[1.0, 0.0]]), [0])
    assert loss == 0.0
    np.testing.assert_array_equal(ds, [[0.0, 0.0]])
    # Slightly positive: counted, gradient +1 on j, -1 on y (divided by N=1).
    loss, ds = mlpfast.svm_loss(np.array([[1.0, 0.5]]), [0])
    assert loss == pytest.approx(0.5)
    np.testing.assert_array_equal(ds, [[-1.0, 1.0]])


def test_svm_lecture_example():
    # cs231n's three-example SVM: losses 2.9, 0, 12.9 -> mean 5.27 (columns are examples there).
    s = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])
    loss, _ = mlpfast.svm_loss(s, [0, 1, 2])
    assert loss == pytest.approx((2.9 + 0.0 + 12.9) / 3, rel=1e-12)


# --------------------------------------------------------------------------- mse
def test_mse_matches_numpy(rng):
    p = rng.standard_normal((5, 3))
    t = rng.standard_normal((5, 3))
    loss, dp = mlpfast.mse_loss(p, t)
    assert loss == pytest.approx(np.mean((p - t) ** 2), rel=1e-13)  # mean over all N*K
    np.testing.assert_allclose(dp, 2 * (p - t) / 15, rtol=1e-13)


def test_mse_gradcheck(rng):
    p = rng.standard_normal((6, 2))
    t = rng.standard_normal((6, 2))
    assert check_grad(lambda v: mlpfast.mse_loss(v, t), p) < 1e-7


# --------------------------------------------------------------------------- bce
@pytest.mark.parametrize(
    ("logit_shape", "y_shape"),
    [((6,), (6,)), ((6, 1), (6, 1)), ((6, 1), (6,)), ((6, 3), (6, 3))],
)
def test_bce_matches_numpy_and_shapes(rng, logit_shape, y_shape):
    z = 2 * rng.standard_normal(logit_shape)
    y = rng.integers(0, 2, y_shape)
    loss, dz = mlpfast.bce_loss(z, y)
    assert dz.shape == z.shape
    z2 = z.reshape(6, -1)
    ref_loss, ref_dz = ref.bce_loss(z2, y.reshape(z2.shape))
    assert loss == pytest.approx(ref_loss, rel=1e-13)  # mean over rows of row sums
    np.testing.assert_allclose(dz.reshape(z2.shape), ref_dz, rtol=1e-12, atol=1e-16)


def test_bce_multilabel_sums_over_outputs(rng):
    # Loss is the mean over ROWS of the per-row sum, not the mean over all elements.
    z = np.zeros((4, 3))
    loss, dz = mlpfast.bce_loss(z, np.ones((4, 3)))
    assert loss == pytest.approx(3 * np.log(2.0), rel=1e-14)
    np.testing.assert_allclose(dz, -0.5 / 4, rtol=1e-14)


@pytest.mark.parametrize("shape", [(6,), (6, 1), (6, 3)])
def test_bce_gradcheck(rng, shape):
    z = 2 * rng.standard_normal(shape)
    y = rng.integers(0, 2, shape).astype(np.float64)
    assert check_grad(lambda v: mlpfast.bce_loss(v, y), z) < 1e-7


def test_bce_is_stable_for_huge_logits():
    loss, dz = mlpfast.bce_loss(np.array([1000.0, -1000.0, 1000.0]), np.array([1.0, 0.0, 0.0]))
    assert np.isfinite(loss) and np.all(np.isfinite(dz))
    assert loss == pytest.approx(1000.0 / 3, rel=1e-12)


# --------------------------------------------------------------------------- dtypes
@pytest.mark.parametrize(
    ("fn", "make_y"),
    [
        (mlpfast.softmax_loss, lambda rng: rng.integers(0, 4, 5)),
        (mlpfast.svm_loss, lambda rng: rng.integers(0, 4, 5)),
        (mlpfast.mse_loss, lambda rng: rng.standard_normal((5, 4))),
        (mlpfast.bce_loss, lambda rng: rng.integers(0, 2, (5, 4))),
    ],
    ids=["softmax", "svm", "mse", "bce"],
)
def test_float32_scores_give_float32_gradient(rng, fn, make_y):
    s64 = rng.standard_normal((5, 4))
    y = make_y(rng)
    s32 = s64.astype(np.float32)
    loss32, d32 = fn(s32, y)
    loss64, d64 = fn(s32.astype(np.float64), y)
    assert isinstance(loss32, float)
    assert d32.dtype == np.float32 and d64.dtype == np.float64
    assert loss32 == pytest.approx(loss64, rel=1e-5)
    np.testing.assert_allclose(d32, d64, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("w", [1e30, 3e38, 1e-30, 1e-45])
def test_l2_penalty_squares_in_float64(w):
    # ½λ‖W‖² is a float64: a float32 weight's square must not overflow (or vanish) first.
    model = mlpfast.MLP([2, 1], loss="mse", dtype="float32", seed=0)
    model.param_layers[0].weight = [[w], [0.5]]
    weights = model.param_layers[0].weight.astype(np.float64)
    expected = 0.5 * 0.5 * float(np.sum(weights * weights))
    np.testing.assert_allclose(model.l2_penalty(0.5), expected, rtol=1e-12)
    assert model.l2_penalty(0.0) == 0.0
    X = np.zeros((1, 2), dtype=np.float32)
    data_loss = model.loss(X, [[0.0]])[0]
    np.testing.assert_allclose(model.loss(X, [[0.0]], weight_decay=0.5)[0] - data_loss, expected)


@pytest.mark.parametrize(
    ("loss", "args", "name"),
    [
        (mlpfast.mse_loss, (np.zeros((1, 0)), np.zeros((1, 0))), "pred"),
        (mlpfast.bce_loss, (np.zeros((2, 0)), np.zeros((2, 0))), "logits"),
        (mlpfast.softmax_loss, (np.zeros((1, 0)), [0]), "scores"),
        (mlpfast.svm_loss, (np.zeros((1, 0)), [0]), "scores"),
    ],
    ids=["mse", "bce", "softmax", "svm"],
)
def test_a_loss_over_no_columns_is_refused(loss, args, name):
    # The mean over no elements would be 0/0 = NaN (or a silent 0).
    with pytest.raises(ValueError, match=rf"^{name}: expected at least one column, got 0 columns"):
        loss(*args)


# --------------------------------------------------------------------------- huber, mae, poisson
def regression_problem(rng, loss):
    model = mlpfast.MLP([3, 5, 2], loss=loss, dtype="float64", seed=0)
    X = 2.0 * rng.standard_normal((9, 3))
    if loss == "poisson":
        y = rng.poisson(1.5, (9, 2)).astype(np.float64)
    else:
        y = 2.0 * rng.standard_normal((9, 2))
    return model, X, y


@pytest.mark.parametrize("loss", ["huber", "mae", "poisson"])
def test_regression_losses_are_pytorchs(rng, loss):
    # HuberLoss(delta=1), L1Loss and PoissonNLLLoss(log_input=True, full=False): the mean
    # over every element, in value and in the gradient with respect to the scores.
    torch = pytest.importorskip("torch")
    model, X, y = regression_problem(rng, loss)
    scores = model.forward(X)
    value, _ = model.loss(X, y)
    f = torch.tensor(scores, requires_grad=True)
    fn = {
        "huber": torch.nn.HuberLoss(delta=1.0),
        "mae": torch.nn.L1Loss(),
        "poisson": torch.nn.PoissonNLLLoss(log_input=True, full=False),
    }[loss]
    expected = fn(f, torch.from_numpy(y))
    expected.backward()
    assert value == pytest.approx(expected.item(), rel=1e-12)
    # The gradient: the numpy reference's (which MLP.loss's parameter gradients match, in
    # test_mlp_gradcheck) is PyTorch's.
    _, ref_grad = ref.loss_fn(loss, scores, y)
    np.testing.assert_allclose(ref_grad, f.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_huber_has_both_branches_and_mae_is_zero_sloped_at_zero():
    # Worked numbers: residuals 0.5 (quadratic side), -3 (linear side), 0.
    p = np.array([[0.5, -3.0, 2.0]])
    t = np.array([[0.0, 0.0, 2.0]])
    value, grad = ref.huber_loss(p, t)
    assert value == pytest.approx((0.125 + 2.5 + 0.0) / 3)
    np.testing.assert_array_equal(grad, [[0.5 / 3, -1 / 3, 0.0]])
    model = mlpfast.MLP([3, 3], activation="identity", loss="huber", dtype="float64", seed=0)
    model.param_layers[0].weight = np.eye(3)
    model.param_layers[0].bias = np.zeros(3)
    assert model.loss(p, t)[0] == pytest.approx(value, rel=1e-15)
    model = mlpfast.MLP([3, 3], activation="identity", loss="mae", dtype="float64", seed=0)
    model.param_layers[0].weight = np.eye(3)
    model.param_layers[0].bias = np.zeros(3)
    loss, grads = model.loss(p, t)
    assert loss == pytest.approx((0.5 + 3.0 + 0.0) / 3)
    # dL/db = sign(p - t) / 3, with sign(0) = 0 as PyTorch's L1Loss.
    np.testing.assert_array_equal(grads[0][1], [1 / 3, -1 / 3, 0.0])


def test_poisson_predicts_the_mean_and_scores_it(rng):
    model, X, y = regression_problem(rng, "poisson")
    np.testing.assert_allclose(model.predict(X), np.exp(model.forward(X)), rtol=1e-15)
    mean = np.exp(model.forward(X))
    r2 = np.mean(
        [
            1 - np.sum((y[:, j] - mean[:, j]) ** 2) / np.sum((y[:, j] - y[:, j].mean()) ** 2)
            for j in range(2)
        ]
    )
    assert model.score(X, y) == pytest.approx(r2, rel=1e-12)
    with pytest.raises(ValueError, match=r"^y: expected targets >= 0 for the poisson loss, got -1"):
        model.fit(X, -np.ones_like(y), epochs=1)
    with pytest.raises(ValueError, match="predict_proba"):
        model.predict_proba(X)
    # Finite outputs whose means e^output overflow are refused, not returned as inf.
    big = mlpfast.MLP([3, 2], loss="poisson", dtype="float32", seed=0)
    big.param_layers[0].bias = [100.0, 0.0]
    with pytest.raises(ValueError, match="predicted means e\\^output for X overflow float32"):
        big.predict(X)
    # A fit learns: the held-out R² of a log-linear count model rises well above 0.
    Xl = rng.standard_normal((400, 3))
    yl = rng.poisson(np.exp(0.8 * Xl[:, :2])).astype(np.float64)
    fitted = mlpfast.MLP([3, 16, 2], loss="poisson", dtype="float64", seed=1)
    fitted.fit(Xl[:300], yl[:300], epochs=60, optimizer="adam", lr=0.01, seed=0)
    assert fitted.score(Xl[300:], yl[300:]) > 0.3
