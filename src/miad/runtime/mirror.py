"""Serve local wheel folders over HTTP on localhost, as a `--find-links` page for `docker build`.

A build's pip cannot see the host's disk, but with `--network host` it can reach 127.0.0.1. The files served
must still match the image's hash-locked requirements, so a mirror can only make a build faster, never
change what it installs. Where no mirror folder exists, builds download from PyPI.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

# The wheel folders of this project's build machines (pip.conf's find-links and the files of its local indexes).
DEFAULT_FOLDERS = (Path("/opt/pypi-more/files"), Path("/opt/pypi/files"), Path("/opt/wheels"))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def link_farm(folders: Sequence[Path], target: Path) -> int:
    """Symlink every wheel or sdist of `folders` into `target` (the first folder wins a name); return the count."""
    count = 0
    for folder in folders:
        for path in sorted(folder.iterdir()) if folder.is_dir() else []:
            link = target / path.name
            if path.is_file() and path.name.endswith((".whl", ".tar.gz", ".zip")) and not link.exists():
                link.symlink_to(path)
                count += 1
    return count


@contextlib.contextmanager
def serve(folders: Sequence[Path] = DEFAULT_FOLDERS) -> Iterator[str | None]:
    """Serve the files of `folders` as one directory listing on 127.0.0.1; yield its URL (None: no files)."""
    with tempfile.TemporaryDirectory(prefix="miad-wheels-") as tmp:
        if not link_farm([Path(f) for f in folders], Path(tmp)):
            yield None
            return
        handler = functools.partial(_QuietHandler, directory=tmp)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/"
        finally:
            server.shutdown()
            server.server_close()
