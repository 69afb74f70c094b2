"""Object stores (S3 and its kin, through fsspec): one retry policy, and permanent failures named.

Retries live in the I/O layer, never in compute (xarray's rule): a probe never re-runs because a
byte range timed out. The client libraries retry first (botocore's attempts, then s3fs's); what
they give up on reaches :func:`with_retries`, the outer layer, which retries transient errors
(throttling, dropped or refused connections, timeouts) with jittered exponential backoff and logs
each retry. Permanent errors (a missing bucket or key, denied access) raise at once, and
:func:`permanent_error` turns them into one line naming the URL and the remedy.

The endpoint comes from the environment (``AWS_ENDPOINT_URL``, ``FSSPEC_S3_ENDPOINT_URL``), so
the same code runs against AWS, GCS's S3 interface, MinIO, or moto on loopback in the tests.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import threading
from collections.abc import Callable
from typing import TypeVar

from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from .errors import AtlasgrnError

T = TypeVar("T")

log = logging.getLogger("atlasgrn.objectstore")

#: attempts, and the first wait in seconds (doubling, jittered, capped): about 15 s of waiting
#: in all, enough to ride out an endpoint restart or a throttled prefix, short enough that a
#: misconfigured endpoint fails within a minute
MAX_ATTEMPTS = 6
FIRST_WAIT_S = 0.5
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
_DENIED_WORDS = ("AccessDenied", "Access Denied", "Forbidden", "InvalidAccessKeyId",
                 "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken")
#: URL schemes whose first path component is a bucket (or container)
BUCKET_SCHEMES = ("s3", "s3a", "gs", "gcs", "az", "abfs")


#: transient errors retried by :func:`with_retries` in this process (the engine reports the
#: count per block, so a run's manifest says how many retries it needed)
_retries_seen = 0
#: the same count per thread: a model replica scores two calls at once (one probing, one
#: writing), and each block reports only the retries its own thread made
_thread_retries = threading.local()


def retries_seen() -> int:
    """Retries :func:`with_retries` made in this process so far."""
    return _retries_seen


def retries_seen_in_thread() -> int:
    """Retries :func:`with_retries` made by the calling thread so far."""
    return getattr(_thread_retries, "count", 0)


class TransientReadError(OSError):
    """Raised by our own code (and tests) for a failure worth retrying."""


def is_transient(exc: BaseException) -> bool:
    """True for errors that a retry can cure: timeouts, dropped connections, throttling."""
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError, KeyError)):
        return False
    if isinstance(exc, (TimeoutError, ConnectionError, TransientReadError)):
        return True
    if any(c.__name__ in _TRANSIENT_NAMES for c in type(exc).__mro__):
        return True
    if isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS:
        return True
    status = getattr(exc, "status", None) or getattr(exc, "code", None)
    return status in (429, 500, 502, 503, 504)


def _log_retry(what: str, max_attempts: int) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        global _retries_seen
        _retries_seen += 1
        _thread_retries.count = retries_seen_in_thread() + 1
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("atlasgrn: transient object-store error%s (%s: %s); retry %d/%d in %.1f s",
                    f" on {what}" if what else "", type(exc).__name__,
                    " ".join(str(exc).split())[:160], state.attempt_number, max_attempts - 1,
                    wait)
    return before_sleep


def with_retries(fn: Callable[[], T], *, what: str = "", max_attempts: int = MAX_ATTEMPTS,
                 max_wait_s: float = 8.0, first_wait_s: float = FIRST_WAIT_S) -> T:
    """Call ``fn`` and retry it on transient errors with jittered exponential backoff; each
    retry is logged (logger ``atlasgrn.objectstore``) naming ``what`` was being done."""
    wrapped = retry(
        retry=retry_if_exception(is_transient),
        stop=stop_after_attempt(max_attempts),
        wait=wait_exponential_jitter(multiplier=min(first_wait_s, max_wait_s), max=max_wait_s,
                                     jitter=min(first_wait_s, max_wait_s)),
        before_sleep=_log_retry(what, max_attempts),
        reraise=True,
    )(fn)
    return wrapped()


def split_bucket(uri: str) -> tuple[str, str] | None:
    """``(scheme, bucket)`` of a bucket URL (``s3://bucket/key``), None for other URLs."""
    if "://" not in uri:
        return None
    scheme, rest = uri.split("://", 1)
    bucket = rest.split("/", 1)[0]
    return (scheme, bucket) if scheme in BUCKET_SCHEMES and bucket else None


def endpoint_of(scheme: str) -> str:
    """Where requests for ``scheme`` go, for messages ("the provider's default" when unset)."""
    if scheme in ("s3", "s3a"):
        return (os.environ.get("FSSPEC_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL")
                or "the provider's default endpoint")
    return "the provider's default endpoint"


def is_denied(exc: BaseException) -> bool:
    return isinstance(exc, PermissionError) or any(w in str(exc) for w in _DENIED_WORDS)


def permanent_error(exc: BaseException, uri: str, option: str) -> AtlasgrnError | None:
    """One line for an object-store failure no retry cures (None if ``exc`` is not one):
    denied access, an endpoint still unreachable after every retry, a missing bucket."""
    parts = split_bucket(uri)
    if parts is None:
        return None
    scheme = parts[0]
    if is_denied(exc):
        return AtlasgrnError(f"access denied by the object store ({type(exc).__name__}: "
                             f"{' '.join(str(exc).split())[:120]})", path=uri, key=option,
                             remedy="check the credentials (AWS_ACCESS_KEY_ID / AWS_PROFILE or "
                                    "the cluster's role) and the bucket policy")
    if is_transient(exc):
        return AtlasgrnError(f"the object store at {endpoint_of(scheme)} did not answer after "
                             f"{MAX_ATTEMPTS} attempts ({type(exc).__name__})", path=uri,
                             key=option, remedy="check AWS_ENDPOINT_URL and the network, then "
                                                "try again")
    if isinstance(exc, FileNotFoundError) and "bucket" in str(exc).lower():
        return missing_bucket(uri, option)
    return None


def missing_bucket(uri: str, option: str) -> AtlasgrnError:
    parts = split_bucket(uri)
    bucket = parts[1] if parts else uri
    return AtlasgrnError(f"bucket '{bucket}' does not exist", path=uri, key=option,
                         remedy="create the bucket, or correct the URL")


@functools.lru_cache(maxsize=64)
def _head_bucket(scheme: str, bucket: str) -> None:
    """One HEAD per bucket and process: a job opens its atlas several times while preparing,
    and only a success is remembered (``lru_cache`` keeps no exception)."""
    import fsspec

    fs = fsspec.filesystem(scheme)
    with_retries(lambda: fs.info(bucket), what=f"{scheme}://{bucket}")


def check_bucket(uri: str, option: str) -> None:
    """For a bucket URL, check the bucket exists and we may see it (one HEAD, retried when
    transient); raise one line otherwise. Other URLs and local paths pass unchecked.

    Object stores have no directories: writing ``s3://missing/run/x`` through s3fs would
    *create* the bucket, so outputs are checked here before anything is written.
    """
    parts = split_bucket(uri)
    if parts is None:
        return
    try:
        _head_bucket(*parts)
    except FileNotFoundError:
        raise missing_bucket(uri, option) from None
    except Exception as exc:  # classified below, re-raised when unknown
        error = permanent_error(exc, uri, option)
        if error is None:
            raise
        raise error from None
