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
    if pid == 0:  # the child: do the work, never return into the parent's code
        os.close(read_end)
        os.dup2(write_end, 2)
        os.close(write_end)
        code = EXIT_FAILED_BLOCKS
        try:
            code = work()
        except AtlasgrnError as exc:
            print(f"{prog}: error: {exc}", file=sys.stderr)
            code = EXIT_BAD_INPUT
        except KeyboardInterrupt:
            code = 130
        except BaseException:  # noqa: BLE001 - a crash keeps its traceback
            traceback.print_exc()
        finally:
            _shutdown_ray()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(write_end)
    relay = threading.Thread(target=_relay_stderr, args=(read_end,), daemon=True,
                             name="atlasgrn-stderr")
    relay.start()
    code = _wait(pid)
    relay.join(timeout=1.0)  # Ray processes the child started may hold the pipe open
    return _outcome(code, out_uri, prog, say)


def _shutdown_ray() -> None:
    """What ``atexit`` would do on a normal exit (``os._exit`` skips it): stop a Ray started
    here, disconnect from a cluster."""
    ray = sys.modules.get("ray")
    try:
        if ray is not None and ray.is_initialized():
            ray.shutdown()
    except Exception:  # noqa: BLE001 - exiting anyway
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


def _wait(pid: int) -> int:
    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    old = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
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
    return os.waitstatus_to_exitcode(status)


def _outcome(code: int, out_uri: str, prog: str, say: Callable[[str], None]) -> int:
    if code in (EXIT_OK, EXIT_BAD_INPUT, EXIT_INTERRUPTED):
        return code
    report = mark_interrupted(out_uri, code)
    if report is None:  # the child recorded its outcome (e.g. failed blocks): its code stands
        return code
    say(f"{prog}: interrupted: {report}")
    return EXIT_INTERRUPTED


def mark_interrupted(out_uri: str, code: int) -> str | None:
    """If the run at ``out_uri`` is still ``running``, record it as ``interrupted`` and return
    the line to print; None when the run recorded another outcome (or never started)."""
    from .output import RunOutput, read_manifest, write_manifest

    how = f"signal {-code}" if code < 0 else f"exit code {code}"
    try:
        out = RunOutput(out_uri)
        manifest = read_manifest(out)
    except Exception:  # noqa: BLE001 - the store itself may be what failed
        return (f"the job's driver ended ({how}) and {out_uri} could not be read; rerun the "
                "same command to resume")
    if manifest is None or manifest.get("status") != "running":
        return None
    planned = int(manifest.get("plan", {}).get("blocks", 0))
    safe = sum(1 for part in out.listdir("edges") for name in out.listdir("edges", part)
               if name.endswith(".parquet") and not name.startswith("."))
    manifest["status"] = "interrupted"
    manifest["interrupted"] = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "driver": how,
                               "blocks_safe": safe, "blocks_planned": planned}
    try:
        write_manifest(out, manifest)
    except Exception:  # noqa: BLE001 - "where it still can"
        pass
    return (f"the job's driver ended before the run did ({how}: Ray ends a driver this way when "
            f"its node or raylet is lost; a crash prints a traceback above); {safe} of "
            f"{planned} block(s) are safe in {out.uri}; rerun the same command to resume")
