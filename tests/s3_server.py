"""A real S3 API on loopback for the object-store tests: moto's server mode, in its own process,
with dummy credentials, reached through the endpoint environment variables that the same code
would read against AWS, GCS's S3 interface or MinIO.

``S3.env`` is what a client process needs (``AWS_ENDPOINT_URL``, ``FSSPEC_S3_ENDPOINT_URL``,
dummy keys, a region). Tests hand it to subprocesses (``atlasgrn`` commands, Ray clusters) and
apply it to themselves with ``monkeypatch`` for in-process checks.

moto keeps its buckets in memory, so restarting moto itself would lose them; a "server restart"
is therefore played by :mod:`tests.s3_fault_proxy`, the front the clients talk to.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

MOTO_SERVER = str(Path(sys.executable).with_name("moto_server"))
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_SESSION_TOKEN": "testing"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client_env(endpoint: str) -> dict[str, str]:
    """The variables a client needs to talk to ``endpoint`` (boto3, s3fs, our commands)."""
    return {**CREDENTIALS, "AWS_ENDPOINT_URL": endpoint, "FSSPEC_S3_ENDPOINT_URL": endpoint,
            # no instance-metadata lookups (seconds of timeouts off EC2)
            "AWS_EC2_METADATA_DISABLED": "true"}


@dataclass(frozen=True)
class S3:
    endpoint: str
    env: dict[str, str]

    def client(self):
        """A boto3 client for setting up and inspecting buckets behind the code under test."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def make_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                         Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def wait_until_serving(endpoint: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no S3 server answered at {endpoint} within {timeout_s} s")
            time.sleep(0.1)


@contextmanager
def moto_server(extra_env: dict[str, str] | None = None) -> Iterator[S3]:
    """Start ``moto_server`` on 127.0.0.1 and a free port; stop it afterwards."""
    if not Path(MOTO_SERVER).exists():
        raise RuntimeError(f"moto_server is not installed next to {sys.executable}: "
                           "pip install 'moto[server]'")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = dict(os.environ, **CREDENTIALS, **(extra_env or {}))
    proc = subprocess.Popen([MOTO_SERVER, "-H", "127.0.0.1", "-p", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_serving(endpoint)
        yield S3(endpoint, client_env(endpoint))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
