"""mlpfast.sklearn.MLPRegressor: scikit-learn's squared error and Poisson loss, loss scale,
multi-output; mlpfast's huber and absolute_error."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
from sklearn.metrics import r2_score
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.preprocessing import StandardScaler

from mlpfast.sklearn import MLPRegressor


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    y = (y - y.mean()) / y.std()
    return X, y


def two_outputs(X, y):
    return np.stack([y, 0.5 * y + X[:, 2] - X[:, 0] ** 2], axis=1)


def quiet_fit(est, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, **kw)


def base(**kw):
    settings = {
        "hidden_layer_sizes": (16,),
        "solver": "sgd",
        "batch_size": 50,
        "shuffle": False,
        "max_iter": 60,
        "random_state": 0,
        "learning_rate_init": 0.01,
        "tol": 1e-3,
    }
    settings.update(kw)
    return settings


# --------------------------------------------------------------------------- same as sklearn
@pytest.mark.parametrize(
    "settings",
    [
        {"alpha": 1e-2},
        {"alpha": 1e-2, "early_stopping": True, "max_iter": 100},
        {"solver": "adam", "alpha": 1e-3},
        {"momentum": 0.0, "learning_rate": "invscaling", "learning_rate_init": 0.05},
    ],
    ids=["sgd", "early-stopping", "adam", "invscaling"],
)
def test_single_output_run_is_sklearns(diabetes, settings):
    X, y = diabetes
    kw = base(**settings)
    ours = quiet_fit(MLPRegressor(dtype="float64", **kw), X, y)
    ref = quiet_fit(SkMLPRegressor(**kw), X, y)
    if kw["solver"] == "adam":
        # Adam differs from scikit-learn's only in where epsilon sits; the stopping epoch,
        # decided by 1e-3 steps of the loss, may move by one.
        n = min(ours.n_iter_, ref.n_iter_)
        assert abs(ours.n_iter_ - ref.n_iter_) <= 1
        np.testing.assert_allclose(ours.loss_curve_[:n], ref.loss_curve_[:n], rtol=1e-3)
        np.testing.assert_allclose(ours.loss_curve_[:10], ref.loss_curve_[:10], rtol=1e-5)
        return
    assert ours.n_iter_ == ref.n_iter_
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-9)
    assert ours.loss_ == pytest.approx(ref.loss_, rel=1e-9)
    if kw.get("early_stopping"):
        np.testing.assert_allclose(ours.validation_scores_, ref.validation_scores_, rtol=1e-9)
        assert ours.best_validation_score_ == pytest.approx(ref.best_validation_score_)
        assert ours.n_iter_ < kw["max_iter"]  # stopped, best weights restored
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-4, atol=1e-6)


def test_multi_output_loss_scale_and_tol_are_sklearns(diabetes):
    # scikit-learn reports the squared error divided by the number of outputs and applies
    # tol on that scale; with alpha=0 mlpfast's run, loss curve and stopping epoch are its.
    X, y = diabetes
    Y = two_outputs(X, y)
    kw = base(alpha=0.0, max_iter=200, tol=1e-3)
    ours = quiet_fit(MLPRegressor(dtype="float64", **kw), X, Y)
    ref = quiet_fit(SkMLPRegressor(**kw), X, Y)
    assert ours.n_iter_ == ref.n_iter_ < 200
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-9)
    assert ours.best_loss_ == pytest.approx(ref.best_loss_, rel=1e-9)
    # The reported loss is half the mean squared error over all elements (the last epoch's
    # average over its batches, while the weights moved: close to the final one).
    pred = ours.predict(X)
    assert 0.5 * np.mean((pred - Y) ** 2) == pytest.approx(ours.loss_, rel=0.05)


def test_multi_output_with_alpha_is_sklearns(diabetes):
    # With alpha > 0 and several outputs, scikit-learn reports the data term divided by the
    # number of outputs plus the whole L2 term; its stopping rule watches that figure.
    X, y = diabetes
    Y = two_outputs(X, y)
    kw = base(alpha=3e-2, max_iter=200, tol=1e-3)
    ours = quiet_fit(MLPRegressor(dtype="float64", **kw), X, Y)
    ref = quiet_fit(SkMLPRegressor(**kw), X, Y)
    assert ours.n_iter_ == ref.n_iter_ < 200
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-9)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-8, atol=1e-10)


def test_lbfgs_run_is_sklearns(diabetes):
    X, y = diabetes
    kw = {"hidden_layer_sizes": (8,), "solver": "lbfgs", "alpha": 1e-2, "max_iter": 50}
    ours = quiet_fit(MLPRegressor(dtype="float64", random_state=0, **kw), X, y)
    ref = quiet_fit(SkMLPRegressor(random_state=0, **kw), X, y)
    assert ours.n_iter_ == ref.n_iter_
    assert ours.loss_ == pytest.approx(ref.loss_, rel=1e-6)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-5, atol=1e-7)


def test_partial_fit_and_warm_start_are_sklearns(diabetes):
    X, y = diabetes
    kw = base(max_iter=3)
    ours = MLPRegressor(dtype="float64", **kw)
    ref = SkMLPRegressor(**kw)
    for _ in range(4):
        ours.partial_fit(X, y)
        ref.partial_fit(X, y)
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-9)
    ours = MLPRegressor(dtype="float64", warm_start=True, **kw)
    ref = SkMLPRegressor(warm_start=True, **kw)
    for _ in range(3):
        quiet_fit(ours, X, y)
        quiet_fit(ref, X, y)
    assert len(ours.loss_curve_) == 9 and ours.t_ == ref.t_ == 9 * len(X)
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-9)


# --------------------------------------------------------------------------- shapes and dtypes
def test_outputs_and_attributes(diabetes):
    X, y = diabetes
    Y = two_outputs(X, y)
    reg = quiet_fit(
        MLPRegressor(hidden_layer_sizes=(32, 8), learning_rate_init=0.01, random_state=0), X, Y
    )
    assert reg.n_outputs_ == 2 and reg.n_layers_ == 4 and reg.out_activation_ == "identity"
    assert [c.shape for c in reg.coefs_] == [(10, 32), (32, 8), (8, 2)]
    assert reg._mlp.loss_name == "half_squared_error"
    pred = reg.predict(X)
    assert pred.shape == (len(X), 2) and pred.dtype == np.float64
    assert reg.score(X, Y) == pytest.approx(r2_score(Y, pred))
    assert reg.score(X, Y) > 0.5
    one = quiet_fit(MLPRegressor(hidden_layer_sizes=(8,), random_state=0, max_iter=20), X, y)
    assert one.predict(X).shape == (len(X),) and one.n_outputs_ == 1


def test_column_target_warns_and_fits_as_1d(diabetes):
    X, y = diabetes
    a = quiet_fit(MLPRegressor(hidden_layer_sizes=(8,), max_iter=10, random_state=0), X, y)
    with pytest.warns(DataConversionWarning):
        b = quiet_fit(
            MLPRegressor(hidden_layer_sizes=(8,), max_iter=10, random_state=0), X, y[:, None]
        )
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


def test_regressor_learns(diabetes):
    X, y = diabetes
    reg = quiet_fit(
        MLPRegressor(hidden_layer_sizes=(32,), learning_rate_init=0.01, random_state=0), X, y
    )
    assert reg.score(X, y) > 0.5
    assert reg.loss_ == reg.loss_curve_[-1] and reg.best_loss_ == min(reg.loss_curve_)


@pytest.mark.parametrize("activation", ["leaky_relu", "elu", "maxout", "tanh"])
def test_extra_activations(diabetes, activation):
    X, y = diabetes
    reg = MLPRegressor(
        hidden_layer_sizes=(32,), activation=activation, learning_rate_init=0.01, random_state=0
    )
    quiet_fit(reg, X, y)
    assert reg.score(X, y) > 0.4


def counts(X, outputs):
    rng = np.random.default_rng(0)
    mean = np.exp(0.3 * X[:, :outputs] - 0.2 * X[:, 1:2])
    return rng.poisson(mean).astype(np.float64)


@pytest.mark.parametrize("outputs", [1, 2])
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_poisson_run_is_sklearns(diabetes, solver, outputs):
    # Half the Poisson deviance, summed over the outputs, with a log link: scikit-learn's.
    X, _ = diabetes
    Y = counts(X, outputs)
    Y = Y[:, 0] if outputs == 1 else Y
    # (Adam's runs part slowly, by where epsilon sits, PyTorch's form against scikit-learn's:
    # compared over 10 epochs.)
    kw = base(loss="poisson", solver=solver, alpha=1e-3, max_iter=10 if solver == "adam" else 40)
    ours = quiet_fit(MLPRegressor(dtype="float64", **kw), X, Y)
    ref = quiet_fit(SkMLPRegressor(**kw), X, Y)
    assert ours.out_activation_ == ref.out_activation_ == "exp"
    assert ours.n_iter_ == ref.n_iter_
    adam = solver == "adam"
    if solver == "lbfgs":
        assert ours.loss_ == pytest.approx(ref.loss_, rel=1e-6)
        np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-5)
        return
    tol = 1e-5 if adam else 1e-9
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=tol)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-3 if adam else 1e-8)
    assert ours.score(X, Y) == pytest.approx(ref.score(X, Y), rel=1e-3 if adam else 1e-8)


def test_poisson_refuses_negative_targets(diabetes):
    X, y = diabetes
    reg = MLPRegressor(loss="poisson", max_iter=2)
    with pytest.raises(ValueError, match=r"y: expected targets >= 0"):
        reg.fit(X, y)
    assert not hasattr(reg, "coefs_")


@pytest.mark.parametrize(("loss", "native"), [("huber", "huber"), ("absolute_error", "mae")])
def test_robust_losses_are_mlps_huber_and_mae(diabetes, loss, native):
    # loss_ is the native loss (PyTorch's HuberLoss / L1Loss: the mean over every output),
    # plus scikit-learn's L2 term; the estimator learns.
    X, y = diabetes
    Y = two_outputs(X, y)
    kw = base(loss=loss, alpha=0.0, max_iter=40, learning_rate_init=0.02)
    reg = quiet_fit(MLPRegressor(dtype="float64", **kw), X, Y)
    assert reg._mlp.loss_name == native and reg.out_activation_ == "identity"
    assert reg.score(X, Y) > 0.3
    pred = reg.predict(X)
    d = np.abs(pred - Y)
    value = np.mean(np.where(d <= 1, 0.5 * d * d, d - 0.5)) if loss == "huber" else np.mean(d)
    # The last epoch's average over its batches, while the weights moved: close to it.
    assert value == pytest.approx(reg.loss_, rel=0.05)


def test_a_robust_loss_resists_outliers(diabetes):
    # A few wild targets pull the squared error's fit; absolute_error and huber hold.
    X, y = diabetes
    yo = y.copy()
    yo[::25] += 40.0
    clean = np.ones(len(y), bool)
    clean[::25] = False
    kw = dict(hidden_layer_sizes=(16,), max_iter=150, learning_rate_init=0.01, random_state=0)
    errors = {}
    for loss in ("squared_error", "huber", "absolute_error"):
        reg = quiet_fit(MLPRegressor(loss=loss, **kw), X, yo)
        errors[loss] = float(np.median(np.abs(reg.predict(X)[clean] - y[clean])))
    assert errors["huber"] < errors["squared_error"], errors
    assert errors["absolute_error"] < errors["squared_error"], errors


def test_signature_and_defaults_are_sklearns():
    ours = MLPRegressor().get_params()
    theirs = SkMLPRegressor().get_params()
    assert set(ours) - set(theirs) == {"dtype", "dropout", "batch_norm"}
    assert {k: ours[k] for k in theirs} == theirs
    # loss comes first, positionally, as in scikit-learn.
    assert MLPRegressor("squared_error", (7,)).hidden_layer_sizes == (7,)


def test_nonfinite_targets_are_refused(diabetes):
    X, y = diabetes
    y = y.copy()
    y[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        MLPRegressor().fit(X, y)
