"""The Jupyter kernel a pipeline runs on, with its own output sent to the run folder.

A kernel process inherits the runner's stdout and stderr: its start-up warnings, its
complaints while it is stopped (a cell over its time limit, a shutdown racing a reply) and
whatever the notebook's own subprocesses print (Dask workers) would land on the terminal of
``polylab pipeline run``, whose failure output must be one line. ``logging_kernel_manager``
makes a kernel manager class that starts the kernel with both streams appended to a file
(``kernel.log`` in the run folder, next to the executed notebook): kept, never in the way.
Cell outputs are unaffected (they travel over the kernel's messages into the notebook).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["KERNEL_LOG", "logging_kernel_manager"]

KERNEL_LOG = "kernel.log"


def logging_kernel_manager(log_path: Path) -> type[Any]:
    """An ``AsyncKernelManager`` subclass (nbclient's default kind) whose kernels write their
    stdout and stderr to ``log_path`` (appended; created when the kernel starts)."""
    from jupyter_client.manager import AsyncKernelManager

    class LoggingKernelManager(AsyncKernelManager):
        """Starts the kernel with its output streams in ``log_path``."""

        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            with open(log_path, "ab") as log:  # the kernel keeps its own copy of the fd
                kw["stdout"] = log
                kw["stderr"] = log
                await super()._async_launch_kernel(kernel_cmd, **kw)

    return LoggingKernelManager
