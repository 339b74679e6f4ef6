"""Progress lines, epoch callbacks (stopping training), Ctrl-C, and plot_history."""

from __future__ import annotations

import re
import sys
import warnings

import numpy as np
import pytest

import mlpfast
from mlpfast._progress import Progress, _clock

LINE = re.compile(
    r"^epoch +(\d+)/(\d+)  loss (\d+\.\d{6})(  val_loss \d+\.\d{6}  (val_accuracy|val_r2) "
    r"-?\d+\.\d{4})?  [\d,]+ samples/s  elapsed [\d.:s]+  remaining [\d.:s]+$"
)


def blobs(rng, n=120, k=3, d=4):
    centers = 3.0 * rng.standard_normal((k, d))
    y = rng.integers(0, k, n)
    return centers[y] + 0.5 * rng.standard_normal((n, d)), y


def progress_lines(text):
    return [ln for ln in text.splitlines() if ln.startswith("epoch")]


# --------------------------------------------------------------------------- the line
def test_line_content():
    p = Progress.__new__(Progress)
    p.metric, p.bar = "val_accuracy", None
    info = {
        "epoch": 7,
        "epochs": 120,
        "loss": 0.1234567,
        "val_loss": 0.25,
        "val_accuracy": 0.93751,
        "lr": 0.001,
        "elapsed": 75.0,
        "samples_per_second": 123456.7,
        "remaining": 3725.0,
    }
    assert p.line(info) == (
        "epoch   7/120  loss 0.123457  val_loss 0.250000  val_accuracy 0.9375  "
        "123,457 samples/s  elapsed 1:15  remaining 1:02:05"
    )
    del info["val_loss"], info["val_accuracy"]
    assert p.line(info).startswith("epoch   7/120  loss 0.123457  123,457 samples/s")


def test_clock():
    assert _clock(3.44) == "3.4s"
    assert _clock(125) == "2:05"
    assert _clock(3600 + 62) == "1:01:02"


@pytest.mark.parametrize("terminal", [True, False])
@pytest.mark.parametrize("with_tqdm", [True, False])
def test_verbose_fit_prints_a_line_per_epoch(rng, capsys, monkeypatch, with_tqdm, terminal):
    if not with_tqdm:
        monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # as if tqdm were not installed
    else:
        pytest.importorskip("tqdm")
    # The bar is drawn only on a terminal: in a log file it would leave a frame per update.
    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
    X, y = blobs(rng)
    model = mlpfast.MLP([4, 8, 3], seed=0)
    h = model.fit(X, y, epochs=4, seed=0, verbose=True, validation_data=(X[:30], y[:30]))
    out, err = capsys.readouterr()
    lines = progress_lines(out)
    assert len(lines) == 4
    for i, line in enumerate(lines):
        m = LINE.match(line)
        assert m, line
        assert (int(m[1]), int(m[2])) == (i + 1, 4)
        assert float(m[3]) == pytest.approx(h["loss"][i], abs=1e-6)
        assert f"val_accuracy {h['val_accuracy'][i]:.4f}" in line
    bar = with_tqdm and terminal
    assert ("epoch" in err) == bar  # the tqdm bar, on stderr
    assert ("\r" in err) == bar
    assert "\r" not in out


def test_estimator_verbose_lines_match_its_curves(rng, capsys):
    skl = pytest.importorskip("mlpfast.sklearn")
    X = rng.standard_normal((120, 3))
    Y = np.stack([X[:, 0], X[:, 1] * X[:, 2], -X[:, 2]], axis=1)
    reg = skl.MLPRegressor(
        hidden_layer_sizes=(16,), early_stopping=True, max_iter=6, verbose=True, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg.fit(X, Y)
    lines = progress_lines(capsys.readouterr().out)
    assert len(lines) == reg.n_iter_ == 6
    for line, loss, score in zip(lines, reg.loss_curve_, reg.validation_scores_):
        assert LINE.match(line), line
        # The line shows scikit-learn's figures: the loss divided by the 3 outputs.
        assert f"loss {loss:.6f}" in line
        assert f"val_r2 {score:.4f}" in line


# --------------------------------------------------------------------------- callbacks
def test_callbacks_get_the_figures_and_can_stop(rng):
    X, y = blobs(rng)
    model = mlpfast.MLP([4, 8, 3], seed=0)
    seen = []

    def stop_at_3(info):
        seen.append(info)
        return info["epoch"] < 3  # exactly False at epoch 3

    quiet = []
    h = model.fit(
        X,
        y,
        epochs=10,
        seed=0,
        validation_data=(X, y),
        callbacks=[stop_at_3, lambda info: quiet.append(info["epoch"])],
    )
    assert len(h["loss"]) == 3 and [i["epoch"] for i in seen] == [1, 2, 3]
    assert quiet == [1, 2, 3]  # every callback hears every epoch, None goes on
    assert not model.stopped_early  # stopped by a callback, not by the stopping rule
    first = seen[0]
    assert set(first) >= {
        "epoch",
        "epochs",
        "loss",
        "val_loss",
        "val_accuracy",
        "lr",
        "elapsed",
        "samples_per_second",
        "remaining",
    }
    assert first["epochs"] == 10 and first["loss"] == h["loss"][0]
    assert first["samples_per_second"] > 0 and first["elapsed"] >= 0


def test_callback_errors_propagate(rng):
    X, y = blobs(rng)
    model = mlpfast.MLP([4, 8, 3], seed=0)

    def boom(info):
        raise RuntimeError("from the callback")

    with pytest.raises(RuntimeError, match="from the callback"):
        model.fit(X, y, epochs=3, callbacks=boom)


def test_estimator_callbacks(rng):
    skl = pytest.importorskip("mlpfast.sklearn")
    from sklearn.exceptions import ConvergenceWarning

    X, y = blobs(rng)
    seen = []
    clf = skl.MLPClassifier((8,), early_stopping=True, max_iter=50, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # a callback's stop is no warning
        clf.fit(X, y, callbacks=lambda info: seen.append(info) or info["epoch"] < 4)
    assert clf.n_iter_ == 4 and len(clf.loss_curve_) == 4
    assert [i["loss"] for i in seen] == clf.loss_curve_
    assert [i["val_accuracy"] for i in seen] == clf.validation_scores_
    assert [i["val_loss"] for i in seen] == clf.validation_loss_curve_
    with pytest.raises(TypeError, match="callbacks"):
        clf.fit(X, y, callbacks=[1])


def test_ctrl_c(rng):
    X, y = blobs(rng)

    def interrupt(info):
        if info["epoch"] == 2:
            raise KeyboardInterrupt

    model = mlpfast.MLP([4, 8, 3], seed=0)
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, y, epochs=5, callbacks=interrupt)
    # The estimators, as scikit-learn's, turn Ctrl-C into a warning and keep what was done.
    skl = pytest.importorskip("mlpfast.sklearn")
    clf = skl.MLPClassifier((8,), max_iter=5, random_state=0)
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        clf.fit(X, y, callbacks=interrupt)
    assert clf.n_iter_ == 2 and len(clf.loss_curve_) == 2 and clf.t_ == 2 * len(X)
    assert clf.predict(X).shape == (len(X),)


# --------------------------------------------------------------------------- plot_history
@pytest.fixture
def mpl():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    return matplotlib


def curves(ax):
    return [list(line.get_ydata()) for line in ax.get_lines() if line.get_label()[0] != "_"]


def test_plot_history_dict_writes_png(rng, tmp_path, mpl):
    X, y = blobs(rng)
    h = mlpfast.MLP([4, 8, 3], seed=0).fit(X, y, epochs=5, validation_data=(X, y), seed=0)
    path = tmp_path / "curve.png"
    fig = mlpfast.plot_history(h, path, title="blobs")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    loss_ax, score_ax = fig.axes
    assert curves(loss_ax)[:2] == [h["loss"], h["val_loss"]]
    # The loss on a log axis (it falls by orders of magnitude), the score on a linear one.
    assert (loss_ax.get_yscale(), score_ax.get_yscale()) == ("log", "linear")
    assert curves(score_ax)[0] == h["val_accuracy"]
    assert score_ax.get_ylabel() == "validation accuracy"
    # Without validation: one panel, and no file unless asked.
    fig = mlpfast.plot_history({"loss": h["loss"]})
    assert len(fig.axes) == 1 and curves(fig.axes[0]) == [h["loss"]]
    # A loss that reaches 0 (the hinge loss can) cannot go on a log axis.
    fig = mlpfast.plot_history({"loss": [0.5, 0.1, 0.0]})
    assert fig.axes[0].get_yscale() == "linear"


def test_plot_history_estimator(rng, tmp_path, mpl):
    skl = pytest.importorskip("mlpfast.sklearn")
    X = rng.standard_normal((100, 3))
    reg = skl.MLPRegressor(hidden_layer_sizes=(8,), early_stopping=True, max_iter=8, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg.fit(X, X[:, 0])
    fig = mlpfast.plot_history(reg, tmp_path / "r.png")
    assert (tmp_path / "r.png").exists()
    loss_ax, score_ax = fig.axes
    assert curves(loss_ax) == [reg.loss_curve_, reg.validation_loss_curve_]
    assert len(reg.validation_loss_curve_) == reg.n_iter_
    assert curves(score_ax)[0] == reg.validation_scores_
    assert score_ax.get_ylabel() == "validation R²"
    lbfgs = skl.MLPRegressor(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lbfgs.fit(X, X[:, 0])
    with pytest.raises(ValueError, match="loss_curve_"):
        mlpfast.plot_history(lbfgs)


def test_plot_history_refuses_other_input(mpl):
    with pytest.raises(ValueError, match="'loss' list"):
        mlpfast.plot_history({"val_loss": [1.0]})
    with pytest.raises(ValueError, match="history dict"):
        mlpfast.plot_history([1.0, 0.5])


def test_plot_history_without_matplotlib(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    # The hint names what works for a package that is not on an index: matplotlib itself,
    # or the extra from mlpfast's source tree.
    with pytest.raises(ImportError, match=r"pip install matplotlib .*pip install '\.\[plot\]'"):
        mlpfast.plot_history({"loss": [1.0]})
