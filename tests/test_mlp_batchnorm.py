"""MLP(batch_norm=True): a BatchNorm after every hidden Linear (or Maxout) layer.

Each hidden layer is Linear, BatchNorm (momentum 0.1, eps 1e-5), the activation (none for
maxout, whose layer is its own activation), then Dropout when dropout > 0. fit normalizes every
minibatch by its own mean and biased variance and moves the running statistics after every
step; predictions, scores and the validation pass normalize by the running statistics.

A fit is reproduced in plain numpy (numpy_reference.fit_batchnorm: the batch statistics, the
chain rule through them, the running statistics, dropout's masks of blocks 2i + 1, the fit's
shuffled order) to 1e-10 in float64; the layer chain's MLP.loss against the numpy network and
centered differences; fits are bit-identical for any thread count.
"""

from __future__ import annotations

import pickle

import numpy as np
import numpy_reference as ref
import pytest

import mlpfast
from mlpfast.gradcheck import check_model, eval_numerical_gradient, rel_error

N, N_VAL, BATCH, EPOCHS = 23, 9, 5, 4  # 23 = 4*5 + 3: the last batch has 3 rows
MODELS = [
    ("softmax", "relu", [5, 8, 6, 3]),
    ("mse", "tanh", [5, 7, 2]),
    ("bce", "sigmoid", [5, 6, 1]),
    ("svm", "leaky_relu", [5, 8, 4]),
    ("huber", "elu", [5, 6, 2]),
    ("softmax", "maxout", [5, 6, 5, 3]),
    ("poisson", "identity", [5, 6, 2]),
]
IDS = [f"{m[0]}-{m[1]}" for m in MODELS]
OPTIMIZERS = {
    "nesterov": {"optimizer": "sgd", "lr": 0.03, "momentum": 0.8, "nesterov": True},
    # A large eps, as in test_fit_reference: a gradient that is 0 up to rounding would
    # otherwise become an update of lr·g/eps.
    "adam": {"optimizer": "adam", "lr": 0.01, "betas": (0.85, 0.99), "eps": 1e-3},
}
VARIANTS = {
    "plain": {"dropout": 0.0, "shuffle": False},
    "dropout": {"dropout": 0.3, "shuffle": False},
    "shuffle": {"dropout": 0.0, "shuffle": True},
}
RTOL, ATOL = 1e-10, 1e-13


def make_model(sizes, activation="relu", loss="softmax", dtype="float64", seed=0, dropout=0.0):
    return mlpfast.MLP(
        sizes, activation=activation, loss=loss, dtype=dtype, seed=seed, dropout=dropout,
        batch_norm=True,
    )  # fmt: skip


def setup(loss, activation, sizes, dropout=0.0, n=N, seed=0):
    """A float64 batch-norm model plus training and validation data."""
    rng = np.random.default_rng(seed + 600)
    model = make_model(sizes, activation, loss, seed=seed, dropout=dropout)
    X, y = ref.make_data(loss, n + N_VAL, sizes[0], sizes[-1], rng)
    return model, (X[:n], y[:n]), (X[n:], y[n:])


def layer_names(model) -> list[str]:
    """The parameter layers' names, as in 'param layer 3 (BatchNorm)'."""
    return [f"param layer {i} ({type(lay).__name__})" for i, lay in enumerate(model.param_layers)]


def assert_model_matches(model, params, running, names=None):
    """Every parameter (W, b, gamma, beta) and running statistic to RTOL."""
    names = names or layer_names(model)
    got = ref.params_of(model)
    assert len(got) == len(params) == len(names)
    for name, (gw, gb), (rw, rb) in zip(names, got, params):
        np.testing.assert_allclose(gw, rw, rtol=RTOL, atol=ATOL, err_msg=f"{name} weight")
        np.testing.assert_allclose(gb, rb, rtol=RTOL, atol=ATOL, err_msg=f"{name} bias")
    got_running = ref.running_of(model)
    assert len(got_running) == len(running)
    for i, ((gm, gv), (rm, rv)) in enumerate(zip(got_running, running)):
        np.testing.assert_allclose(gm, rm, rtol=RTOL, atol=ATOL, err_msg=f"BN {i} running_mean")
        np.testing.assert_allclose(gv, rv, rtol=RTOL, atol=ATOL, err_msg=f"BN {i} running_var")


def assert_history_matches(history, expected):
    """Every figure of the history to RTOL (fit lists the rates only when they change)."""
    assert set(expected) - {"lr"} <= set(history) <= set(expected)
    for key in history:
        np.testing.assert_allclose(history[key], expected[key], rtol=RTOL, atol=ATOL, err_msg=key)


def pre_bn_biases(model) -> list[np.ndarray]:
    """The biases of the Linear / Maxout layers that a BatchNorm follows."""
    layers = model.layers
    return [
        np.array(layers[i].bias, dtype=np.float64)
        for i in range(len(layers) - 1)
        if isinstance(layers[i + 1], mlpfast.BatchNorm)
    ]


# --------------------------------------------------------------------------- construction
def test_the_layers_list_batchnorm_after_each_hidden_layer():
    def kinds(model):
        return [type(lay).__name__ for lay in model.layers]

    m = make_model([4, 8, 7, 3], dtype="float32")
    assert m.batch_norm is True and mlpfast.MLP([4, 8, 3]).batch_norm is False
    assert kinds(m) == ["Linear", "BatchNorm", "ReLU", "Linear", "BatchNorm", "ReLU", "Linear"]
    assert [type(lay).__name__ for lay in m.param_layers] == [
        "Linear",
        "BatchNorm",
        "Linear",
        "BatchNorm",
        "Linear",
    ]
    assert kinds(make_model([4, 8, 7, 3], activation="tanh", dropout=0.25)) == [
        "Linear", "BatchNorm", "Tanh", "Dropout", "Linear", "BatchNorm", "Tanh", "Dropout",
        "Linear",
    ]  # fmt: skip
    # Maxout is its own activation: BatchNorm normalizes its output, nothing comes after.
    assert kinds(make_model([4, 6, 5, 3], activation="maxout")) == [
        "Maxout", "BatchNorm", "Maxout", "BatchNorm", "Linear",
    ]  # fmt: skip
    assert kinds(make_model([4, 6, 3], activation="maxout", dropout=0.5)) == [
        "Maxout", "BatchNorm", "Dropout", "Linear",
    ]  # fmt: skip
    # The BatchNorm layers: fixed momentum and eps, the model's dtype, a fresh state.
    bns = [lay for lay in m.layers if isinstance(lay, mlpfast.BatchNorm)]
    assert [bn.features for bn in bns] == [8, 7]
    for bn in bns:
        assert (bn.momentum, bn.eps, bn.dtype) == (0.1, 1e-5, "float32")
        np.testing.assert_array_equal(bn.weight, 1.0)
        np.testing.assert_array_equal(bn.bias, 0.0)
        np.testing.assert_array_equal(bn.running_mean, 0.0)
        np.testing.assert_array_equal(bn.running_var, 1.0)
    # train() / eval() switch every layer, the BatchNorm layers included.
    assert all(lay.training for lay in m.layers)
    assert m.eval() is m and not m.training
    assert not any(lay.training for lay in m.layers)
    m.train()
    assert m.training and all(lay.training for lay in m.layers)


def test_l2_penalty_counts_the_linear_weights_only():
    m = make_model([4, 6, 5, 3], activation="maxout", seed=1)
    rng = np.random.default_rng(0)
    for lay in m.param_layers:
        lay.weight = rng.standard_normal(lay.weight.shape)
        lay.bias = rng.standard_normal(lay.bias.shape)
    lam = 0.3
    weights = [lay.weight for lay in m.param_layers if not isinstance(lay, mlpfast.BatchNorm)]
    expected = 0.5 * lam * sum(float(np.sum(w * w)) for w in weights)
    everything = 0.5 * lam * sum(float(np.sum(lay.weight**2)) for lay in m.param_layers)
    assert expected != pytest.approx(everything, rel=1e-3)  # gamma would show
    assert m.l2_penalty(lam) == pytest.approx(expected, rel=1e-12)
    # MLP.loss adds the same term, and lam·W to the Linear / Maxout weights' gradients only.
    X, y = ref.make_data("softmax", 9, 4, 3, rng)
    value, grads = m.loss(X, y)
    decayed_value, decayed = m.loss(X, y, weight_decay=lam)
    assert decayed_value == pytest.approx(value + expected, rel=1e-12)
    for lay, (gw, gb), (dw, db) in zip(m.param_layers, grads, decayed):
        shrink = 0.0 if isinstance(lay, mlpfast.BatchNorm) else lam
        np.testing.assert_allclose(dw, gw + shrink * lay.weight, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(db, gb, rtol=1e-10, atol=1e-14)


# --------------------------------------------------------------------------- fit vs numpy
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize(("loss", "activation", "sizes"), MODELS, ids=IDS)
def test_fit_with_batch_norm_matches_numpy(loss, activation, sizes, opt, variant):
    p = VARIANTS[variant]["dropout"]
    shuffle = VARIANTS[variant]["shuffle"]
    model, (X, y), (Xv, yv) = setup(loss, activation, sizes, dropout=p)
    start = ref.params_of(model)
    running = ref.running_of(model)
    settings = {**OPTIMIZERS[opt], "weight_decay": 1e-2, "epochs": EPOCHS, "batch_size": BATCH}
    history = model.fit(
        X, y, shuffle=shuffle, seed=1234, validation_data=(Xv, yv), **settings
    )  # fmt: skip
    params, expected_running, expected = ref.fit_batchnorm(
        start, activation, loss, X, y, running=running, dropout=p, seed=1234, shuffle=shuffle,
        validation_data=(Xv, yv), **settings,
    )  # fmt: skip
    assert_model_matches(model, params, expected_running)
    assert_history_matches(history, expected)
    # The fit changed every gamma and beta, and moved every running statistic.
    for (g0, b0), (g1, b1) in zip(start[1:-1:2], params[1:-1:2]):
        assert np.all(g0 != g1) and np.all(b0 != b1)
    for (m0, v0), (m1, v1) in zip(running, expected_running):
        assert np.all(m0 != m1) and np.all(v0 != v1)


@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("activation", ["relu", "maxout"])
def test_wide_fits_with_batch_norm_match_numpy(activation, dropout):
    # The models above are at most 8 units wide; here hidden layers of 37 and 19 units (whole
    # SIMD vectors and a remainder) and batches of 50 rows (a last one of 20).
    sizes = [12, 37, 19, 5]
    model, (X, y), (Xv, yv) = setup("softmax", activation, sizes, dropout=dropout, n=120)
    start, running = ref.params_of(model), ref.running_of(model)
    settings = {**OPTIMIZERS["adam"], "weight_decay": 1e-2, "epochs": 2, "batch_size": 50}
    history = model.fit(X, y, shuffle=True, seed=9, validation_data=(Xv, yv), **settings)
    params, expected_running, expected = ref.fit_batchnorm(
        start, activation, "softmax", X, y, running=running, dropout=dropout, seed=9,
        shuffle=True, validation_data=(Xv, yv), **settings,
    )  # fmt: skip
    assert_model_matches(model, params, expected_running)
    assert_history_matches(history, expected)


@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize(
    ("loss", "activation", "sizes"),
    [("softmax", "relu", [5, 8, 6, 3]), ("mse", "tanh", [5, 7, 2])],
    ids=["softmax-relu", "mse-tanh"],
)
def test_the_linear_biases_before_batch_norm_never_move(loss, activation, sizes, opt):
    # BN subtracts the batch mean, so a Linear layer's bias before it cannot change the loss:
    # fit takes its gradient as exactly 0, and under any optimizer and weight decay it stays
    # where it was, bit for bit (here: set to nonzero values before the fit).
    model, (X, y), _ = setup(loss, activation, sizes)
    rng = np.random.default_rng(7)
    for lay in model.param_layers[:-1:2]:
        lay.bias = rng.standard_normal(lay.bias.shape)
    before = pre_bn_biases(model)
    others = [np.array(lay.bias) for lay in model.param_layers]
    model.fit(X, y, epochs=3, batch_size=BATCH, seed=0, weight_decay=0.1, **OPTIMIZERS[opt])
    after = pre_bn_biases(model)
    assert len(after) == len(sizes) - 2
    for b0, b1 in zip(before, after):
        np.testing.assert_array_equal(b1, b0)
    # The other biases (BatchNorm's beta, the last Linear's) did move.
    moved = [np.array(lay.bias) for lay in model.param_layers]
    assert all(np.all(a != b) for a, b in zip(others[1::2], moved[1::2]))
    assert np.all(others[-1] != moved[-1])


def test_the_maxout_biases_before_batch_norm_are_trained():
    # Not so for Maxout: each piece's bias decides where that piece wins, so the loss depends
    # on it through BatchNorm too, and fit trains it by its gradient (which
    # test_fit_with_batch_norm_matches_numpy follows step by step).
    model, (X, y), _ = setup("softmax", "maxout", [5, 6, 5, 3])
    _, grads = model.loss(X, y)
    _, ref_grads, _ = ref.bn_data_loss_and_grads(ref.params_of(model), "maxout", "softmax", X, y)
    for i in (0, 2):
        assert np.max(np.abs(ref_grads[i][1])) > 1e-2
        np.testing.assert_allclose(grads[i][1], ref_grads[i][1], rtol=1e-10, atol=1e-14)
    before = pre_bn_biases(model)
    model.fit(X, y, epochs=3, batch_size=BATCH, seed=0, weight_decay=0.1, **OPTIMIZERS["adam"])
    for b0, b1 in zip(before, pre_bn_biases(model)):
        assert np.max(np.abs(b1 - b0)) > 1e-3


# --------------------------------------------------------------------------- predictions
@pytest.mark.parametrize(("loss", "activation", "sizes"), MODELS, ids=IDS)
def test_predictions_use_the_running_statistics(loss, activation, sizes):
    model, (X, y), (Xv, yv) = setup(loss, activation, sizes, dropout=0.2)
    model.fit(X, y, epochs=3, batch_size=BATCH, seed=5, **OPTIMIZERS["adam"])
    assert model.training  # predictions do not depend on the mode the model is in
    params, running = ref.params_of(model), ref.running_of(model)
    Xall = np.vstack([X, Xv])
    expected = ref.bn_forward(params, activation, Xall, running=running)[0]
    scores = model.decision_function(Xall)
    np.testing.assert_allclose(scores, expected, rtol=RTOL, atol=ATOL)
    # ... not on the batch: one row at a time (no batch statistics exist for one row) gives
    # the same as all rows together.
    rows = np.vstack([model.decision_function(Xall[i : i + 1]) for i in range(len(Xall))])
    np.testing.assert_array_equal(rows, scores)
    np.testing.assert_array_equal(
        np.concatenate([model.predict(Xall[i : i + 1]) for i in range(len(Xall))]),
        model.predict(Xall),
    )
    if loss == "softmax":
        e = np.exp(expected - expected.max(axis=1, keepdims=True))
        proba = e / e.sum(axis=1, keepdims=True)
        np.testing.assert_allclose(model.predict_proba(Xall), proba, rtol=RTOL, atol=ATOL)
    assert model.score(Xv, yv) == pytest.approx(ref.metric(loss, expected[N:], yv), rel=1e-10)
    # Predicting moved no running statistic (and changed no mode).
    for (m0, v0), (m1, v1) in zip(running, ref.running_of(model)):
        np.testing.assert_array_equal(m0, m1)
        np.testing.assert_array_equal(v0, v1)
    assert model.training


def test_the_layer_chain_uses_each_mode():
    rng = np.random.default_rng(9)
    model, (X, y), _ = setup("softmax", "relu", [5, 8, 6, 3])
    model.fit(X, y, epochs=2, batch_size=BATCH, seed=1, **OPTIMIZERS["nesterov"])
    Xt = rng.standard_normal((12, 5)) * 2 + 0.5
    params, running = ref.params_of(model), ref.running_of(model)
    # Evaluation mode: the running statistics, as predictions use them; nothing moves.
    model.eval()
    out = model.forward(Xt)
    np.testing.assert_array_equal(out, model.decision_function(Xt))
    evaluated = ref.bn_forward(params, "relu", Xt, running=running)[0]
    np.testing.assert_allclose(out, evaluated, rtol=RTOL, atol=ATOL)
    for (m0, v0), (m1, v1) in zip(running, ref.running_of(model)):
        np.testing.assert_array_equal(m0, m1)
        np.testing.assert_array_equal(v0, v1)
    # Training mode: the batch's statistics; the running statistics move one step as
    # PyTorch's do.
    model.train()
    out = model.forward(Xt)
    trained, _, stats = ref.bn_forward(params, "relu", Xt)
    np.testing.assert_allclose(out, trained, rtol=RTOL, atol=ATOL)
    assert np.max(np.abs(trained - evaluated)) > 1e-3
    moved = ref.bn_update_running(running, stats, len(Xt))
    for i, ((gm, gv), (rm, rv)) in enumerate(zip(ref.running_of(model), moved)):
        np.testing.assert_allclose(gm, rm, rtol=RTOL, atol=ATOL, err_msg=f"BN {i} mean")
        np.testing.assert_allclose(gv, rv, rtol=RTOL, atol=ATOL, err_msg=f"BN {i} var")
    # Backward in training mode goes through the batch statistics.
    g = rng.standard_normal(out.shape)
    grads, dX = ref.bn_backward(params, "relu", ref.bn_forward(params, "relu", Xt)[1], g)
    np.testing.assert_allclose(model.backward(g), dX, rtol=RTOL, atol=1e-14)
    for lay, (gw, gb) in zip(model.param_layers, grads):
        np.testing.assert_allclose(lay.grad_weight, gw, rtol=RTOL, atol=1e-14)
        np.testing.assert_allclose(lay.grad_bias, gb, rtol=RTOL, atol=1e-14)


# --------------------------------------------------------------------------- gradients
SIZES = [4, 6, 5]  # input and hidden sizes; the output size depends on the loss
OUTPUTS = {
    "softmax": 3,
    "svm": 3,
    "mse": 3,
    "bce": 1,
    "huber": 2,
    "mae": 2,
    "poisson": 2,
    "half_poisson_deviance": 2,
}


def chain_masks(model, n, p):
    """The masks the model's Dropout layers apply at their next training forward, scaled."""
    drops = [lay for lay in model.layers if isinstance(lay, mlpfast.Dropout)]
    bns = [lay for lay in model.layers if isinstance(lay, mlpfast.BatchNorm)]
    return [
        ref.layer_dropout_mask(p, d.seed, d.step, n, bn.features) / (1 - p)
        for d, bn in zip(drops, bns)
    ]


def inert_bias_index(model, activation) -> list[int]:
    """Indexes (in param_layers) of the layers whose bias cannot change the loss, as a
    BatchNorm after them subtracts the batch mean: every Linear layer's before a BatchNorm
    and, with the identity and no dropout (a shift the next Linear layer passes on as a
    shift), every BatchNorm's beta but the last's. (Maxout's are not: each piece's bias
    decides where that piece wins.)"""
    if activation == "maxout":
        return []
    last = len(model.param_layers) - 1
    inert = list(range(0, last, 2))
    dropping = any(isinstance(lay, mlpfast.Dropout) for lay in model.layers)
    if activation == "identity" and not dropping:
        inert += list(range(1, last - 1, 2))
    return sorted(inert)


def differences_are_valid(params, activation, loss, X, y, masks, inert) -> bool:
    """Whether the numpy network's own centered differences (h = 1e-5) agree with its
    analytic gradients to 1e-8, ten times below the bound the check sets: BatchNorm's
    1/sigma makes some problems' third derivatives large enough for the O(h^2) truncation
    error to reach 1e-7 of a gradient element; an element that is 0 by accident (svm's
    balanced margins) has differences of rounding alone. Those problems are skipped."""
    _, grads, _ = ref.bn_data_loss_and_grads(params, activation, loss, X, y, masks=masks)

    def f(_):
        return ref.bn_data_loss_and_grads(params, activation, loss, X, y, masks=masks)[0]

    for i, pair in enumerate(params):
        for j, arr in enumerate(pair):
            if j == 1 and i in inert:
                continue
            if rel_error(grads[i][j], eval_numerical_gradient(f, arr)) > 1e-8:
                return False
    return True


def conditioned_problem(activation, loss, k, n=7, dropout=0.0, min_grad=1e-4, tries=200):
    """(model, X, y) with BatchNorm's outputs away from relu kinks, maxout pieces away from
    ties, margins and residuals away from the losses' kinks (as test_mlp_gradcheck's), every
    gradient element that is not 0 by construction above min_grad, and centered differences
    valid on the numpy network."""
    for seed in range(tries):
        rng = np.random.default_rng(seed)
        model = make_model([*SIZES, k], activation, loss, seed=seed, dropout=dropout)
        X, y = ref.make_data(loss, n, SIZES[0], k, rng, scale=1.5)
        params = ref.params_of(model)
        masks = chain_masks(model, n, dropout) if dropout else None
        if ref.bn_kink_distance(params, activation, X, masks) < 1e-3:
            continue
        _, grads, _ = ref.bn_data_loss_and_grads(params, activation, loss, X, y, masks=masks)
        inert = inert_bias_index(model, activation)
        g = np.abs(
            np.concatenate(
                [a.ravel() for i, pair in enumerate(grads) for j, a in enumerate(pair)
                 if not (j == 1 and i in inert)]
            )
        )  # fmt: skip
        if np.min(g[g > 0]) < min_grad:
            continue
        scores = ref.bn_forward(params, activation, X, masks)[0]
        if loss == "svm" and np.min(np.abs(ref.svm_margins(scores, y))) < 1e-3:
            continue
        if ref.loss_kink_distance(loss, scores, y) < 1e-3:
            continue
        if loss in ("poisson", "half_poisson_deviance") and scores.max() > 3:
            continue
        if not differences_are_valid(params, activation, loss, X, y, masks, inert):
            continue
        return model, X, y
    pytest.fail("no well-conditioned problem found")
    return None


def check_gradients(model, activation, X, y):
    """check_model's relative errors < 1e-7, except for the biases BatchNorm cancels: their
    gradient is 0, so the cs231n relative error (floor 1e-8) would compare centered
    differences' rounding (~1e-11) with 1e-8; there, both gradients must be ~0 instead."""
    inert = inert_bias_index(model, activation)
    index = {id(lay): i for i, lay in enumerate(model.layers)}
    inert_keys = {f"layers[{index[id(model.param_layers[i])]}].bias" for i in inert}
    drops = [lay for lay in model.layers if isinstance(lay, mlpfast.Dropout)]
    steps = [d.step for d in drops]

    def f(_=None):
        for d, step in zip(drops, steps):
            d.step = step  # the masks of the first evaluation, as check_model replays them
        return model.loss(X, y)[0]

    f()
    grads = model.loss(X, y)[1]
    for d, step in zip(drops, steps):
        d.step = step
    errs = check_model(model, X, y)
    assert len(errs) == 2 * len(model.param_layers)
    checked = {key: err for key, err in errs.items() if key not in inert_keys}
    worst = max(checked, key=checked.get)
    assert checked[worst] < 1e-7, (worst, checked[worst], errs)
    for i in inert:
        numeric = eval_numerical_gradient(f, model.param_layers[i].bias)
        assert np.max(np.abs(numeric)) < 1e-9, (i, numeric)
        assert np.max(np.abs(grads[i][1])) < 1e-14, (i, grads[i][1])


@pytest.mark.parametrize("loss", ref.LOSSES)
@pytest.mark.parametrize("activation", ref.ACTIVATIONS)
def test_mlp_batchnorm_gradients(activation, loss):
    model, X, y = conditioned_problem(activation, loss, OUTPUTS[loss])
    assert model.training
    params = ref.params_of(model)
    value, grads = model.loss(X, y)
    ref_value, ref_grads, _ = ref.bn_data_loss_and_grads(params, activation, loss, X, y)
    assert value == pytest.approx(ref_value, rel=1e-12)
    assert len(grads) == len(ref_grads) == len(model.param_layers)
    inert = inert_bias_index(model, activation)
    for i, (name, (gw, gb), (rw, rb)) in enumerate(zip(layer_names(model), grads, ref_grads)):
        np.testing.assert_allclose(gw, rw, rtol=1e-10, atol=1e-14, err_msg=f"{name} weight")
        if i in inert:  # column sums of BN's dx (and for identity, of W.T·dx): 0 but rounding
            np.testing.assert_allclose(gb, 0.0, atol=1e-14, err_msg=f"{name} bias")
        else:
            np.testing.assert_allclose(gb, rb, rtol=1e-10, atol=1e-14, err_msg=f"{name} bias")
    check_gradients(model, activation, X, y)


@pytest.mark.parametrize("loss", ["softmax", "mse"])
@pytest.mark.parametrize("activation", ref.ACTIVATIONS)
def test_mlp_batchnorm_gradients_with_dropout(activation, loss):
    # BatchNorm, the activation, then Dropout(0.3) with its mask replayed (check_model);
    # the problem is conditioned under those masks, reproduced in numpy.
    model, X, y = conditioned_problem(
        activation, loss, OUTPUTS[loss], dropout=0.3, min_grad=1e-3, tries=400
    )
    masks = chain_masks(model, len(X), 0.3)
    value, grads = model.loss(X, y)
    for d in (lay for lay in model.layers if isinstance(lay, mlpfast.Dropout)):
        d.step -= 1  # the forward above drew the masks; the check replays them
    params = ref.params_of(model)
    ref_value, ref_grads, _ = ref.bn_data_loss_and_grads(
        params, activation, loss, X, y, masks=masks
    )
    assert value == pytest.approx(ref_value, rel=1e-12)
    inert = inert_bias_index(model, activation)
    for i, (name, (gw, gb), (rw, rb)) in enumerate(zip(layer_names(model), grads, ref_grads)):
        np.testing.assert_allclose(gw, rw, rtol=1e-10, atol=1e-14, err_msg=f"{name} weight")
        if i in inert:
            np.testing.assert_allclose(gb, 0.0, atol=1e-14, err_msg=f"{name} bias")
        else:
            np.testing.assert_allclose(gb, rb, rtol=1e-10, atol=1e-14, err_msg=f"{name} bias")
    check_gradients(model, activation, X, y)


# --------------------------------------------------------------------------- threads
@pytest.mark.parametrize("dropout", [0.0, 0.25])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", ["relu", "tanh", "maxout"])
def test_fits_with_batch_norm_are_bit_identical_for_any_thread_count(
    activation, dtype, dropout, restore_threads
):
    # Batches of 500 rows (and a last one of 501: 2001 = 3·500 + 501) are cut into shards,
    # whose statistics are added in shard order.
    rng = np.random.default_rng(4)
    X = rng.standard_normal((2001, 40)).astype(dtype)
    y = rng.integers(0, 5, 2001)
    runs = []
    for threads in (1, 2, 3):
        mlpfast.set_num_threads(threads)
        m = make_model([40, 64, 32, 5], activation, dtype=dtype, seed=8, dropout=dropout)
        h = m.fit(X, y, epochs=2, batch_size=500, seed=1, optimizer="adam", lr=1e-3,
                  validation_data=(X[:300], y[:300]))  # fmt: skip
        runs.append((m, h))
    (first, h0), *others = runs
    for m, h in others:
        assert ref.same_bits(first, m)
        for (m0, v0), (m1, v1) in zip(ref.running_of(first), ref.running_of(m)):
            np.testing.assert_array_equal(m0, m1)
            np.testing.assert_array_equal(v0, v1)
        assert h == h0


# --------------------------------------------------------------------------- batch sizes
def test_a_batch_of_one_row_is_refused():
    rng = np.random.default_rng(10)
    X, y = ref.make_data("softmax", 12, 5, 3, rng)
    m = make_model([5, 6, 3])
    start = ref.params_of(m)
    with pytest.raises(ValueError, match=r"\bX\b"):
        m.fit(X[:1], y[:1], epochs=1, batch_size=4)
    with pytest.raises(ValueError, match=r"batch_size"):
        m.fit(X, y, epochs=1, batch_size=1)
    assert all(
        np.array_equal(a, c) and np.array_equal(b, d)
        for (a, b), (c, d) in zip(start, ref.params_of(m))
    )
    for rm, rv in ref.running_of(m):
        np.testing.assert_array_equal(rm, 0.0)
        np.testing.assert_array_equal(rv, 1.0)
    # Without batch norm both are fits like any other.
    plain = mlpfast.MLP([5, 6, 3], dtype="float64", seed=0)
    plain.fit(X[:1], y[:1], epochs=1, batch_size=4)
    plain.fit(X, y, epochs=1, batch_size=1)


@pytest.mark.parametrize(("n", "batch"), [(11, 5), (7, 3), (3, 2)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_a_last_row_alone_joins_the_batch_before_it(n, batch, shuffle):
    # n % batch == 1: batches [0, batch), ..., the last with batch + 1 rows (11, 5: [0, 5)
    # and [5, 11)), so no batch has 1 row.
    assert ref.batch_bounds(11, 5, merge_single=True) == [(0, 5), (5, 11)]
    model, (X, y), (Xv, yv) = setup("softmax", "relu", [5, 8, 6, 3], dropout=0.2, n=n)
    start, running = ref.params_of(model), ref.running_of(model)
    settings = {**OPTIMIZERS["adam"], "weight_decay": 1e-2, "epochs": 3, "batch_size": batch}
    history = model.fit(X, y, shuffle=shuffle, seed=3, validation_data=(Xv, yv), **settings)
    params, expected_running, expected = ref.fit_batchnorm(
        start, "relu", "softmax", X, y, running=running, dropout=0.2, seed=3, shuffle=shuffle,
        validation_data=(Xv, yv), **settings,
    )  # fmt: skip
    assert_model_matches(model, params, expected_running)
    assert_history_matches(history, expected)


def test_without_batch_norm_a_last_row_alone_stays_a_batch():
    # The merge is batch norm's: a plain fit of 11 rows in batches of 5 still takes 3 steps.
    rng = np.random.default_rng(11)
    model = mlpfast.MLP([5, 8, 3], dtype="float64", seed=0, dropout=0.2)
    X, y = ref.make_data("softmax", 11, 5, 3, rng)
    start = ref.params_of(model)
    settings = {**OPTIMIZERS["adam"], "epochs": 3, "batch_size": 5}
    history = model.fit(X, y, shuffle=False, seed=3, **settings)
    params, expected = ref.fit(start, "relu", "softmax", X, y, dropout=0.2, seed=3, **settings)
    for (gw, gb), (rw, rb) in zip(ref.params_of(model), params):
        np.testing.assert_allclose(gw, rw, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(gb, rb, rtol=RTOL, atol=ATOL)
    assert_history_matches(history, expected)


# --------------------------------------------------------------------------- persistence
def test_pickle_and_model_files_keep_batch_norm_and_the_running_statistics(tmp_path):
    rng = np.random.default_rng(14)
    X, y = ref.make_data("softmax", 40, 5, 3, rng)
    m = make_model([5, 8, 6, 3], dropout=0.4)
    m.fit(X, y, epochs=2, batch_size=8, seed=3, optimizer="adam")
    again = pickle.loads(pickle.dumps(m))
    mlpfast.save(m, tmp_path / "m.safetensors")
    loaded = mlpfast.load(tmp_path / "m.safetensors")

    def same_state(a, b):
        pairs = zip(ref.running_of(a), ref.running_of(b))
        return ref.same_bits(a, b) and all(
            np.array_equal(p, q) and np.array_equal(u, v) for (p, u), (q, v) in pairs
        )

    assert again.batch_norm is loaded.batch_norm is True
    assert [type(lay) for lay in loaded.layers] == [type(lay) for lay in m.layers]
    assert same_state(m, again) and same_state(m, loaded)
    assert not np.array_equal(ref.running_of(m)[0][1], 1.0)  # the statistics moved
    np.testing.assert_array_equal(loaded.decision_function(X), m.decision_function(X))
    # Training goes on identically from the pickle.
    m.fit(X, y, epochs=2, batch_size=8, seed=4, optimizer="adam", resume=True)
    again.fit(X, y, epochs=2, batch_size=8, seed=4, optimizer="adam", resume=True)
    assert same_state(m, again)


# --------------------------------------------------------------------------- the reference
def test_the_reference_shuffles_as_fit_does():
    # The reference's shuffled order (Xoshiro256++, Fisher-Yates, as rng.rs) against a plain
    # fit's, so that the batch-norm fits with shuffle=True above test batch norm alone.
    loss, activation, sizes = "softmax", "relu", [5, 8, 6, 3]
    rng = np.random.default_rng(12)
    model = mlpfast.MLP(sizes, activation=activation, loss=loss, dtype="float64", seed=0)
    X, y = ref.make_data(loss, N, sizes[0], sizes[-1], rng)
    start = ref.params_of(model)
    settings = {**OPTIMIZERS["adam"], "epochs": EPOCHS, "batch_size": BATCH, "seed": 77}
    history = model.fit(X, y, shuffle=True, **settings)
    params, expected = ref.fit(start, activation, loss, X, y, shuffle=True, **settings)
    unshuffled, _ = ref.fit(start, activation, loss, X, y, **settings)
    for (gw, gb), (rw, rb), (uw, _) in zip(ref.params_of(model), params, unshuffled):
        np.testing.assert_allclose(gw, rw, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(gb, rb, rtol=RTOL, atol=ATOL)
        assert np.max(np.abs(gw - uw)) > 1e-3
    assert_history_matches(history, expected)
    orders = ref.epoch_orders(77, N, 3)
    assert all(sorted(o) == list(range(N)) for o in orders)
    assert not np.array_equal(orders[0], orders[1])


def test_the_reference_network_is_the_layer_chain():
    # numpy_reference.bn_forward / bn_backward against mlpfast's stand-alone layers (Linear,
    # BatchNorm, Tanh, ..., Linear), in both modes, with gamma, beta and biases nonzero.
    rng = np.random.default_rng(13)
    layers = [
        mlpfast.Linear(5, 7, dtype="float64", seed=0), mlpfast.BatchNorm(7, dtype="float64"),
        mlpfast.Tanh(), mlpfast.Linear(7, 6, dtype="float64", seed=1),
        mlpfast.BatchNorm(6, dtype="float64"), mlpfast.Tanh(),
        mlpfast.Linear(6, 3, dtype="float64", seed=2),
    ]  # fmt: skip
    for lay in layers:
        if hasattr(lay, "weight"):
            lay.bias = rng.standard_normal(lay.bias.shape)
        if isinstance(lay, mlpfast.BatchNorm):
            lay.weight = rng.standard_normal(lay.weight.shape)
    params = [
        (np.array(lay.weight), np.array(lay.bias)) for lay in layers if hasattr(lay, "weight")
    ]
    X, g = rng.standard_normal((9, 5)) * 2, rng.standard_normal((9, 3))
    for training in (True, False):
        running = [(np.array(b.running_mean), np.array(b.running_var))
                   for b in layers if isinstance(b, mlpfast.BatchNorm)]  # fmt: skip
        out, d = X, g
        for lay in layers:
            out = lay.train(training).forward(out)
        for lay in reversed(layers):
            d = lay.backward(d)
        scores, cache, stats = ref.bn_forward(
            params, "tanh", X, running=None if training else running
        )
        grads, dX = ref.bn_backward(params, "tanh", cache, g, training=training)
        np.testing.assert_allclose(out, scores, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(d, dX, rtol=1e-12, atol=1e-14)
        with_params = [lay for lay in layers if hasattr(lay, "weight")]
        for lay, (gw, gb) in zip(with_params, grads):
            np.testing.assert_allclose(lay.grad_weight, gw, rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(lay.grad_bias, gb, rtol=1e-12, atol=1e-14)
        if training:
            moved = ref.bn_update_running(running, stats, len(X))
            now = [(b.running_mean, b.running_var) for b in layers if hasattr(b, "running_var")]
            for (gm, gv), (rm, rv) in zip(now, moved):
                np.testing.assert_allclose(gm, rm, rtol=1e-12)
                np.testing.assert_allclose(gv, rv, rtol=1e-12)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_fit_with_batch_norm_matches_pytorch(activation, optimizer):
    # The same network as torch.nn.Sequential(Linear, BatchNorm1d, act, ..., Linear) trained
    # by torch.optim on the same batches: BatchNorm1d's batch statistics, its backward and
    # its running statistics, step after step. Weight decay goes to the Linear weights only
    # (a parameter group), as mlpfast applies it. The Linear biases before a BatchNorm get
    # PyTorch's computed gradient (rounding, about 1e-17) where mlpfast uses the exact 0: with
    # SGD that moves them by lr times the rounding; Adam would turn the rounding into steps of
    # about lr, so with Adam the network here has no such biases to compare (they stay 0 in
    # both, torch's frozen).
    torch = pytest.importorskip("torch")
    sizes, n, batch, epochs = [6, 10, 8, 3], 48, 16, 3
    rng = np.random.default_rng(11)
    X, y = rng.standard_normal((n, sizes[0])), rng.integers(0, sizes[-1], n)
    Xv = rng.standard_normal((20, sizes[0]))
    model = mlpfast.MLP(sizes, activation=activation, dtype="float64", seed=4, batch_norm=True)
    for lay in model.param_layers:
        if isinstance(lay, mlpfast.BatchNorm):  # away from gamma = 1, beta = 0
            lay.weight = rng.uniform(0.5, 1.5, lay.weight.shape)
            lay.bias = rng.normal(0.0, 0.3, lay.bias.shape)
    act = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}[activation]
    layers = []
    for lay in model.layers:
        if isinstance(lay, mlpfast.Linear):
            t = torch.nn.Linear(lay.in_features, lay.out_features, dtype=torch.float64)
            with torch.no_grad():
                t.weight.copy_(torch.tensor(np.asarray(lay.weight).T))
                t.bias.copy_(torch.tensor(np.asarray(lay.bias)))
        elif isinstance(lay, mlpfast.BatchNorm):
            t = torch.nn.BatchNorm1d(lay.features, dtype=torch.float64)
            with torch.no_grad():
                t.weight.copy_(torch.tensor(np.asarray(lay.weight)))
                t.bias.copy_(torch.tensor(np.asarray(lay.bias)))
        else:
            t = act()
        layers.append(t)
    net = torch.nn.Sequential(*layers)
    linears = [t for t in net if isinstance(t, torch.nn.Linear)]
    before_norm = [t.bias for t in linears[:-1]]
    if optimizer == "adam":
        for b in before_norm:
            b.requires_grad_(False)
    decayed = [t.weight for t in linears]
    rest = [p for p in net.parameters() if p.requires_grad and all(p is not d for d in decayed)]
    groups = [{"params": decayed, "weight_decay": 1e-2}, {"params": rest, "weight_decay": 0.0}]
    if optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=0.05, momentum=0.9)
        settings = {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9}
    else:
        opt = torch.optim.Adam(groups, lr=0.01)
        settings = {"optimizer": "adam", "lr": 0.01}
    Xt, yt = torch.tensor(X), torch.tensor(y)
    net.train()
    for _ in range(epochs):
        for lo in range(0, n, batch):
            opt.zero_grad()
            out = net(Xt[lo : lo + batch])
            torch.nn.functional.cross_entropy(out, yt[lo : lo + batch]).backward()
            opt.step()
    model.fit(X, y, epochs=epochs, batch_size=batch, shuffle=False, weight_decay=1e-2, **settings)
    torch_layers = [t for t in net if not isinstance(t, act)]
    for lay, t in zip(model.param_layers, torch_layers):
        weight = t.weight.detach().numpy()
        weight = weight.T if isinstance(t, torch.nn.Linear) else weight
        np.testing.assert_allclose(lay.weight, weight, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(lay.bias, t.bias.detach().numpy(), rtol=1e-10, atol=1e-12)
        if isinstance(lay, mlpfast.BatchNorm):
            for mine, theirs in (
                (lay.running_mean, t.running_mean),
                (lay.running_var, t.running_var),
            ):
                np.testing.assert_allclose(mine, theirs.numpy(), rtol=1e-10, atol=1e-12)
    net.eval()
    with torch.no_grad():
        expected = net(torch.tensor(Xv)).numpy()
    np.testing.assert_allclose(model.decision_function(Xv), expected, rtol=1e-10, atol=1e-12)
