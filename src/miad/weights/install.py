"""`miad weights fetch`: download with a checksum, convert to safetensors, track with DVC (pushed and pulled like
every other input), recording where the file came from in its `.dvc` file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from miad.dvcfiles import write_meta
from miad.remote.dvc import error_lines, run_dvc
from miad.weights.catalog import PAPER_WEIGHTS
from miad.weights.convert import convert
from miad.weights.fetch import WeightsError, check_sha256_spec, download


@dataclass(frozen=True)
class Fetched:
    """What `fetch_weights` produced."""

    path: Path  # the safetensors file
    source_sha256: str  # full sha256 of the downloaded checkpoint
    dvc_file: Path | None  # its `.dvc` file, when tracked


def track(repo: Path, path: Path, meta: dict[str, str]) -> Path:
    """`dvc add` the file and write `meta` (source URL and checksums) into its `.dvc` file."""
    relative = path.resolve().relative_to(repo.resolve())
    proc = run_dvc(repo, "add", "--quiet", str(relative))
    if proc.returncode != 0:
        raise WeightsError(f"`dvc add {relative}` failed:\n{error_lines(proc)}")
    dvc_file = path.with_name(path.name + ".dvc")
    write_meta(dvc_file, meta)
    return dvc_file


def fetch_weights(
    name: str, out: Path, *, url: str | None = None, sha256: str | None = None, repo: Path | None = None
) -> Fetched:
    """Fetch backbone `name` (PAPER_WEIGHTS) from its pinned URL, or `url` with its own `sha256`, into `out`;
    track it with DVC in `repo` unless `repo` is None."""
    if name not in PAPER_WEIGHTS:
        raise WeightsError(f"unknown backbone {name!r}; known: {sorted(PAPER_WEIGHTS)}")
    source = PAPER_WEIGHTS[name]
    if url is not None and url != source.url and sha256 is None:
        raise WeightsError(f"--url {url}: a URL other than the pinned one needs its own --sha256")
    url, sha256 = url or source.url, check_sha256_spec(sha256 or source.sha256)
    download_path, digest = download(url, out.parent, sha256)
    try:
        convert(download_path, source.timm_name, out, url)
    finally:
        download_path.unlink(missing_ok=True)
    dvc_file = None
    if repo is not None:
        meta = {"source_url": url, "source_sha256": digest, "timm_model": source.timm_name}
        dvc_file = track(repo, out, meta)
    return Fetched(path=out, source_sha256=digest, dvc_file=dvc_file)
