"""A package index on localhost for `docker build`: the local mirror's files first, PyPI's for the rest.

A build's pip cannot see the host's disk, but with `--network host` it can reach 127.0.0.1. pip picks among
equal files from several indexes by itself (and it picked PyPI's), so this server is the build's only index:
for each project it lists the files of the local mirror folders (PEP 503 pages with sha256 fragments, as
/opt/pypi/simple has them) and adds PyPI's links for every file the mirror lacks. The images' requirements
are hash-locked, so a mirror can only make a build faster, never change what it installs.
"""

from __future__ import annotations

import contextlib
import http.server
import re
import shutil
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

# The local PEP 503 mirrors of this project's build machines (pip.conf's extra indexes): ROOT/simple/<project>/
DEFAULT_MIRRORS = (Path("/opt/pypi-more"), Path("/opt/pypi"))
UPSTREAM = "https://pypi.org/simple"
ANCHOR = re.compile(r'<a\s[^>]*?href="([^"]+)"[^>]*>([^<]+)</a>', re.IGNORECASE)
UPSTREAM_TIMEOUT = 60  # seconds


def normalize(project: str) -> str:
    """PEP 503's normalised project name."""
    return re.sub(r"[-_.]+", "-", project).lower()


def local_anchors(mirrors: Sequence[Path], project: str) -> dict[str, str]:
    """{filename: anchor tag with its href pointing at this server} from the mirrors' pages for `project`."""
    anchors: dict[str, str] = {}
    for index, root in enumerate(mirrors):
        page = root / "simple" / project / "index.html"
        if not page.is_file():
            continue
        for match in ANCHOR.finditer(page.read_text(encoding="utf-8", errors="replace")):
            href, name = match.group(1), match.group(2).strip()
            target = root / "simple" / project / href.split("#", 1)[0]
            if name not in anchors and target.resolve().is_file():
                fragment = "#" + href.split("#", 1)[1] if "#" in href else ""
                local = match.group(0).replace(f'"{href}"', f'"/files/{index}/{target.name}{fragment}"', 1)
                anchors[name] = local
    return anchors


def upstream_anchors(upstream: str, project: str) -> dict[str, str]:
    """{filename: anchor tag} from the upstream index's page for `project` (empty when it cannot be read)."""
    request = urllib.request.Request(f"{upstream}/{project}/", headers={"Accept": "text/html"})
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


def project_page(mirrors: Sequence[Path], upstream: str | None, project: str) -> str:
    """The merged PEP 503 page: the mirrors' files, then upstream's files the mirrors lack."""
    anchors = local_anchors(mirrors, project)
    for name, anchor in (upstream_anchors(upstream, project) if upstream else {}).items():
        anchors.setdefault(name, anchor)
    body = "\n".join(anchors.values())
    return f"<!DOCTYPE html>\n<html><body>\n{body}\n</body></html>\n"


def _handler(mirrors: Sequence[Path], upstream: str | None) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = [p for p in self.path.split("?", 1)[0].split("/") if p]
            if len(parts) == 2 and parts[0] == "simple":
                data = project_page(mirrors, upstream, normalize(parts[1])).encode()
                self._send(200, "text/html", len(data))
                self.wfile.write(data)
            elif len(parts) == 3 and parts[0] == "files" and parts[1].isdigit() and int(parts[1]) < len(mirrors):
                path = mirrors[int(parts[1])] / "files" / parts[2]
                if "/" in parts[2] or not path.is_file():
                    self._send(404, "text/plain", 0)
                    return
                self._send(200, "application/octet-stream", path.stat().st_size)
                with path.open("rb") as handle:
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
def serve(mirrors: Sequence[Path] = DEFAULT_MIRRORS, upstream: str | None = UPSTREAM) -> Iterator[str | None]:
    """Serve the merged index on 127.0.0.1; yield its URL (…/simple), or None when no mirror folder exists."""
    mirrors = [Path(m) for m in mirrors if (Path(m) / "simple").is_dir()]
    if not mirrors:
        yield None
        return
    with serving(_handler(mirrors, upstream)) as base:
        yield f"{base}/simple"
