"""A local HTTP server for a folder: stands in for the public weight URLs, which cannot be reached here."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

from miad.runtime.mirror import serving


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """Serve `folder` on 127.0.0.1 (a free port) and yield its base URL; the server stops on exit."""
    with serving(partial(QuietHandler, directory=str(folder))) as base:
        yield base
