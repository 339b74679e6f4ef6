"""mlpfast's estimators on dask, as the README's scale-out section and examples/scale_out.py use
them, on a local cluster of two worker processes: dask-ml's ``Incremental`` (data larger than
memory, block by block), ``ParallelPostFit`` (predictions over a dask array) and
``GridSearchCV`` under joblib's dask backend. Each gives exactly what the same work gives in
this process: fits are bit-identical whatever the threads, and the workers run one each.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("distributed")
pytest.importorskip("dask_ml")

import distributed
import joblib
from dask import array as da
from dask_ml.wrappers import Incremental, ParallelPostFit
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

import mlpfast
from mlpfast.sklearn import MLPClassifier

ROWS, CHUNK, PASSES = 2_000, 500, 10


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=ROWS, n_features=12, n_informative=8, n_classes=3, random_state=0
    )
    return X.astype(np.float32), y


def blocks(X, y):
    return da.from_array(X, chunks=(CHUNK, X.shape[1])), da.from_array(y, chunks=CHUNK)


def test_workers_run_mlpfast_on_one_thread_each(client):
    assert set(client.run(mlpfast.get_num_threads).values()) == {1}


@pytest.mark.parametrize(
    "settings",
    [{"solver": "sgd", "momentum": 0.9, "learning_rate_init": 0.05}, {}],
    ids=["momentum", "adam"],
)
def test_incremental_is_partial_fit_block_by_block(client, data, settings):
    # Incremental sends the estimator, pickled, to the worker holding each block; the
    # pickle carries the optimizer's state, so the run is the in-process loop's, bit for bit.
    X, y = data
    Xd, yd = blocks(X, y)
    inc = Incremental(MLPClassifier((16,), random_state=0, **settings), shuffle_blocks=False)
    for _ in range(PASSES):
        inc.partial_fit(Xd, yd, classes=np.arange(3))
    local = MLPClassifier((16,), random_state=0, **settings)
    for _ in range(PASSES):
        for lo in range(0, ROWS, CHUNK):
            local.partial_fit(X[lo : lo + CHUNK], y[lo : lo + CHUNK], classes=np.arange(3))
    remote = inc.estimator_
    # Every block passed through partial_fit, once per pass, in order (t_ counts the samples).
    assert remote.t_ == local.t_ == PASSES * ROWS
    assert remote.loss_curve_ == local.loss_curve_
    assert len(local.loss_curve_) == PASSES * ROWS // CHUNK
    for a, b in zip(remote.coefs_ + remote.intercepts_, local.coefs_ + local.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert inc.score(Xd, yd) == local.score(X, y) > 0.65


def test_parallel_post_fit_predicts_what_the_estimator_predicts(client, data):
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier((16,), max_iter=20, random_state=0).fit(X, y)
    post = ParallelPostFit(clf)
    Xd, _ = blocks(X, y)
    labels = post.predict(Xd)
    assert isinstance(labels, da.Array) and labels.npartitions == ROWS // CHUNK
    np.testing.assert_array_equal(labels.compute(), clf.predict(X))
    np.testing.assert_array_equal(post.predict_proba(Xd).compute(), clf.predict_proba(X))


def test_grid_search_under_the_dask_backend_is_the_local_search(client, data):
    X, y = data
    grid = {"hidden_layer_sizes": [(8,), (16,)], "alpha": [1e-4, 1e-2]}

    def search():
        return GridSearchCV(MLPClassifier(max_iter=30, random_state=0), grid, cv=3)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        local = search().fit(X, y)
        with joblib.parallel_backend("dask"):
            remote = search().fit(X, y)
    np.testing.assert_array_equal(
        remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"]
    )
    assert remote.best_params_ == local.best_params_
    assert remote.best_score_ > 0.7
