"""The job runs in a forked child; the parent reports what a lost driver cannot.

When the Ray node under the driver dies (its raylet or the head is killed, a spot node is
preempted), Ray ends the driver process from its core worker: no Python ``except`` or ``atexit``
runs, the process exits 1 with only Ray's own lines, and the manifest stays at ``running``
although every finished block is safely on disk. So ``python -m atlasgrn.run`` forks before
anything starts Ray: the child does the work, the parent only waits. If the child ends without
recording an outcome (the manifest still says ``running``), the parent marks the manifest
``interrupted`` with the number of blocks safe, prints one line saying so and that a rerun
resumes, and exits with :data:`EXIT_INTERRUPTED`.

The parent also passes the child's stderr through, minus the lines Ray prints on every run that a
user cannot act on (:data:`NOISE`): an error-level note about actor constructor arguments that
Ray Data itself causes, the token-authentication notice, the progress-bar notice. Every other
line, errors included, is kept.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from ..errors import EXIT_BAD_INPUT, AtlasgrnError

EXIT_OK, EXIT_FAILED_BLOCKS, EXIT_INTERRUPTED = 0, 1, 3
#: Set to run the job in this process (tests, debuggers, platforms without fork).
IN_PROCESS_ENV = "ATLASGRN_IN_PROCESS"
#: Lines Ray prints on every run that no user can act on (see the module docstring).
NOISE = re.compile("|".join([
    r"has constructor arguments in the object store and max_restarts > 0",
    r"Token authentication is enabled for this Ray cluster",
    r"Progress bars disabled\. To enable",
]))


def run_supervised(work: Callable[[], int], out_uri: str, prog: str,
                   log: Callable[[str], None] | None = None) -> int:
    """``work()`` (returning an exit code; bad input raises :class:`AtlasgrnError`) in a forked
    child, then the child's code, or :data:`EXIT_INTERRUPTED` after reporting a lost driver."""
    say = log or (lambda line: print(line, file=sys.stderr, flush=True))
    if os.environ.get(IN_PROCESS_ENV) or not hasattr(os, "fork") or _ray_running():
        return work()
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        _child(work, write_end, prog)  # never returns
    os.close(write_end)
    relay = threading.Thread(target=_relay_stderr, args=(read_end,), daemon=True,
                             name="atlasgrn-stderr")
    relay.start()
    code, stopped_by = _wait(pid)
    relay.join(timeout=1.0)  # Ray processes the child started may hold the pipe open
    return _outcome(code, stopped_by, out_uri, prog, say)


class _Stopped(BaseException):
    """SIGTERM in the child, raised so that clean-up (stopping a local Ray) still runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_stopped(signum: int, _frame: object) -> None:
    raise _Stopped(signum)


_IN_CHILD = False


def reclaim_sigterm() -> None:
    """Called after ``ray.init``: Ray installs its own SIGTERM handler in a driver (it dumps a
    stack and exits 1 while the run's threads still talk to Ray); in the supervised child a stop
    must instead unwind, stop the local Ray and exit 128+15."""
    if _IN_CHILD:
        signal.signal(signal.SIGTERM, _raise_stopped)


def _child(work: Callable[[], int], stderr_fd: int, prog: str) -> None:
    """Do the work and leave with ``os._exit``, whatever happens (a second Ctrl-C during
    clean-up included): the child must never return into the parent's code."""
    global _IN_CHILD
    _IN_CHILD = True
    code = EXIT_FAILED_BLOCKS
    try:
        signal.signal(signal.SIGTERM, _raise_stopped)
        _die_with_parent()
        os.dup2(stderr_fd, 2)
        os.close(stderr_fd)
        try:
            code = work()
        except AtlasgrnError as exc:
            print(f"{prog}: error: {exc}", file=sys.stderr)
            code = EXIT_BAD_INPUT
        except KeyboardInterrupt:
            code = 128 + signal.SIGINT
        except _Stopped as exc:
            code = 128 + exc.signum
        except BaseException:  # noqa: BLE001 - a crash keeps its traceback
            traceback.print_exc()
        finally:
            _shutdown_ray()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _die_with_parent() -> None:
    """Linux: the kernel sends the child SIGTERM if the parent dies (``kill -9`` of the job's
    process, a scheduler that kills only the main PID), so no orphan driver keeps writing."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1  # noqa: N806 - the kernel's name
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() == 1:  # the parent died before prctl took effect
            os._exit(128 + signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the parent's forwarding is all there is
        pass


def _shutdown_ray() -> None:
    """What ``atexit`` would do on a normal exit (``os._exit`` skips it): stop a Ray started
    here, disconnect from a cluster."""
    ray = sys.modules.get("ray")
    try:
        if ray is not None and ray.is_initialized():
            ray.shutdown()
    except BaseException:  # noqa: BLE001 - exiting anyway, even on a second Ctrl-C
        pass


def _relay_stderr(fd: int) -> None:
    with os.fdopen(fd, "rb", buffering=0) as pipe:
        pending = b""
        while True:
            chunk = pipe.read(65536)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                _forward(line + b"\n")
        if pending:
            _forward(pending)


def _forward(line: bytes) -> None:
    if NOISE.search(line.decode("utf-8", "replace")):
        return
    try:
        sys.stderr.buffer.write(line)
        sys.stderr.flush()
    except (AttributeError, ValueError, OSError):  # a replaced or closed stderr
        pass


def _ray_running() -> bool:
    """A process already holding Ray (a notebook, a test session) must not fork: the child would
    inherit Ray's threads and sockets half-alive."""
    ray = sys.modules.get("ray")
    return bool(ray is not None and getattr(ray, "is_initialized", lambda: False)())


def _wait(pid: int) -> tuple[int, int | None]:
    """The child's exit code, and the signal that stopped the parent (forwarded), if any.

    SIGTERM (``kill``, ``ray job stop``) is forwarded. SIGINT is not: a terminal's Ctrl-C
    already reaches the whole process group, and a second one would interrupt the child's
    clean-up; it is only remembered, so the outcome can say the user stopped the run.
    """
    stopped_by: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        stopped_by.append(signum)
        if signum == signal.SIGTERM:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        while True:
            try:
                _, status = os.waitpid(pid, 0)
                break
            except InterruptedError:
                continue
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    return os.waitstatus_to_exitcode(status), (stopped_by[0] if stopped_by else None)


def _outcome(code: int, stopped_by: int | None, out_uri: str, prog: str,
             say: Callable[[str], None]) -> int:
    if code in (EXIT_OK, EXIT_BAD_INPUT, EXIT_INTERRUPTED):
        return code
    died_by = -code if code < 0 else None
    if died_by is not None:
        code = 128 + died_by  # a shell's convention, not a negative status
    signum = stopped_by or died_by or (code - 128 if code > 128 else None)
    if stopped_by is not None or code in (128 + signal.SIGINT, 128 + signal.SIGTERM):
        how = f"stopped by {signal.Signals(signum).name}" if signum else "stopped"
    elif died_by is not None:
        how = f"killed by {signal.Signals(died_by).name}"
    else:
        how = None
    if stopped_by is not None:
        code = 128 + stopped_by  # a job stopped by a signal reports it, whatever the child did
    report = mark_interrupted(out_uri, code, how)
    if report is None:  # the child recorded its outcome (e.g. failed blocks): its code stands
        if how is not None:
            say(f"{prog}: {how}")
        return code
    say(f"{prog}: interrupted: {report}")
    return code if how is not None and how.startswith("stopped") else EXIT_INTERRUPTED


def mark_interrupted(out_uri: str, code: int, how: str | None = None) -> str | None:
    """If the run at ``out_uri`` is still ``running``, record it as ``interrupted`` and return
    the line to print; None when the run recorded another outcome (or never started).

    ``how`` says what ended the driver when the parent knows (a signal); otherwise the only
    silent way out is Ray ending a driver whose node is gone, or a crash with a traceback.
    """
    from .output import RunOutput, read_manifest, write_manifest

    if how is None:
        how = (f"exit code {code}: Ray ends a driver this way when its node or raylet is lost; "
               "a crash prints a traceback above")
    try:
        out = RunOutput(out_uri)
        manifest = read_manifest(out)
    except Exception:  # noqa: BLE001 - the store itself may be what failed
        return (f"the job's driver ended ({how}) and {out_uri} could not be read; rerun the "
                "same command to resume")
    if manifest is None or manifest.get("status") != "running":
        return None
    planned = int(manifest.get("plan", {}).get("blocks", 0))
    safe = out.count_edge_files()
    manifest["status"] = "interrupted"
    manifest["interrupted"] = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "driver": how,
                               "blocks_safe": safe, "blocks_planned": planned}
    stored = _stored_blocks(manifest.get("store"))
    if stored is not None:
        manifest["interrupted"]["store_blocks"] = stored
    try:
        write_manifest(out, manifest)
    except Exception:  # noqa: BLE001 - "where it still can"
        pass
    kept = (f"; the probe store holds {stored} scored block(s) of the {union} the run probes"
            if stored is not None and (union := manifest["store"].get("union_blocks"))
            else "")
    return (f"the job's driver ended before the run did ({how}); {safe} of {planned} "
            f"block(s) are safe in {out.uri}{kept}; rerun the same command to resume")


def _stored_blocks(store: Any) -> int | None:
    """Scored blocks in a universal-mode run's probe store (a shared store may hold other
    runs' blocks too); None when there is no store or it cannot be listed."""
    if not isinstance(store, dict) or not store.get("scores"):
        return None
    try:
        from .output import RunOutput

        return sum(1 for n in RunOutput(store["scores"]).listdir()
                   if n.endswith(".parquet") and not n.startswith("."))
    except Exception:  # noqa: BLE001 - "where it still can"
        return None
