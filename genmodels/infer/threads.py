"""One torch thread while a small batch is stepped token by token.

A decoder step multiplies a few rows by a few hundred columns: splitting that over threads costs more than
it saves, and where other work (other sessions of the app, other processes) holds the cores, the threads
wait on each other at every one of thousands of steps. Measured on two busy cores: harmonising 32 bars took
155 s with torch's two threads and 13 s with one. ``torch.set_num_threads`` is process-wide, so the
previous count is restored when the last of any concurrent users leaves.
"""

from __future__ import annotations

import contextlib
import threading

import torch

_lock = threading.Lock()
_users = 0
_before = 1


@contextlib.contextmanager
def single_threaded():
    global _users, _before
    with _lock:
        if _users == 0:
            _before = torch.get_num_threads()
            torch.set_num_threads(1)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                torch.set_num_threads(_before)
