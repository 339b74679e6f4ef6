"""Whole-model gradient checks: every activation x every loss, in float64, rel error < 1e-7.

Each case searches a few data seeds for a well-conditioned problem (no hidden unit
within 1e-3 of a relu kink, no maxout tie within 1e-3, no svm margin within 1e-3 of
its hinge, no huber or mae residual within 1e-3 of its kink, no poisson score above 3)
so that finite differences are valid, then checks every parameter.

The relative error is taken elementwise, so a gradient element of ~1e-6 would be
dominated by the O(h^2) truncation error of centered differences (~1e-11 absolute
at h = 1e-5) whatever the implementation; the search therefore also requires every
non-zero gradient element (computed by the numpy reference) to exceed 1e-4.
"""

from __future__ import annotations

import numpy as np
import numpy_reference as ref
import pytest

import mlpfast
from mlpfast.gradcheck import check_model

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


def conditioned_problem(activation, loss, k, n=7, dropout=0.0, min_grad=1e-4, tries=50):
    """Return (model, X, y) with pre-activations and margins away from kinks (with dropout,
    under the masks its Dropout layers apply next, reproduced in numpy)."""
    for seed in range(tries):
        rng = np.random.default_rng(seed)
        model = mlpfast.MLP(
            [*SIZES, k], activation=activation, loss=loss, dtype="float64", seed=seed,
            dropout=dropout,
        )  # fmt: skip
        X, y = ref.make_data(loss, n, SIZES[0], k, rng, scale=1.5)
        params = ref.params_of(model)
        masks = None
        if dropout:
            drops = [lay for lay in model.layers if isinstance(lay, mlpfast.Dropout)]
            masks = [
                ref.layer_dropout_mask(dropout, d.seed, d.step, n, W.shape[-1]) / (1 - dropout)
                for d, (W, _) in zip(drops, params)
            ]
        if ref.kink_distance(params, activation, X, masks) < 1e-3:
            continue
        _, grads = ref.data_loss_and_grads(params, activation, loss, X, y, masks=masks)
        g = np.abs(np.concatenate([a.ravel() for pair in grads for a in pair]))
        if np.min(g[g > 0]) < min_grad:  # exact zeros (dead relu units) are fine
            continue
        scores = ref.forward(params, activation, X, masks)[0]
        if loss == "svm" and np.min(np.abs(ref.svm_margins(scores, y))) < 1e-3:
            continue
        if ref.loss_kink_distance(loss, scores, y) < 1e-3:
            continue
        if loss in ("poisson", "half_poisson_deviance") and scores.max() > 3:
            # e^f in the hundreds makes the loss large against a gradient element, and the
            # finite differences' rounding (not the gradient) then sets the error.
            continue
        return model, X, y
    pytest.fail("no well-conditioned problem found")
    return None


@pytest.mark.parametrize("loss", ref.LOSSES)
@pytest.mark.parametrize("activation", ref.ACTIVATIONS)
def test_mlp_gradcheck(activation, loss):
    model, X, y = conditioned_problem(activation, loss, OUTPUTS[loss])
    before = [p for pair in ref.params_of(model) for p in pair]
    errs = check_model(model, X, y)
    n_param_layers = len(SIZES)
    assert len(errs) == 2 * n_param_layers
    worst = max(errs, key=errs.get)
    assert errs[worst] < 1e-7, (worst, errs[worst], errs)
    # The check restores every parameter exactly.
    after = [p for pair in ref.params_of(model) for p in pair]
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("activation", ["tanh", "relu", "maxout"])
def test_mlp_gradcheck_multilabel_bce(activation):
    # bce with K = 3 independent 0/1 outputs per row.
    model, X, y = conditioned_problem(activation, "bce", 3)
    assert y.shape == (7, 3)
    errs = check_model(model, X, y)
    assert max(errs.values()) < 1e-7, errs


@pytest.mark.parametrize("loss", ref.LOSSES)
@pytest.mark.parametrize("activation", ref.ACTIVATIONS)
def test_mlp_loss_matches_numpy(activation, loss):
    # Value and gradients of MLP.loss against the independent numpy network.
    model, X, y = conditioned_problem(activation, loss, OUTPUTS[loss])
    value, grads = model.loss(X, y)
    ref_value, ref_grads = ref.data_loss_and_grads(ref.params_of(model), activation, loss, X, y)
    assert value == pytest.approx(ref_value, rel=1e-12)
    assert len(grads) == len(ref_grads)
    for (gw, gb), (rw, rb) in zip(grads, ref_grads):
        np.testing.assert_allclose(gw, rw, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(gb, rb, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("loss", ref.LOSSES)
@pytest.mark.parametrize("activation", ref.ACTIVATIONS)
def test_mlp_gradcheck_with_dropout(activation, loss):
    # Dropout(0.3) after each hidden layer, in training mode: the check replays each Dropout
    # layer's mask (gradcheck.check_model), so the chain rule through the masks is what is
    # checked; the problem is conditioned under those masks. The 1/(1 - p) scale enlarges the
    # loss against its gradient's smallest elements, whose centered differences then carry
    # rounding of order 1e-11·L/|g|: the problems keep every nonzero element above 1e-3.
    model, X, y = conditioned_problem(
        activation, loss, OUTPUTS[loss], dropout=0.3, min_grad=1e-3, tries=400
    )
    assert model.training
    # The analytic gradients are the numpy network's under the same masks...
    drops = [lay for lay in model.layers if isinstance(lay, mlpfast.Dropout)]
    params = ref.params_of(model)
    masks = [
        ref.layer_dropout_mask(0.3, d.seed, d.step, len(X), W.shape[-1]) / 0.7
        for d, (W, _) in zip(drops, params)
    ]
    value, grads = model.loss(X, y)
    for d in drops:
        d.step -= 1  # the forward above drew the masks; the check replays them
    ref_value, ref_grads = ref.data_loss_and_grads(params, activation, loss, X, y, masks=masks)
    assert value == pytest.approx(ref_value, rel=1e-12)
    for (gw, gb), (rw, rb) in zip(grads, ref_grads):
        np.testing.assert_allclose(gw, rw, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(gb, rb, rtol=1e-10, atol=1e-14)
    # ... and the centered differences'.
    errs = check_model(model, X, y)
    worst = max(errs, key=errs.get)
    assert errs[worst] < 1e-7, (worst, errs[worst], errs)
