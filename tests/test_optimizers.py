"""AdamW, RMSprop, gradient clipping, cosine annealing, warm-up and a rate set by a callback.

MLP.fit in float64 against the plain-numpy loop (tests/numpy_reference.py) and against
PyTorch's own optimizers, schedulers and clip_grad_norm_, over 10 epochs of consecutive
batches (shuffle=False), to 1e-10. The PyTorch run puts the weights in a parameter group
with the weight decay and the biases in one without, as mlpfast decays weights only.
"""

from __future__ import annotations

import numpy as np
import numpy_reference as ref
import pytest

import mlpfast

N, BATCH, EPOCHS = 23, 5, 10  # 23 = 4*5 + 3: the last batch of every epoch has 3 rows
SIZES, ACTIVATION, LOSS = [5, 8, 6, 3], "tanh", "softmax"
RTOL, ATOL = 1e-10, 1e-13

# Each case: MLP.fit's settings, and the rates a callback sets (after epoch k, from 1).
CASES: dict[str, tuple[dict, dict[int, float]]] = {
    "adamw": ({"optimizer": "adamw", "lr": 0.01, "betas": (0.85, 0.99), "weight_decay": 0.3}, {}),
    "rmsprop": ({"optimizer": "rmsprop", "lr": 0.003, "alpha": 0.9, "weight_decay": 0.01}, {}),
    "rmsprop_momentum": (
        {"optimizer": "rmsprop", "lr": 0.002, "alpha": 0.95, "momentum": 0.8, "eps": 1e-6},
        {},
    ),
    "clip_sgd": (
        {
            "optimizer": "sgd",
            "lr": 0.1,
            "momentum": 0.9,
            "weight_decay": 0.01,
            "clip_grad_norm": 0.2,
        },
        {},
    ),
    "clip_adamw": (
        {"optimizer": "adamw", "lr": 0.01, "weight_decay": 0.1, "clip_grad_norm": 0.3},
        {},
    ),
    "clip_rmsprop": (
        {"optimizer": "rmsprop", "lr": 0.003, "weight_decay": 0.05, "clip_grad_norm": 0.25},
        {},
    ),
    "cosine": (
        {"optimizer": "sgd", "lr": 0.2, "momentum": 0.9, "schedule": "cosine", "lr_min": 0.01},
        {},
    ),
    "cosine_warmup": (
        {
            "optimizer": "adam",
            "lr": 0.02,
            "schedule": "cosine",
            "lr_min": 0.001,
            "warmup_epochs": 3,
        },
        {},
    ),
    "warmup": ({"optimizer": "sgd", "lr": 0.2, "warmup_epochs": 4, "lr_decay": 0.9}, {}),
    "callback_lr": (
        {"optimizer": "sgd", "lr": 0.1, "momentum": 0.5, "lr_decay": 0.9},
        {3: 0.02, 6: 0.3},
    ),
}


def setup(seed=0):
    """A float64 model, its starting parameters, and training data."""
    rng = np.random.default_rng(seed + 100)
    model = mlpfast.MLP(SIZES, activation=ACTIVATION, loss=LOSS, dtype="float64", seed=seed)
    X, y = ref.make_data(LOSS, N, SIZES[0], SIZES[-1], rng)
    return model, ref.params_of(model), X, y


def setter(set_lr: dict[int, float], seen: list[float] | None = None):
    """A callback that sets the model's learning rate after the epochs of ``set_lr``."""

    def callback(info):
        model = info["model"]
        if seen is not None:
            seen.append(model.learning_rate)
        if info["epoch"] in set_lr:
            model.learning_rate = set_lr[info["epoch"]]

    return callback


def mlpfast_fit(model, X, y, settings, set_lr, epochs=EPOCHS):
    return model.fit(
        X,
        y,
        epochs=epochs,
        batch_size=BATCH,
        shuffle=False,
        callbacks=setter(set_lr) if set_lr else None,
        **settings,
    )


def max_deviation(model, params) -> float:
    """The largest absolute difference between the model's parameters and ``params``."""
    return max(
        float(np.max(np.abs(got - want)))
        for pair_got, pair_want in zip(ref.params_of(model), params)
        for got, want in zip(pair_got, pair_want)
    )


def assert_params_close(model, params):
    got = ref.params_of(model)
    assert len(got) == len(params)
    for i, ((gw, gb), (rw, rb)) in enumerate(zip(got, params)):
        np.testing.assert_allclose(gw, rw, rtol=RTOL, atol=ATOL, err_msg=f"weight {i}")
        np.testing.assert_allclose(gb, rb, rtol=RTOL, atol=ATOL, err_msg=f"bias {i}")


# --------------------------------------------------------------------------- PyTorch
def torch_fit(params, X, y, *, epochs, batch_size, set_lr, **s):
    """The same run with torch.optim, torch.optim.lr_scheduler and clip_grad_norm_."""
    torch = pytest.importorskip("torch")
    from torch.optim import lr_scheduler as sched

    Ws = [torch.tensor(W, dtype=torch.float64, requires_grad=True) for W, _ in params]
    bs = [torch.tensor(b, dtype=torch.float64, requires_grad=True) for _, b in params]
    groups = [
        {"params": Ws, "weight_decay": s.get("weight_decay", 0.0)},
        {"params": bs, "weight_decay": 0.0},
    ]
    lr, name = s["lr"], s["optimizer"]
    if name == "sgd":
        opt = torch.optim.SGD(
            groups, lr=lr, momentum=s.get("momentum", 0.0), nesterov=s.get("nesterov", False)
        )
    elif name in ("adam", "adamw"):
        kind = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        opt = kind(groups, lr=lr, betas=s.get("betas", (0.9, 0.999)), eps=s.get("eps", 1e-8))
    else:
        opt = torch.optim.RMSprop(
            groups,
            lr=lr,
            alpha=s.get("alpha", 0.99),
            eps=s.get("eps", 1e-8),
            momentum=s.get("momentum", 0.0),
        )
    # mlpfast's warm-up is LinearLR(1/(W+1) -> 1 over W epochs); the cosine follows it in a
    # SequentialLR, lr_decay's ExponentialLR is chained with it.
    warm = s.get("warmup_epochs", 0)
    warmup = (
        sched.LinearLR(opt, start_factor=1 / (warm + 1), end_factor=1.0, total_iters=warm)
        if warm
        else None
    )
    if s.get("schedule") == "cosine":
        cosine = sched.CosineAnnealingLR(opt, T_max=epochs - warm, eta_min=s.get("lr_min", 0.0))
        scheduler = (
            sched.SequentialLR(opt, [warmup, cosine], milestones=[warm]) if warmup else cosine
        )
    else:
        parts = [warmup] if warmup else []
        if s.get("lr_decay", 1.0) != 1.0:
            parts.append(sched.ExponentialLR(opt, gamma=s["lr_decay"]))
        scheduler = sched.ChainedScheduler(parts) if parts else None
    Xt, yt = torch.tensor(X, dtype=torch.float64), torch.tensor(y, dtype=torch.int64)
    lrs = []
    for epoch in range(1, epochs + 1):
        lrs.append(opt.param_groups[0]["lr"])
        for lo in range(0, len(X), batch_size):
            a = Xt[lo : lo + batch_size]
            for i, (W, b) in enumerate(zip(Ws, bs)):
                a = a @ W + b
                if i < len(Ws) - 1:
                    a = torch.tanh(a)
            opt.zero_grad()
            torch.nn.functional.cross_entropy(a, yt[lo : lo + batch_size]).backward()
            if s.get("clip_grad_norm") is not None:
                torch.nn.utils.clip_grad_norm_([*Ws, *bs], s["clip_grad_norm"])
            opt.step()
        if scheduler is not None:
            scheduler.step()
        if epoch in set_lr:
            for g in opt.param_groups:
                g["lr"] = set_lr[epoch]
    out = [(W.detach().numpy().copy(), b.detach().numpy().copy()) for W, b in zip(Ws, bs)]
    return out, lrs


# --------------------------------------------------------------------------- tests
@pytest.mark.parametrize("case", list(CASES))
def test_fit_matches_numpy(case):
    settings, set_lr = CASES[case]
    model, start, X, y = setup()
    history = mlpfast_fit(model, X, y, settings, set_lr)
    params, ref_history = ref.fit(
        start, ACTIVATION, LOSS, X, y, epochs=EPOCHS, batch_size=BATCH, set_lr=set_lr, **settings
    )
    assert not np.allclose(params[0][0], start[0][0])  # it trained
    assert_params_close(model, params)
    np.testing.assert_allclose(history["loss"], ref_history["loss"], rtol=RTOL, atol=ATOL)
    # The rates of the epochs, as the session records them.
    np.testing.assert_allclose(model.history["lr"], ref_history["lr"], rtol=1e-14, atol=0)


@pytest.mark.parametrize("case", list(CASES))
def test_fit_matches_pytorch(case):
    settings, set_lr = CASES[case]
    model, start, X, y = setup()
    mlpfast_fit(model, X, y, settings, set_lr)
    params, lrs = torch_fit(start, X, y, epochs=EPOCHS, batch_size=BATCH, set_lr=set_lr, **settings)
    np.testing.assert_allclose(model.history["lr"], lrs, rtol=1e-14, atol=0)
    assert_params_close(model, params)


def test_the_clipping_cases_clip():
    # The clipping cases' first gradients are longer than their max_norm (else they would
    # test nothing), and a max_norm above every step's norm changes no bit.
    _, start, X, y = setup()
    _, grads = ref.data_loss_and_grads(start, ACTIVATION, LOSS, X[:BATCH], y[:BATCH])
    norm = np.sqrt(sum(float(np.sum(g * g)) for pair in grads for g in pair))
    for case in ("clip_sgd", "clip_adamw", "clip_rmsprop"):
        assert norm > 1.5 * CASES[case][0]["clip_grad_norm"], case
    for optimizer in ("sgd", "adamw", "rmsprop"):
        a, _, _, _ = setup()
        b, _, _, _ = setup()
        a.fit(X, y, epochs=3, batch_size=BATCH, shuffle=False, optimizer=optimizer, lr=0.01)
        b.fit(
            X,
            y,
            epochs=3,
            batch_size=BATCH,
            shuffle=False,
            optimizer=optimizer,
            lr=0.01,
            clip_grad_norm=1e6,
        )
        for (wa, ba), (wb, bb) in zip(ref.params_of(a), ref.params_of(b)):
            np.testing.assert_array_equal(wa, wb)
            np.testing.assert_array_equal(ba, bb)


def test_adamw_decay_is_decoupled_and_not_in_the_loss():
    # Adam with L2 and AdamW differ; AdamW's loss has no L2 term; without decay they agree.
    model, start, X, y = setup()
    h_adamw = model.fit(
        X, y, epochs=1, batch_size=N, shuffle=False, optimizer="adamw", weight_decay=0.5
    )
    data_loss = ref.data_loss_and_grads(start, ACTIVATION, LOSS, X, y)[0]
    assert h_adamw["loss"][0] == pytest.approx(data_loss, rel=1e-12)
    adam, _, _, _ = setup()
    adam.fit(X, y, epochs=1, batch_size=N, shuffle=False, optimizer="adam", weight_decay=0.5)
    assert not np.allclose(ref.params_of(adam)[0][0], ref.params_of(model)[0][0])
    plain = [setup()[0] for _ in range(2)]
    for m, name in zip(plain, ("adam", "adamw")):
        m.fit(X, y, epochs=2, batch_size=BATCH, shuffle=False, optimizer=name)
    for (wa, ba), (wb, bb) in zip(*(ref.params_of(m) for m in plain)):
        np.testing.assert_array_equal(wa, wb)
        np.testing.assert_array_equal(ba, bb)


def test_learning_rate_reads_the_next_epochs_rate_in_a_callback():
    settings, set_lr = CASES["callback_lr"]
    model, _, X, y = setup()
    seen: list[float] = []
    model.fit(
        X,
        y,
        epochs=EPOCHS,
        batch_size=BATCH,
        shuffle=False,
        callbacks=setter(set_lr, seen),
        **settings,
    )
    lrs = model.history["lr"]
    # In the callback after epoch e (from 1): the rate of epoch e + 1, before any setting.
    rates = ref.epoch_rates(0.1, EPOCHS + 1, 0.9, "constant", 0.0, 0, {})
    assert seen[:3] == pytest.approx(rates[1:4], rel=1e-15)
    assert lrs[3] == 0.02 and lrs[6] == 0.3
    # After the fit, the rate a resumed fit would use: the last one times lr_decay.
    assert model.learning_rate == pytest.approx(lrs[-1] * 0.9, rel=1e-15)


def test_learning_rate_set_outside_a_fit_is_what_resume_continues_with():
    # Three epochs, the rate set, two resumed epochs: the bits of one five-epoch fit whose
    # callback sets the rate after epoch 3; lr_decay goes on from the rate set.
    settings = {"optimizer": "rmsprop", "lr": 0.01, "momentum": 0.5, "lr_decay": 0.8}
    parts, _, X, y = setup()
    parts.fit(X, y, epochs=3, batch_size=BATCH, shuffle=False, **settings)
    parts.learning_rate = 0.005
    assert parts.learning_rate == 0.005
    parts.fit(X, y, epochs=2, batch_size=BATCH, shuffle=False, resume=True, **settings)
    whole, _, _, _ = setup()
    whole.fit(
        X, y, epochs=5, batch_size=BATCH, shuffle=False, callbacks=setter({3: 0.005}), **settings
    )
    assert parts.history == whole.history
    assert parts.history["lr"][3:] == [0.005, 0.005 * 0.8]
    for (wa, ba), (wb, bb) in zip(ref.params_of(parts), ref.params_of(whole)):
        np.testing.assert_array_equal(wa, wb)
        np.testing.assert_array_equal(ba, bb)
    # The cosine ends where a rate is set: the resumed epochs keep it.
    model, _, _, _ = setup()
    cosine = {"lr": 0.1, "schedule": "cosine"}
    model.fit(X, y, epochs=3, batch_size=BATCH, shuffle=False, **cosine)
    model.learning_rate = 0.05
    model.fit(X, y, epochs=2, batch_size=BATCH, shuffle=False, resume=True, **cosine)
    assert model.history["lr"][3:] == [0.05, 0.05]


def test_a_resumed_cosine_stays_at_lr_min():
    model, _, X, y = setup()
    settings = {"lr": 0.1, "schedule": "cosine", "lr_min": 0.02, "warmup_epochs": 1}
    model.fit(X, y, epochs=4, batch_size=BATCH, shuffle=False, **settings)
    model.fit(X, y, epochs=2, batch_size=BATCH, shuffle=False, resume=True, **settings)
    lrs = model.history["lr"]
    assert lrs[0] == pytest.approx(0.05) and lrs[1] == 0.1
    assert lrs[3] == pytest.approx(0.02 + 0.08 * (1 + np.cos(2 * np.pi / 3)) / 2, rel=1e-15)
    assert lrs[4:] == pytest.approx([0.02, 0.02], rel=1e-15)


@pytest.mark.parametrize("solver", ["adamw", "rmsprop"])
def test_estimators_take_the_new_solvers(solver):
    # An estimator epoch is MLP.fit's with the estimator's settings: alpha is the weight
    # decay per row (for AdamW, decoupled: the weights shrink by 1 - lr * alpha / n).
    skl = pytest.importorskip("mlpfast.sklearn")
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((40, 4)), rng.integers(0, 3, 40)
    settings = {"solver": solver, "alpha": 0.5, "learning_rate_init": 0.01, "shuffle": False}
    clf = skl.MLPClassifier((6,), dtype="float64", batch_size=40, max_iter=1, random_state=0)
    clf.set_params(**settings)
    with pytest.warns(Warning, match="Maximum iterations"):
        clf.fit(X, y)
    start = [(w.copy(), b.copy()) for w, b in zip(clf.coefs_, clf.intercepts_)]
    with pytest.warns(Warning, match="Maximum iterations"):
        clf.set_params(warm_start=True).fit(X, y)  # warm_start: a new optimizer
    model = mlpfast.MLP([4, 6, 3], dtype="float64", seed=0)
    for lay, (w, b) in zip(model.param_layers, start):
        lay.weight, lay.bias = w, b
    model.fit(
        X, y, epochs=1, batch_size=40, shuffle=False, optimizer=solver, lr=0.01,
        weight_decay=0.5 / 40,
    )  # fmt: skip
    for (w, b), lay in zip(zip(clf.coefs_, clf.intercepts_), model.param_layers):
        np.testing.assert_array_equal(w, lay.weight)
        np.testing.assert_array_equal(b, lay.bias)
    # partial_fit trains them too, resuming the optimizer.
    clf = skl.MLPClassifier((6,), solver=solver, random_state=0)
    clf.partial_fit(X, y, classes=np.arange(3))
    clf.partial_fit(X, y)
    assert clf.n_iter_ == 1 and len(clf.loss_curve_) == 2
