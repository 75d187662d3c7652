"""moto's server mode (``python -m moto.server``) as CloudWatch, on loopback, with IAM checks on.

moto checks every request's signature against its own IAM once the first
``INITIAL_NO_AUTH_ACTION_COUNT`` requests are spent: those create a user, its
policy and its access key, so every later request (the tests' ``PutMetricData``
writes and rollguard's ``GetMetricData``) must sign with that key, and a wrong
secret is refused as AWS refuses it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from servers.process import exited, start_on_free_port, terminate
from support import unavailable, wait_until

REGION = "eu-west-1"
#: Requests moto serves before it checks signatures: create user, put policy, create key.
SETUP_REQUESTS = 3
_ANYTHING = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


@dataclass
class MotoServer:
    """A running moto server; ``key_id``/``secret`` are the key its IAM accepts."""

    process: subprocess.Popen[bytes]
    port: int
    directory: Path
    key_id: str = ""
    secret: str = field(default="", repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, service: str, **keys: str) -> Any:
        import boto3

        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.url,
            aws_access_key_id=keys.get("key_id", self.key_id or "setup"),
            aws_secret_access_key=keys.get("secret", self.secret or "setup"),
        )

    def put(self, namespace: str, data: list[dict[str, Any]]) -> None:
        """Real ``PutMetricData`` writes, signed with the accepted key."""
        self.client("cloudwatch").put_metric_data(Namespace=namespace, MetricData=data)

    def stop(self) -> None:
        terminate(self.process)


def stamp(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


def _answers(server: MotoServer) -> bool:
    if server.process.poll() is not None:
        raise exited("moto", server.process.returncode, server.directory / "moto.log")
    try:
        return httpx.get(f"{server.url}/moto-api/data.json", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def running_moto(directory: Path) -> Iterator[MotoServer]:
    """Start moto's server with signatures checked after the IAM setup; stop it on exit."""
    try:
        import boto3  # noqa: F401
        import moto.server  # noqa: F401
    except ImportError as exc:
        unavailable(f"moto's server mode is not installed ({exc.name}): pip install 'moto[server]'")
    directory.mkdir(parents=True, exist_ok=True)
    log_path = directory / "moto.log"
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_REQUESTS)}

    def start(port: int) -> MotoServer:
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        return MotoServer(process, port, directory)

    def wait_ready(server: MotoServer) -> None:
        wait_until(lambda: _answers(server), timeout=60, interval=0.1, what="moto to answer")

    server = start_on_free_port(start, wait_ready)
    try:
        iam = server.client("iam")
        iam.create_user(UserName="rollguard")
        iam.put_user_policy(
            UserName="rollguard", PolicyName="all", PolicyDocument=json.dumps(_ANYTHING)
        )
        key = iam.create_access_key(UserName="rollguard")["AccessKey"]
        server.key_id, server.secret = key["AccessKeyId"], key["SecretAccessKey"]
        yield server
    finally:
        server.stop()
