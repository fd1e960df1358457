"""Which DVC remote the bundle talks to, how it is added, and a guard that credentials are never committed.

`.dvc/config` is committed: it holds a remote's URL, `endpointurl` (S3-compatible stores) and `verify = true`.
Credentials live in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ...) or in `.dvc/config.local`,
which DVC keeps out of git; a secret found in `.dvc/config` stops every remote command, naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from miad.errors import MiadError
from miad.remote.dvc import error_lines, run_dvc

# Remote options that are credentials, for every DVC remote type (S3, Azure, GCS, SSH, HTTP, Google Drive).
SECRET_OPTIONS = (
    "access_key_id",
    "secret_access_key",
    "session_token",
    "password",
    "account_key",
    "sas_token",
    "connection_string",
    "client_secret",
    "gdrive_client_secret",
    "token",
)
ENDPOINT_SCHEMES = ("http://", "https://")


class RemoteError(MiadError):
    """A remote is missing, misconfigured, unreachable or holds corrupt data; the message names it."""


@dataclass(frozen=True)
class Remote:
    """A configured DVC remote, as far as the bundle cares."""

    name: str
    url: str
    endpoint: str | None  # `endpointurl` of an S3-compatible store; None for AWS S3 and non-S3 remotes
    verify: bool  # DVC re-hashes what it downloads and refuses a corrupt object (silently: see miad.remote.sync)

    def describe(self) -> str:
        endpoint = f", endpoint {self.endpoint}" if self.endpoint else ""
        return f"DVC remote {self.name!r} ({self.url}{endpoint})"


def _config(repo: Path, level: str | None = None) -> dict:
    """DVC's config of `repo` (all levels merged, or one: 'repo' is the committed `.dvc/config`)."""
    from dvc.config import Config, ConfigError

    try:
        config = Config(dvc_dir=str(repo / ".dvc"))
        return dict(config.load_one(level)) if level else dict(config)
    except ConfigError as exc:
        raise RemoteError(f"{repo / '.dvc'}: DVC config is invalid: {exc}") from exc


def committed_secrets(repo: Path) -> list[str]:
    """`remote.NAME.OPTION` of every credential written into the committed `.dvc/config`."""
    remotes = _config(repo, "repo").get("remote", {})
    return [f"remote.{name}.{key}" for name, options in remotes.items() for key in options if key in SECRET_OPTIONS]


def check_no_committed_secrets(repo: Path) -> None:
    """Refuse to run with credentials in `.dvc/config` (it is committed); say where they belong instead."""
    found = committed_secrets(repo)
    if found:
        raise RemoteError(
            f"{repo / '.dvc' / 'config'} holds credentials ({', '.join(found)}) and is committed to git: move them to "
            "the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or to .dvc/config.local "
            "(`dvc remote modify --local NAME OPTION VALUE`), then `dvc remote modify --unset NAME OPTION`"
        )


def resolve_remote(repo: Path, name: str | None = None) -> Remote | None:
    """The remote to use: `name`, else DVC's default, else the only one; None when none is configured."""
    config = _config(repo)
    remotes = config.get("remote", {})
    if name is None:
        name = config.get("core", {}).get("remote")
        if name is None and len(remotes) > 1:
            raise RemoteError(
                f"{len(remotes)} DVC remotes ({', '.join(sorted(remotes))}) and no default: pass --remote NAME or "
                "set one with `dvc remote default NAME`"
            )
        if name is None and remotes:
            name = next(iter(remotes))
    if name is None:
        return None
    if name not in remotes:
        known = ", ".join(sorted(remotes)) or "none"
        raise RemoteError(f"DVC remote {name!r} is not configured (configured: {known}); add it with `miad remote add`")
    options = remotes[name]
    endpoint, verify = options.get("endpointurl"), bool(options.get("verify"))
    return Remote(name=name, url=options["url"], endpoint=endpoint, verify=verify)


def add_remote(repo: Path, name: str, url: str, *, endpoint: str | None, default: bool, force: bool) -> Remote:
    """`dvc remote add` with `verify = true` (and `endpointurl` for an S3-compatible store); no credentials."""
    if endpoint is not None:
        if not url.startswith("s3://"):
            raise RemoteError(f"--endpoint {endpoint}: an endpoint applies to s3:// remotes only, not to {url}")
        if not endpoint.startswith(ENDPOINT_SCHEMES):
            raise RemoteError(f"--endpoint {endpoint}: expected an http:// or https:// URL")
    steps = [
        ["remote", "add", *(["--default"] if default else []), *(["--force"] if force else []), name, url],
        ["remote", "modify", name, "verify", "true"],
        *([["remote", "modify", name, "endpointurl", endpoint]] if endpoint else []),
    ]
    for step in steps:
        proc = run_dvc(repo, *step)
        if proc.returncode != 0:
            raise RemoteError(f"`dvc {' '.join(step)}` failed:\n{error_lines(proc)}")
    remote = resolve_remote(repo, name)
    if remote is None:
        raise RemoteError(f"DVC remote {name!r} was added but cannot be read back from {repo / '.dvc'}")
    return remote
