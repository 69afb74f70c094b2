"""Retries for reads from object stores: transient errors only, bounded, jittered.

Retries live in the I/O layer, never in compute (xarray's rule): a probe never re-runs because
a byte range timed out. Permanent errors (missing key, permission, corrupt data) raise at once.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import TypeVar

from tenacity import (
    retry,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

T = TypeVar("T")

MAX_ATTEMPTS = 5
_TRANSIENT_ERRNOS = {
    errno.EAGAIN, errno.ETIMEDOUT, errno.ECONNRESET, errno.ECONNABORTED,
    errno.ECONNREFUSED, errno.EPIPE, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EBUSY,
}
_TRANSIENT_NAMES = {
    # object-store client errors, matched by name so their packages stay optional
    "ClientConnectionError", "ClientOSError", "ServerDisconnectedError", "ServerTimeoutError",
    "ClientPayloadError", "EndpointConnectionError", "ReadTimeoutError", "ConnectTimeoutError",
    "ResponseStreamingError", "IncompleteReadError", "TransientError",
}


class TransientReadError(OSError):
    """Raised by our own code (and tests) for a failure worth retrying."""


def is_transient(exc: BaseException) -> bool:
    """True for errors that a retry can cure: timeouts, dropped connections, throttling."""
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError, KeyError)):
        return False
    if isinstance(exc, (TimeoutError, ConnectionError, TransientReadError)):
        return True
    if any(type(c).__name__ in _TRANSIENT_NAMES for c in type(exc).__mro__):
        return True
    if isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS:
        return True
    status = getattr(exc, "status", None) or getattr(exc, "code", None)
    return status in (429, 500, 502, 503, 504)


def with_retries(fn: Callable[[], T], *, max_attempts: int = MAX_ATTEMPTS,
                 max_wait_s: float = 8.0) -> T:
    """Call ``fn`` and retry it on transient errors with jittered exponential backoff."""
    wrapped = retry(
        retry=retry_if_exception(is_transient),
        stop=stop_after_attempt(max_attempts),
        wait=wait_random_exponential(multiplier=0.05, max=max_wait_s),
        reraise=True,
    )(fn)
    return wrapped()
