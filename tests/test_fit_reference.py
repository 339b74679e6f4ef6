"""MLP.fit against a plain-numpy training loop (tests/numpy_reference.py), float64, rtol 1e-10.

shuffle=False makes the batches consecutive rows, so the whole run is reproducible
in numpy: SGD, momentum, Nesterov and Adam (PyTorch semantics), with weight decay on
weights only, per-epoch lr decay, and a batch size that does not divide N.
"""

from __future__ import annotations

import numpy as np
import numpy_reference as ref
import pytest

import mlpfast

N, N_VAL, BATCH, EPOCHS = 23, 9, 5, 4  # 23 = 4*5 + 3: the last batch has 3 rows

# (loss, activation, layer sizes)
MODELS = [
    ("softmax", "relu", [5, 8, 6, 3]),
    ("mse", "sigmoid", [5, 7, 2]),
    ("bce", "tanh", [5, 6, 1]),
    ("svm", "leaky_relu", [5, 8, 4]),
    ("softmax", "maxout", [5, 6, 3]),
    ("mse", "elu", [5, 6, 4, 2]),
    ("bce", "identity", [5, 4, 3]),  # multi-label bce
    ("huber", "elu", [5, 6, 2]),
    ("mae", "tanh", [5, 6, 2]),
    ("poisson", "sigmoid", [5, 6, 2]),
    ("half_poisson_deviance", "relu", [5, 6, 2]),
]
OPTIMIZERS = {
    "sgd": {"optimizer": "sgd", "lr": 0.05},
    "momentum": {"optimizer": "sgd", "lr": 0.03, "momentum": 0.9},
    "nesterov": {"optimizer": "sgd", "lr": 0.03, "momentum": 0.8, "nesterov": True},
    # A large eps: gradients that are mathematically 0 but come out as +-1e-17 depending on
    # summation order (svm's +-1/B terms cancel) would otherwise become updates of lr*g/eps
    # ~ 1e-12 per step and break rtol=1e-10 for reasons unrelated to correctness. A large
    # eps also makes its exact placement in the update more visible.
    "adam": {"optimizer": "adam", "lr": 0.01, "betas": (0.85, 0.99), "eps": 1e-3},
}
RTOL, ATOL = 1e-10, 1e-13


def setup(loss, activation, sizes, seed=0):
    """A float64 model plus training and validation data."""
    rng = np.random.default_rng(seed + 100)
    model = mlpfast.MLP(sizes, activation=activation, loss=loss, dtype="float64", seed=seed)
    X, y = ref.make_data(loss, N + N_VAL, sizes[0], sizes[-1], rng)
    return model, (X[:N], y[:N]), (X[N:], y[N:])


def assert_params_close(model, params):
    """Model weights equal the reference params to RTOL."""
    got = ref.params_of(model)
    assert len(got) == len(params)
    for i, ((gw, gb), (rw, rb)) in enumerate(zip(got, params)):
        np.testing.assert_allclose(gw, rw, rtol=RTOL, atol=ATOL, err_msg=f"weight {i}")
        np.testing.assert_allclose(gb, rb, rtol=RTOL, atol=ATOL, err_msg=f"bias {i}")


@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize(
    ("loss", "activation", "sizes"), MODELS, ids=[f"{m[0]}-{m[1]}" for m in MODELS]
)
def test_fit_matches_numpy(loss, activation, sizes, opt):
    model, (X, y), (Xv, yv) = setup(loss, activation, sizes)
    start = ref.params_of(model)
    settings = {**OPTIMIZERS[opt], "weight_decay": 1e-2, "lr_decay": 0.8}
    history = model.fit(
        X,
        y,
        epochs=EPOCHS,
        batch_size=BATCH,
        shuffle=False,
        seed=0,
        validation_data=(Xv, yv),
        **settings,
    )
    params, ref_history = ref.fit(
        start,
        activation,
        loss,
        X,
        y,
        epochs=EPOCHS,
        batch_size=BATCH,
        validation_data=(Xv, yv),
        **settings,
    )
    # The run really trained (otherwise the comparison would be vacuous).
    assert not np.allclose(ref.params_of(model)[0][0], start[0][0])
    assert_params_close(model, params)
    metric = ref.metric_name(loss)
    assert set(history) == {"loss", "val_loss", metric}
    for key in history:
        assert len(history[key]) == EPOCHS, key
        np.testing.assert_allclose(
            history[key], ref_history[key], rtol=RTOL, atol=ATOL, err_msg=key
        )


@pytest.mark.parametrize("opt", list(OPTIMIZERS))
def test_fit_without_weight_decay_or_lr_decay(opt):
    # The plain case (wd = 0, lr_decay = 1), batch size larger than N (one batch per epoch).
    model, (X, y), _ = setup("softmax", "tanh", [5, 7, 3], seed=1)
    start = ref.params_of(model)
    history = model.fit(X, y, epochs=3, batch_size=64, shuffle=False, **OPTIMIZERS[opt])
    params, ref_history = ref.fit(
        start, "tanh", "softmax", X, y, epochs=3, batch_size=64, **OPTIMIZERS[opt]
    )
    assert_params_close(model, params)
    np.testing.assert_allclose(history["loss"], ref_history["loss"], rtol=RTOL, atol=ATOL)
    assert set(history) == {"loss"}  # no validation keys without validation_data


def test_each_fit_call_starts_fresh_optimizer_state():
    # Two 1-epoch fits with momentum == two reference runs each starting with v = 0.
    model, (X, y), _ = setup("softmax", "relu", [5, 8, 3], seed=2)
    settings = {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-3}
    params = ref.params_of(model)
    for _ in range(2):
        model.fit(X, y, epochs=1, batch_size=BATCH, shuffle=False, **settings)
        params, _ = ref.fit(params, "relu", "softmax", X, y, epochs=1, batch_size=BATCH, **settings)
    assert_params_close(model, params)


def test_adam_fresh_state_and_step_count_per_fit():
    # Adam's bias correction uses t counted from 1 in every fit call.
    model, (X, y), _ = setup("mse", "tanh", [5, 6, 2], seed=3)
    settings = {"optimizer": "adam", "lr": 0.02}
    params = ref.params_of(model)
    for _ in range(2):
        model.fit(X, y, epochs=2, batch_size=BATCH, shuffle=False, **settings)
        params, _ = ref.fit(params, "tanh", "mse", X, y, epochs=2, batch_size=BATCH, **settings)
    assert_params_close(model, params)


def test_loss_history_uses_weights_before_each_step():
    # With one batch per epoch, history["loss"][e] is exactly the loss of the weights at
    # the start of epoch e (data loss + 0.5 * wd * sum ||W||^2).
    model, (X, y), _ = setup("softmax", "relu", [5, 8, 3], seed=4)
    wd = 0.05
    expected = []
    probe = mlpfast.MLP([5, 8, 3], dtype="float64", seed=4)  # same weights as model
    for _ in range(3):
        params = ref.params_of(probe)
        data_loss = ref.data_loss_and_grads(params, "relu", "softmax", X, y)[0]
        expected.append(data_loss + 0.5 * wd * sum(float(np.sum(W * W)) for W, _ in params))
        probe.fit(X, y, epochs=1, batch_size=N, shuffle=False, lr=0.1, weight_decay=wd)
    history = model.fit(X, y, epochs=3, batch_size=N, shuffle=False, lr=0.1, weight_decay=wd)
    np.testing.assert_allclose(history["loss"], expected, rtol=1e-12)
