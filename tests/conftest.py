"""Shared pytest fixtures for the mlpfast test suite."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, fixed-seed numpy generator per test."""
    return np.random.default_rng(12345)


@pytest.fixture
def restore_threads():
    """Restore mlpfast's thread count after a test that changes it."""
    import mlpfast

    before = mlpfast.get_num_threads()
    yield before
    mlpfast.set_num_threads(before)
