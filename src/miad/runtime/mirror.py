"""The package indexes of this machine's pip, made reachable from a `docker build` (`make images`).

A build's pip cannot see the host's disk, but with `--network host` it can reach 127.0.0.1. `pip_settings` reads
pip's own configuration (`pip config list`: index-url, extra-index-url and cert from pip's config files and PIP_*
variables). When those name local (`file://`) PEP 503 indexes, `serve` puts them on 127.0.0.1 merged with pip's
remote indexes (its index-url, or pip's own default, then any remote extra-index-url): for each project the local
files first, then the remote files they lack. pip picks among equal files from several indexes by itself, so the
merged server is the build's only index. The images' requirements are hash-locked, so a local index can only make
a build faster, never change what it installs. Nothing here names a machine: without local indexes nothing is
served, and the build uses pip's configured index-url (or pip's default).
"""

from __future__ import annotations

import ast
import contextlib
import http.server
import re
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ANCHOR = re.compile(r'<a\s[^>]*?href="([^"]+)"[^>]*>([^<]+)</a>', re.IGNORECASE)
UPSTREAM_TIMEOUT = 60  # seconds
SECTIONS = (":env:", "install", "global")  # pip's precedence for `pip install`: PIP_* variables, then config files


@dataclass(frozen=True)
class PipSettings:
    """What the images' pip should use, from this machine's pip configuration."""

    index_url: str | None  # None: pip's own default index
    extra_index_urls: tuple[str, ...] = ()
    cert: Path | None = None  # a CA bundle (pip behind an inspecting proxy)

    @property
    def indexes(self) -> list[str]:
        """Every index pip would read, in pip's order (the index-url, or pip's default, first)."""
        return [self.index_url or default_index(), *self.extra_index_urls]

    @property
    def local_indexes(self) -> list[Path]:
        """The `file://` indexes among them, as folders holding `<project>/index.html`."""
        return [Path(urllib.parse.unquote(urllib.parse.urlparse(u).path)) for u in self.indexes if _is_file(u)]

    @property
    def remote_indexes(self) -> list[str]:
        return [u.rstrip("/") for u in self.indexes if not _is_file(u)]


def _is_file(url: str) -> bool:
    return urllib.parse.urlparse(url).scheme == "file"


def default_index() -> str:
    """pip's own default index: what pip reads when no index-url is configured."""
    from pip._internal.models.index import PyPI  # pip's constant, so this module names no index itself

    return PyPI.simple_url


def parse_pip_config(listing: str) -> dict[str, str]:
    """{name: value} from `pip config list` output (`section.name='value'` lines), by pip's precedence."""
    found: dict[tuple[str, str], str] = {}
    for line in listing.splitlines():
        key, sep, raw = line.partition("=")
        section, dot, name = key.rpartition(".")
        if not sep or not dot:
            continue
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw.strip("'\"")
        found[(section, name)] = str(value)
    settings = {}
    for section in reversed(SECTIONS):  # lowest precedence first, each higher one overrides
        settings.update({name: value for (sec, name), value in found.items() if sec == section})
    return settings


def pip_settings(python: str = sys.executable, config: Mapping[str, str] | None = None) -> PipSettings:
    """This machine's pip settings (`python -m pip config list`, or `config` as parse_pip_config returns it)."""
    if config is None:
        listing = subprocess.run(
            [python, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False
        ).stdout
        config = parse_pip_config(listing)
    cert = config.get("cert")
    return PipSettings(
        index_url=config.get("index-url") or None,
        extra_index_urls=tuple(config.get("extra-index-url", "").split()),
        cert=Path(cert) if cert and Path(cert).is_file() else None,
    )


def normalize(project: str) -> str:
    """PEP 503's normalised project name."""
    return re.sub(r"[-_.]+", "-", project).lower()


def local_anchors(indexes: Sequence[Path], project: str, files: dict[str, Path]) -> dict[str, str]:
    """{filename: anchor tag pointing at this server} from the local indexes' pages for `project`; registers each
    file it links in `files` ({served path: file}), so the server hands out only files a page named."""
    anchors: dict[str, str] = {}
    for number, root in enumerate(indexes):
        page = root / project / "index.html"
        if not page.is_file():
            continue
        for match in ANCHOR.finditer(page.read_text(encoding="utf-8", errors="replace")):
            href, name = match.group(1), match.group(2).strip()
            target = (page.parent / urllib.parse.unquote(href.split("#", 1)[0])).resolve()
            if name in anchors or not target.is_file():
                continue
            served = f"/files/{number}/{project}/{urllib.parse.quote(target.name)}"
            files[served] = target
            fragment = "#" + href.split("#", 1)[1] if "#" in href else ""
            anchors[name] = match.group(0).replace(f'"{href}"', f'"{served}{fragment}"', 1)
    return anchors


def remote_anchors(index: str, project: str) -> dict[str, str]:
    """{filename: anchor tag} from a remote index's page for `project` (empty when it cannot be read)."""
    request = urllib.request.Request(f"{index}/{project}/", headers={"Accept": "text/html"})
    try:
        with urllib.request.urlopen(request, timeout=UPSTREAM_TIMEOUT) as response:
            text = response.read().decode("utf-8", errors="replace")
            base = response.geturl()
    except (urllib.error.URLError, OSError):
        return {}
    anchors = {}
    for match in ANCHOR.finditer(text):
        href = match.group(1)
        absolute = urllib.parse.urljoin(base, href)
        anchors[match.group(2).strip()] = match.group(0).replace(f'"{href}"', f'"{absolute}"', 1)
    return anchors


def project_page(indexes: Sequence[Path], remotes: Sequence[str], project: str, files: dict[str, Path]) -> str:
    """The merged PEP 503 page: the local indexes' files, then the remote indexes' files they lack."""
    anchors = local_anchors(indexes, project, files)
    for remote in remotes:
        for name, anchor in remote_anchors(remote, project).items():
            anchors.setdefault(name, anchor)
    body = "\n".join(anchors.values())
    return f"<!DOCTYPE html>\n<html><body>\n{body}\n</body></html>\n"


def _handler(indexes: Sequence[Path], remotes: Sequence[str]) -> type[http.server.BaseHTTPRequestHandler]:
    files: dict[str, Path] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            parts = [p for p in path.split("/") if p]
            if len(parts) == 2 and parts[0] == "simple":
                data = project_page(indexes, remotes, normalize(parts[1]), files).encode()
                self._send(200, "text/html", len(data))
                self.wfile.write(data)
            elif path in files:
                self._send(200, "application/octet-stream", files[path].stat().st_size)
                with files[path].open("rb") as handle:
                    shutil.copyfileobj(handle, self.wfile)
            else:
                self._send(404, "text/plain", 0)

        def _send(self, code: int, kind: str, length: int) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(length))
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextlib.contextmanager
def serving(handler: Callable[..., http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """Run `handler` on 127.0.0.1 (a free port) in a thread; yield the base URL; stop the server on exit."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextlib.contextmanager
def serve(settings: PipSettings) -> Iterator[str | None]:
    """The index URL the build's pip should use: the merged server's (…/simple) while it runs when `settings` name
    a local index that exists; else the configured index-url; None for pip's default."""
    indexes = [p for p in settings.local_indexes if p.is_dir()]
    if not indexes:
        yield settings.index_url if settings.index_url and not _is_file(settings.index_url) else None
        return
    with serving(_handler(indexes, settings.remote_indexes)) as base:
        yield f"{base}/simple"
