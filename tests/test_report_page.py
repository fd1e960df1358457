"""results/report.html: self-contained, deterministic, and what a reader sees in a real browser (Debian's chromium)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest

from miad.claims.findings import FINDINGS
from miad.claims.output import write_claims
from miad.claims.rules import CONTRADICTED, HOLDS, Verdict
from miad.reporting import tables
from miad.reporting.estimates import Estimate
from miad.reporting.page import PAGE_NAME, build_page, write_page
from tests.project_copy import REPO

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
VOID = {"meta", "img", "br", "hr", "link", "input"}
HEADINGS = ("The paper's findings", "Table 3.", "Table 4.", "Table 5.", "Table 6.", "Table 7.", "How this was made")


class Page(HTMLParser):
    """The tags, img attributes, links and headings of a page; open/close tags must balance."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.imgs: list[dict[str, str | None]] = []
        self.links: list[str] = []
        self.headings: list[str] = []
        self._heading: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img":
            self.imgs.append(values)
        self.links += [v for k, v in attrs if k in ("href", "src") and v and not v.startswith("data:")]
        if tag in ("h1", "h2", "h3"):
            self._heading = []
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()
        if tag in ("h1", "h2", "h3") and self._heading is not None:
            self.headings.append("".join(self._heading))
            self._heading = None

    def handle_data(self, data: str) -> None:
        if self._heading is not None:
            self._heading.append(data)


def tiny_png(colour: int) -> bytes:
    image = np.full((6, 8, 3), colour, np.uint8)
    image[2:4, 2:6] = 255 - colour
    ok, data = cv2.imencode(".png", image)
    assert ok
    return data.tobytes()


def synthetic_results(root: Path) -> Path:
    """A small results folder as the report stage writes it: tables, claims, two figures, provenance sidecars."""
    out = root / "results"
    (out / "tables").mkdir(parents=True)
    wide = Estimate(0.9, np.linspace(0.85, 0.95, 201))  # the paper's 0.68 lies outside: marked
    results = {"main/electrical_insulator": {"rd": {"image_auroc": wide, "recall_at_fpr": 0.1, "aupro": 0.5}}}
    note = ["Profile `<smoke>` & a note that needs escaping."]
    made = [
        tables.main_table("table3", results, ("image_auroc", "recall_at_fpr")),
        tables.main_table("table4", results, ("aupro",)),
        tables.factor_table("table5", "electrical_insulator", results),
        tables.factor_table("table6", "witness_mark", results),
        tables.size_table({1.0: results}),
    ]
    for table in made:
        (out / "tables" / f"{table.name}.md").write_text(tables.to_markdown(table, note), encoding="utf-8")
    verdicts = [
        Verdict(HOLDS, 0.12, (0.05, 0.2), "effect > 0", finding=FINDINGS[0].id, confidence=0.95),
        Verdict(CONTRADICTED, -0.3, (-0.4, -0.2), "effect > 0 <but>", finding=FINDINGS[1].id, confidence=0.95),
    ]
    write_claims(verdicts, out / "tables", profile="smoke")
    (out / "figures").mkdir()
    (out / "figures" / "fidelity.png").write_bytes(tiny_png(20))
    (out / "figures" / "figure2_samples.png").write_bytes(tiny_png(200))
    run = {"cpu": {"model": "Test CPU <x>", "machine": "x86_64", "cores": 2}, "libc": "glibc 2.36", "pinned": True}
    run |= {"libraries": {"miad": "0.1.0", "numpy": {"version": "1.26.4", "dispatch": ["AVX2"]}}, "image": "sha256:ab"}
    sidecar = out / "runs" / "rd" / "main" / "electrical_insulator.json.provenance.json"
    sidecar.parent.mkdir(parents=True)
    sidecar.write_text(json.dumps({"runs": [run]}), encoding="utf-8")
    return out


def test_page_is_self_contained_escaped_and_deterministic(tmp_path: Path) -> None:
    out = synthetic_results(tmp_path / "a")
    path = write_page(out, profile="smoke", made_by=(out / "runs", out / "runs_size"), project=REPO)
    text = path.read_text(encoding="utf-8")
    page = Page(text)
    assert not page.stack, f"unclosed tags: {page.stack}"
    assert page.imgs and len(page.imgs) == 2
    for img in page.imgs:
        src = img["src"] or ""
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1], validate=True).startswith(PNG_SIGNATURE)
        assert img["alt"]
    assert all(link.startswith("#") for link in page.links), page.links  # no http, no file, no relative path
    assert "<script" not in text and "http" not in text.split("data:image")[0]
    for heading in HEADINGS:
        assert any(h.startswith(heading) for h in page.headings), heading
    assert "1 of 2 findings hold, 1 contradicted, 0 undecided" in text
    assert "<code>&lt;smoke&gt;</code> &amp; a note" in text and "<smoke>" not in text
    assert "Test CPU" not in text and "glibc" not in text  # machine details stay in the sidecars (differ by design)
    assert 'class="outside">0.68†' in text  # the paper's value outside our interval, marked
    assert "Not produced by this profile: Figure 4. Anomaly maps; Figure 5. More anomaly maps." in text
    pinned = json.loads((REPO / "docker" / "images.lock").read_text())["images"]["train"]["id"]
    assert pinned in text and "<td>torch</td>" in text and "results/runs" in text
    assert "sha256:ab" not in text  # the sidecar's runtime: differs between runs by design
    assert str(tmp_path) not in text
    # a rerun, and the same results in another folder, give the same bytes
    made_by = (out / "runs", out / "runs_size")
    assert write_page(out, profile="smoke", made_by=made_by, project=REPO).read_bytes() == text.encode()
    other = tmp_path / "b" / "results"
    shutil.copytree(out, other)
    made_by = (other / "runs", other / "runs_size")
    assert build_page(other, profile="smoke", made_by=made_by, project=REPO) == text
    # the same outputs made again on another machine (other CPU, C library, dispatch, runtime), the sidecar now
    # recording two runs: the same page
    sidecar = next((other / "runs").rglob("*.provenance.json"))
    elsewhere = json.loads(sidecar.read_text())
    again = {**elsewhere["runs"][0], "cpu": {"model": "Another CPU", "machine": "x86_64", "cores": 16}}
    again |= {"libc": "glibc 2.41", "image": None}
    elsewhere["runs"].append(again)
    sidecar.write_text(json.dumps(elsewhere), encoding="utf-8")
    assert build_page(other, profile="smoke", made_by=made_by, project=REPO) == text


def test_a_bare_results_folder_still_gives_a_page(tmp_path: Path) -> None:
    text = build_page(tmp_path, profile="smoke")
    page = Page(text)
    assert not page.stack and not page.imgs and "No findings decided" in text and "No pinned versions" in text


# --- in a real browser ----------------------------------------------------------------------------------------------

REAL = next((p for p in (REPO / "results", Path("/work/main/results")) if (p / "tables" / "table3.md").is_file()), None)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# writes each image's naturalWidth into data-w once the page has loaded, so --dump-dom shows what was decoded
MEASURE = (
    '<script>addEventListener("load", () => { for (const img of document.images) '
    'img.setAttribute("data-w", img.naturalWidth); document.body.setAttribute("data-loaded", "1"); });</script>'
)


def chromium(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    command = [CHROMIUM or "chromium", "--no-sandbox", "--disable-gpu", f"--user-data-dir={home}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, env={**os.environ, "HOME": str(home)})


@pytest.fixture(scope="module")
def real_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if REAL is None:
        pytest.skip("no results/tables to show: run `dvc repro report` (or `dvc checkout`) first")
    if CHROMIUM is None:
        pytest.skip("chromium not on PATH: `apt-get install chromium` (Debian) to run the browser check")
    made_by = (REAL / "runs", REAL / "runs_size", REAL.parent / "renders")
    path = tmp_path_factory.mktemp("page") / PAGE_NAME  # the committed results stay read-only
    path.write_text(build_page(REAL, profile="smoke", made_by=made_by), encoding="utf-8")
    return path


def test_a_browser_shows_every_table_and_figure(real_page: Path, tmp_path: Path) -> None:
    measured = tmp_path / "measured.html"
    measured.write_text(real_page.read_text(encoding="utf-8").replace("</body>", MEASURE + "\n</body>"), "utf-8")
    args = ["--headless=new", "--virtual-time-budget=5000", "--run-all-compositor-stages-before-draw", "--dump-dom"]
    done = chromium(*args, measured.as_uri(), home=tmp_path / "home")
    assert done.returncode == 0, done.stderr[-2000:]
    dom = Page(done.stdout)
    assert 'data-loaded="1"' in done.stdout, "the page's load event never fired"
    for heading in HEADINGS:
        assert any(h.startswith(heading) for h in dom.headings), f"{heading!r} not shown: {dom.headings}"
    pngs = sorted((REAL / "figures").glob("*.png"))
    assert len(dom.imgs) == len(pngs) > 0
    broken = [img.get("alt") for img in dom.imgs if int(img.get("data-w") or 0) <= 0]
    assert not broken, f"images the browser could not decode: {broken}"
    assert not [link for link in dom.links if not link.startswith("#")]


def test_a_screenshot_of_the_page_is_not_blank(real_page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "page.png"
    args = ["--headless", "--hide-scrollbars", f"--screenshot={shot}", "--window-size=1280,4000"]
    done = chromium(*args, real_page.as_uri(), home=tmp_path / "home")
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (4000, 1280)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 16  # text, tables and figures, not one colour
