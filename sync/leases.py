"""Who may run an account's cycle: a lease in the state store, named ``host:pid``.

A lease expires on its own (``lease_ttl`` after its last renewal), so a worker that died on another machine
blocks its accounts for at most that long. A worker that died on this machine is recognised at once (its
pid is gone) and its lease is taken over: a restart after a crash resumes immediately.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from store import StateStore


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def dead_on_this_host(holder: str) -> bool:
    """Whether ``holder`` (``host:pid``) names a process of this host that no longer exists."""
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


def acquire(store: StateStore, account: str, holder: str, now: datetime, ttl: timedelta) -> bool:
    """Take or renew the account's lease; take over a dead local holder's lease at once."""
    if store.acquire_lease(account, holder, now, ttl):
        return True
    current = store.lease_holder(account)
    if current is not None and current[0] != holder and dead_on_this_host(current[0]):
        return store.acquire_lease(account, holder, now, ttl, take_over=current[0])
    return False
