"""mlpfast's thread limit as threadpoolctl sees it.

threadpoolctl finds native thread pools among the shared libraries a process has loaded, and
controls each through a controller class. This module registers one for mlpfast's native
module (found by its file name and the C symbols it exports), so that
``threadpoolctl.threadpool_info()`` lists mlpfast with ``user_api="mlpfast"`` and
``threadpool_limits(1)`` — how scikit-learn users cap native threads — limits it as it limits
BLAS and OpenMP. Nothing happens when threadpoolctl is not installed, or is too old to accept
controllers from outside (``threadpoolctl.register``, 3.2 and later).
"""

from __future__ import annotations

from mlpfast._core import __version__, _thread_info


def register() -> bool:
    """Registers the controller with threadpoolctl; False when threadpoolctl cannot take it."""
    try:
        import threadpoolctl
    except ImportError:
        return False
    base = getattr(threadpoolctl, "LibController", None)
    add = getattr(threadpoolctl, "register", None)
    if base is None or add is None:
        return False

    class MlpfastController(base):  # type: ignore[misc, valid-type]
        """threadpoolctl's handle on mlpfast's thread limit (``mlpfast.set_num_threads``)."""

        user_api = "mlpfast"
        internal_api = "mlpfast"
        # The native module's file is _core.abi3.so (or _core.*.pyd); other packages have
        # modules of that name too, so the exported symbol decides.
        filename_prefixes = ("_core",)
        check_symbols = ("mlpfast_get_num_threads", "mlpfast_set_num_threads")

        def get_num_threads(self) -> int:
            return int(self.dynlib.mlpfast_get_num_threads())

        def set_num_threads(self, num_threads: int) -> None:
            self.dynlib.mlpfast_set_num_threads(int(num_threads))

        def get_version(self) -> str:
            return __version__

        def set_additional_attributes(self) -> None:
            # Where the limit comes from, and what one fit can use at most.
            self.limit_source, self.cores = _thread_info()

    add(MlpfastController)
    return True
