"""mlpfast's estimators on dask: data larger than memory, predictions over a dask array, and a
grid search spread over the cluster's workers.

    pip install ".[sklearn]" "dask[distributed]" dask-ml && python examples/scale_out.py

Runs on a local cluster of two worker processes; point ``Client`` at a real scheduler to use
a real cluster. Each worker process starts with ``OMP_NUM_THREADS`` set to its threads, which
mlpfast follows, so fits on the workers never oversubscribe their cores.
"""

from __future__ import annotations

import joblib
import numpy as np
from dask import array as da
from dask_ml.wrappers import Incremental, ParallelPostFit
from distributed import Client, LocalCluster
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV

import mlpfast
from mlpfast.sklearn import MLPClassifier


def data(rows: int, chunk: int):
    """A classification problem as dask arrays, ``chunk`` rows per block (the unit of memory):
    the first four fifths to train on, the rest held out."""
    X, y = make_classification(
        n_samples=rows, n_features=20, n_informative=10, n_classes=3, random_state=0
    )
    X = da.from_array(X.astype(np.float32), chunks=(chunk, 20))
    y = da.from_array(y, chunks=chunk)
    cut = rows * 4 // 5
    return X[:cut], y[:cut], X[cut:], y[cut:]


def main() -> None:
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        print("threads mlpfast uses on each worker:", client.run(mlpfast.get_num_threads))
        X, y, X_test, y_test = data(50_000, 5_000)

        # 1. Data larger than memory: Incremental feeds one block at a time to partial_fit,
        #    so only a block is ever held (on the worker that has it).
        inc = Incremental(MLPClassifier((64,), random_state=0), scoring="accuracy")
        for _ in range(3):  # three passes over the blocks
            inc.partial_fit(X, y, classes=np.arange(3))
        print(f"Incremental: accuracy {inc.score(X_test, y_test):.4f}")

        # 2. Predictions over a dask array, block by block on the workers.
        clf = MLPClassifier((64,), early_stopping=True, random_state=0)
        clf.fit(X[:5_000].compute(), y[:5_000].compute())
        post = ParallelPostFit(clf)
        labels = post.predict(X_test)  # lazy: a dask array
        accuracy = float((labels == y_test).mean().compute())
        print(f"ParallelPostFit: {labels.npartitions} blocks predicted, accuracy {accuracy:.4f}")

        # 3. A grid search whose fits run on the cluster's workers.
        Xs, ys = X[:3_000].compute(), y[:3_000].compute()
        search = GridSearchCV(
            MLPClassifier(early_stopping=True, random_state=0),
            {"hidden_layer_sizes": [(32,), (64,)], "alpha": [1e-4, 1e-2]},
            cv=3,
        )
        with joblib.parallel_backend("dask"):
            search.fit(Xs, ys)
        print(f"GridSearchCV on dask: best {search.best_params_}, score {search.best_score_:.4f}")


if __name__ == "__main__":
    main()
