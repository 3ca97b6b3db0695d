"""Stopping a running search from inside Tune the way Ctrl-C does: every trial's state saved,
every trial resumable."""

from __future__ import annotations

import os
import signal
import threading

__all__ = ["stop_like_ctrl_c"]


def stop_like_ctrl_c() -> bool:
    """Ask Tune to end the running search as on Ctrl-C; False if it cannot be asked here.

    Tune stops an experiment gracefully on SIGUSR1 as on SIGINT (state saved, trials paused
    with their checkpoints); its handler is installed in the main thread while a search runs.
    """
    if threading.current_thread() is threading.main_thread() and callable(signal.getsignal(signal.SIGUSR1)):
        os.kill(os.getpid(), signal.SIGUSR1)
        return True
    return False
