"""Pickle (and ``copy.deepcopy``) support for the native objects, through ``copyreg``.

Importing ``mlpfast`` registers a reducer for ``MLP``, ``Linear``, ``Maxout``, ``BatchNorm``,
``Dropout`` and every activation, so ``pickle.loads(pickle.dumps(obj))`` gives an object with
the same architecture, dtype and parameters, bit for bit, in the same mode (``training``).
A ``BatchNorm`` carries its running statistics, momentum and eps; a ``Dropout`` its rate,
seed and step, so the copy goes on drawing the masks the original would have. A model's
training session goes with it: its optimizer state (momentum's velocity, Adam's moments and
step count), its learning rate schedule and stopping rule, its random generator,
``samples_seen`` and ``history``, so a ``fit(..., resume=True)`` or an estimator's
``partial_fit`` after unpickling continues exactly as it would have (scikit-learn's pickles
do the same). A model pickled while it trains carries its last published epoch, without that
fit's optimizer state. What does not round-trip: a layer's gradients and what ``forward``
kept for ``backward``; and layer objects shared between a model and other pickled objects
are copied separately.

Unpickling runs the code the pickle names, as always: load pickles only from sources you
trust. :func:`mlpfast.save` and :func:`mlpfast.load` write and read a file format that
holds no code.
"""

from __future__ import annotations

import copyreg

import numpy as np

from mlpfast._core import (
    ELU,
    MLP,
    BatchNorm,
    Dropout,
    Identity,
    LeakyReLU,
    Linear,
    Maxout,
    ReLU,
    Sigmoid,
    Tanh,
)


def _rebuild_mlp(
    layer_sizes,
    activation,
    loss,
    dtype,
    params,
    session=None,
    dropout=0.0,
    training=True,
    batch_norm=False,
) -> MLP:
    """An MLP of the given architecture with the given (weight, bias) per parameter layer
    ((weight, bias, running_mean, running_var) per BatchNorm) and, when given (pickles of
    earlier versions have none), training session."""
    model = MLP(
        layer_sizes,
        activation=activation,
        loss=loss,
        dtype=dtype,
        dropout=dropout,
        batch_norm=bool(batch_norm),
    )
    model.train(bool(training))
    layers = model.param_layers
    if len(layers) != len(params):
        raise ValueError(f"pickled MLP: expected {len(layers)} parameter layers, got {len(params)}")
    for i, (lay, values) in enumerate(zip(layers, params)):
        want = 4 if isinstance(lay, BatchNorm) else 2
        if len(values) != want:
            raise ValueError(
                f"pickled MLP: expected {want} arrays for parameter layer {i}, got {len(values)}"
            )
        lay.weight = values[0]
        lay.bias = values[1]
        if want == 4:
            lay.running_mean = values[2]
            lay.running_var = values[3]
    if session is not None:
        if not isinstance(session, bytes):
            raise TypeError(
                f"pickled MLP: expected the session state as bytes, got {type(session).__name__}"
            )
        try:
            model._set_session_state(session)
        except ValueError as exc:
            raise ValueError(f"pickled MLP: {exc}") from None
    return model


def _reduce_mlp(model: MLP):
    params = model._params()  # one moment's weights, also while a fit publishes epochs
    session = model._session_state()
    args = (
        model.layer_sizes,
        model.activation,
        model.loss_name,
        model.dtype,
        params,
        session,
        model.dropout,
        model.training,
        model.batch_norm,
    )
    return _rebuild_mlp, args


def _rebuild_linear(in_features, out_features, dtype, weight, bias, training=True) -> Linear:
    layer = Linear(in_features, out_features, dtype=dtype)
    layer.weight = weight
    layer.bias = bias
    return layer.train(training)


def _reduce_linear(layer: Linear):
    args = (
        layer.in_features,
        layer.out_features,
        layer.dtype,
        np.array(layer.weight),
        np.array(layer.bias),
        layer.training,
    )
    return _rebuild_linear, args


def _rebuild_maxout(
    in_features, out_features, pieces, dtype, weight, bias, training=True
) -> Maxout:
    layer = Maxout(in_features, out_features, pieces, dtype=dtype)
    layer.weight = weight
    layer.bias = bias
    return layer.train(training)


def _reduce_maxout(layer: Maxout):
    args = (
        layer.in_features,
        layer.out_features,
        layer.pieces,
        layer.dtype,
        np.array(layer.weight),
        np.array(layer.bias),
        layer.training,
    )
    return _rebuild_maxout, args


def _rebuild_batchnorm(
    features, momentum, eps, dtype, weight, bias, running_mean, running_var, training
) -> BatchNorm:
    layer = BatchNorm(features, momentum=momentum, eps=eps, dtype=dtype)
    layer.weight = weight
    layer.bias = bias
    layer.running_mean = running_mean
    layer.running_var = running_var
    return layer.train(training)


def _reduce_batchnorm(layer: BatchNorm):
    args = (
        layer.features,
        layer.momentum,
        layer.eps,
        layer.dtype,
        np.array(layer.weight),
        np.array(layer.bias),
        np.array(layer.running_mean),
        np.array(layer.running_var),
        layer.training,
    )
    return _rebuild_batchnorm, args


def _rebuild_dropout(p, seed, step, training) -> Dropout:
    layer = Dropout(p, seed=seed)
    layer.step = step
    return layer.train(training)


def _reduce_dropout(layer: Dropout):
    return _rebuild_dropout, (layer.p, layer.seed, layer.step, layer.training)


def _rebuild_activation(cls, args, training):
    """An activation of class ``cls`` (pickles of earlier versions name the class alone)."""
    return cls(*args).train(training)


def _reduce_plain(act):
    return _rebuild_activation, (type(act), (), act.training)


def _reduce_with_alpha(act):
    return _rebuild_activation, (type(act), (act.alpha,), act.training)


def register() -> None:
    """Registers the reducers (done once, when ``mlpfast`` is imported)."""
    copyreg.pickle(MLP, _reduce_mlp)
    copyreg.pickle(Linear, _reduce_linear)
    copyreg.pickle(Maxout, _reduce_maxout)
    copyreg.pickle(BatchNorm, _reduce_batchnorm)
    copyreg.pickle(Dropout, _reduce_dropout)
    for plain in (Identity, Sigmoid, Tanh, ReLU):
        copyreg.pickle(plain, _reduce_plain)
    for with_alpha in (LeakyReLU, ELU):
        copyreg.pickle(with_alpha, _reduce_with_alpha)


register()
