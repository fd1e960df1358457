"""Pull and push through a DVC remote, so that nothing corrupt ever reaches the workspace.

`pull` fetches into the DVC cache first (the workspace is not touched), then checks what arrived:
- every newly fetched object is re-hashed (its md5 must be its name); a corrupt one is deleted from the cache.
  DVC's default (`verify = false`) would have trusted it and checked it out silently;
- `dvc status --cloud` then names each output the remote holds but the cache still lacks: corrupt objects
  (ours, or those DVC's `verify = true` refused without a word) and failed downloads.
Any of these, or a failed fetch (credentials, endpoint), is an error naming the remote and the outputs, raised
before anything is checked out. Outputs the remote lacks are not an error: `dvc repro` computes them.
"""

from __future__ import annotations

import socket
import sys
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from miad.hashing import file_md5
from miad.remote.dvc import dvc_json, error_lines, run_dvc, run_dvc_shown
from miad.remote.settings import Remote, RemoteError, check_no_committed_secrets, resolve_remote

CONNECT_TIMEOUT_S = 10  # the endpoint preflight: DVC itself retries a dead endpoint for minutes
PATHS_SHOWN = 20  # outputs listed in one message
CREDENTIALS_HINT = (
    "check its credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in the environment, or "
    "`dvc remote modify --local NAME access_key_id ...`), its URL and endpoint (`dvc remote list`, .dvc/config)"
)


@dataclass
class PullReport:
    """What a pull did."""

    remote: Remote | None
    fetched_objects: int = 0
    missing: list[str] = field(default_factory=list)  # outputs the remote lacks: `dvc repro` computes them


def cache_dir(repo: Path) -> Path:
    """The DVC cache directory of `repo` (`cache.dir` in its config, default .dvc/cache)."""
    proc = run_dvc(repo, "cache", "dir")
    if proc.returncode != 0:
        raise RemoteError(f"{repo}: `dvc cache dir` failed (is this a DVC repository?):\n{error_lines(proc)}")
    return (repo / proc.stdout.strip()).resolve()


def cache_objects(cache: Path) -> set[Path]:
    """Every object file of DVC 3's cache (files/md5/XX/YYY..., `.dir` listings included)."""
    root = cache / "files" / "md5"
    return {p for p in root.glob("*/*") if p.is_file() and not p.name.endswith(".unpacked")} if root.is_dir() else set()


def object_md5(path: Path) -> str:
    """The md5 an object's content must have: its two-character folder plus its name, without `.dir`."""
    return path.parent.name + path.name.removesuffix(".dir")


def drop_corrupt_objects(objects: set[Path]) -> list[str]:
    """Re-hash `objects`; delete (from the cache) and return the md5 names of those whose content differs."""
    corrupt = []
    for path in sorted(objects):
        expected = object_md5(path)
        if file_md5(path) != expected:
            path.unlink()
            corrupt.append(expected)
    return corrupt


def cloud_status(repo: Path, remote: Remote) -> dict[str, str]:
    """{output path: 'deleted' (on the remote only) | 'missing' (nowhere) | 'new' (local only)}."""
    status = dvc_json(repo, "status", "--cloud", "--remote", remote.name)
    if status is None:
        proc = run_dvc(repo, "status", "--cloud", "--remote", remote.name)
        raise RemoteError(f"{remote.describe()}: `dvc status --cloud` failed; {CREDENTIALS_HINT}:\n{error_lines(proc)}")
    return dict(status)


def check_endpoint(remote: Remote) -> None:
    """Fail at once, naming the remote, when an S3-compatible endpoint accepts no connection."""
    if remote.endpoint is None:
        return
    parts = urllib.parse.urlsplit(remote.endpoint)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise RemoteError(
            f"{remote.describe()}: cannot connect to its endpoint ({exc}); nothing in the workspace was changed; "
            "check `endpointurl` (`dvc remote modify --local NAME endpointurl URL` overrides it on this machine)"
        ) from exc


def _listing(paths: list[str]) -> str:
    shown = [f"    {p}" for p in sorted(paths)[:PATHS_SHOWN]]
    more = [f"    ... and {len(paths) - PATHS_SHOWN} more"] if len(paths) > PATHS_SHOWN else []
    return "\n".join(shown + more)


def pull(repo: Path, remote_name: str | None = None, jobs: int | None = None) -> PullReport:
    """Fetch everything the remote holds, verify it, then check it out; nothing is checked out on any error."""
    check_no_committed_secrets(repo)
    remote = resolve_remote(repo, remote_name)
    if remote is None:
        return PullReport(remote=None)
    check_endpoint(remote)
    cache = cache_dir(repo)
    before = cache_objects(cache)
    fetch = run_dvc_shown(repo, "fetch", "--remote", remote.name, *(["--jobs", str(jobs)] if jobs else []))
    if fetch.returncode != 0:
        raise RemoteError(
            f"{remote.describe()}: fetching failed, nothing in the workspace was changed; {CREDENTIALS_HINT}:\n"
            f"{error_lines(fetch)}"
        )
    fetched = cache_objects(cache) - before
    corrupt = drop_corrupt_objects(fetched)
    status = cloud_status(repo, remote)
    not_fetched = [path for path, state in status.items() if state == "deleted"]
    if corrupt or not_fetched:
        detail = (
            f"{len(corrupt)} fetched object(s) failed their md5 check and were deleted from the cache: "
            f"{', '.join(corrupt[:PATHS_SHOWN])}"
            if corrupt
            else "DVC's `verify = true` refused them (corrupt on the remote) or their download failed"
        )
        raise RemoteError(
            f"{remote.describe()}: {len(not_fetched)} output(s) are on the remote but could not be fetched intact, "
            f"so nothing was checked out:\n{_listing(not_fetched)}\n  {detail}.\n  Repair the remote from a workspace "
            "that has good copies: delete those objects on the remote, then `make publish` (`dvc push` skips objects "
            "that exist); or remove the remote to compute them here."
        )
    checkout = run_dvc(repo, "checkout", "--allow-missing", capture=False)
    if checkout.returncode != 0:
        raise RemoteError(f"{remote.describe()}: everything fetched was intact, but `dvc checkout` failed (see above)")
    missing = sorted(path for path, state in status.items() if state == "missing")
    return PullReport(remote=remote, fetched_objects=len(fetched) - len(corrupt), missing=missing)


def publish(repo: Path, remote_name: str | None = None, jobs: int | None = None) -> dict[str, str]:
    """`dvc push` data/, renders, models and results to the remote; return outputs that could not be pushed."""
    check_no_committed_secrets(repo)
    remote = resolve_remote(repo, remote_name)
    if remote is None:
        raise RemoteError(
            "no DVC remote configured: add one first, e.g. `miad remote add storage s3://BUCKET/miad` (docs/remote.md)"
        )
    check_endpoint(remote)
    push = run_dvc(repo, "push", "--remote", remote.name, *(["--jobs", str(jobs)] if jobs else []), capture=False)
    if push.returncode != 0:
        raise RemoteError(f"{remote.describe()}: `dvc push` failed (see above); {CREDENTIALS_HINT}")
    left = {path: state for path, state in cloud_status(repo, remote).items() if state in ("new", "missing")}
    if left:
        print(
            f"not on {remote.describe()} (not in this workspace's cache either: never computed here?):\n"
            f"{_listing(sorted(left))}",
            file=sys.stderr,
        )
    return left
