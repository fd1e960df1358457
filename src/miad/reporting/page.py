"""results/report.html: one self-contained page to look at, built from what the report stage has just written.

The verdicts (results/tables/claims.csv), Tables 3-7 as their .md files show them (ours [interval] / paper), every
figure under results/figures inlined as a data URI, and how the results were made (the folders it reads, the
versions and images the lock files pin; which machine made each output stays in its provenance sidecar). Plain
HTML with a little inline CSS: no script, no external resource, readable from a file. The page is a DVC output, so
its bytes depend only on the stage's deps: no time, no absolute path, no git commit (the commit that records the
page cannot be named in it; dvc.lock ties it to its inputs), no count of the runs recorded so far.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import re
from collections.abc import Sequence
from pathlib import Path

from miad.atomic import write_text_atomic
from miad.claims.findings import FINDINGS
from miad.claims.output import effect_text
from miad.claims.rules import Verdict, summary_line

PAGE_NAME = "report.html"
TABLE_NAMES = ("table3", "table4", "table5", "table6", "table7")
# (file stem or stem prefix, heading): the paper's figures first, in the paper's order
FIGURES = (
    ("fidelity", "Fidelity: our values against the paper's"),
    ("figure2_samples", "Figure 2. Samples (defect masks outlined)"),
    ("figure4_anomaly_maps", "Figure 4. Anomaly maps"),
    ("figure5_more_maps", "Figure 5. More anomaly maps"),
)
OTHER_FIGURES = "Other figures"
OUTSIDE = "†"  # tables.OUTSIDE: the paper's value lies outside our interval
STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; } td.num { white-space: nowrap; font-variant-numeric: tabular-nums; }
.paper { color: #777; } .outside { color: #b00; font-weight: bold; }
.holds { color: #060; font-weight: bold; } .contradicted { color: #b00; font-weight: bold; }
.undecided { color: #960; font-weight: bold; } .note, .quote { color: #555; font-size: 13px; }
.quote { font-style: italic; } img { max-width: 100%; border: 1px solid #ddd; } code { font-size: 12px; }
""".strip()


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _inline(text: str) -> str:
    """Escaped text with Markdown's `code` and **bold** kept."""
    out = _e(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", out)


# --- tables -------------------------------------------------------------------------------------------------------


def parse_markdown_table(text: str) -> tuple[str, list[str], list[list[str]], list[str]]:
    """(caption, header, rows, notes) of a table that `miad.reporting.tables.to_markdown` wrote."""
    lines = text.splitlines()
    caption = lines[0].strip().strip("*") if lines else ""
    body = [line for line in lines if line.startswith("|")]
    split = lambda line: [cell.strip() for cell in line.strip().strip("|").split("|")]  # noqa: E731
    header = split(body[0]) if body else []
    rows = [split(line) for line in body[2:]]
    notes = [line for line in lines[1:] if line.strip() and not line.startswith("|")]
    return caption, header, rows, notes


def _value_cell(text: str) -> str:
    """`ours / paper[†]` as two spans, the paper's value marked when outside our interval."""
    if " / " not in text:
        return f'<td class="num">{_e(text)}</td>'
    ours, paper = text.rsplit(" / ", 1)
    mark = paper.endswith(OUTSIDE)
    paper_html = f'<span class="outside">{_e(paper)}</span>' if mark else _e(paper)
    return f'<td class="num">{_e(ours)} <span class="paper">/ {paper_html}</span></td>'


def table_html(markdown: str, anchor: str) -> str:
    caption, header, rows, notes = parse_markdown_table(markdown)
    labels = sum(1 for h in header[:2] if h in ("Scenario", "Factors", "Size", "Metric"))
    out = [f'<h2 id="{_e(anchor)}">{_e(caption)}</h2>', "<table>"]
    out.append("<tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>")
    for row in rows:
        cells = [f"<th>{_e(c)}</th>" for c in row[:labels]] + [_value_cell(c) for c in row[labels:]]
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    out += [f'<p class="note">{_inline(note)}</p>' for note in notes]
    return "\n".join(out)


# --- findings -----------------------------------------------------------------------------------------------------


def _number(text: str) -> float | None:
    return float(text) if text else None


def read_verdicts(claims_csv: Path) -> list[Verdict]:
    """The findings' verdicts (not their parts) as claims.csv records them."""
    with open(claims_csv, encoding="utf-8", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if not row["part"]]
    verdicts = []
    for row in rows:
        low, high = _number(row["ci_low"]), _number(row["ci_high"])
        interval = None if low is None or high is None else (low, high)
        effect, confidence = _number(row["effect"]), _number(row["confidence"])
        verdicts.append(Verdict(row["verdict"], effect, interval, row["detail"], "", row["finding"], (), confidence))
    return verdicts


def findings_html(verdicts: Sequence[Verdict]) -> str:
    by_id = {f.id: f for f in FINDINGS}
    out = [
        '<h2 id="findings">The paper\'s findings, decided from our results</h2>',
        '<p class="note">A finding <i>holds</i> when its effect\'s bootstrap interval lies entirely on the side the '
        "paper claims, is <i>contradicted</i> when it lies entirely on the other side, and is <i>undecided</i> "
        "otherwise or without data (results/tables/claims.md says how each was read).</p>",
        "<table>",
        "<tr><th>finding</th><th>section</th><th>verdict</th><th>effect [interval]</th><th>the paper says</th></tr>",
    ]
    for v in verdicts:
        f = by_id.get(v.finding)
        quote = f'<span class="quote">{_e(f.quote)}</span><br><span class="note">We test: {_e(f.statement)}</span>'
        out.append(
            f"<tr><td>{_e(v.finding)}</td><td>{_e(f.section if f else '')}</td>"
            f'<td class="{_e(v.verdict)}">{_e(v.verdict)}</td><td class="num">{_e(effect_text(v))}</td>'
            f"<td>{quote if f else ''}</td></tr>"
        )
    out.append("</table>")
    return "\n".join(out)


# --- figures ------------------------------------------------------------------------------------------------------


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<p><img alt="{_e(alt)}" src="data:image/png;base64,{data}"></p>'


def figures_html(figure_dir: Path) -> str:
    """Every PNG under `figure_dir`, the paper's figures first; the expected ones that are missing named."""
    pngs = sorted(figure_dir.glob("*.png")) if figure_dir.is_dir() else []
    shown: set[Path] = set()
    out, missing = [], []
    for stem, heading in FIGURES:
        paths = [p for p in pngs if p.stem == stem or p.stem.startswith(f"{stem}_")]
        if not paths:
            missing.append(heading)
            continue
        out.append(f'<h2 id="{_e(stem)}">{_e(heading)}</h2>')
        for path in paths:
            out += [f'<p class="note">{_e(path.name)}</p>', _img(path, f"{heading}: {path.stem}")]
        shown.update(paths)
    rest = [p for p in pngs if p not in shown]
    if rest:
        out.append(f'<h2 id="other-figures">{OTHER_FIGURES}</h2>')
        for path in rest:
            out += [f'<p class="note">{_e(path.name)}</p>', _img(path, path.stem)]
    if missing:
        out.append(f'<p class="note">Not produced by this profile: {_e("; ".join(missing))}.</p>')
    return "\n".join(out)


# --- provenance ---------------------------------------------------------------------------------------------------


PINNED_LIBRARIES = (  # the libraries whose versions shape the outputs' bytes, as requirements.lock names them
    "torch",
    "timm",
    "numpy",
    "scipy",
    "scikit-learn",
    "opencv-python-headless",
    "bpy",
    "blenderproc",
    "dvc",
)
REQUIREMENTS_LOCK = "requirements.lock"
IMAGES_LOCK = Path("docker") / "images.lock"


def pinned_environment(project: Path) -> tuple[dict[str, str], dict[str, str]]:
    """The versions requirements.lock pins for PINNED_LIBRARIES, and the image IDs docker/images.lock pins (both
    tracked inputs of the report stage); empty where a file is missing."""
    versions: dict[str, str] = {}
    lock = Path(project) / REQUIREMENTS_LOCK
    for line in lock.read_text(encoding="utf-8").splitlines() if lock.is_file() else ():
        name, sep, version = line.split(";")[0].strip().partition("==")
        if sep and name.lower() in PINNED_LIBRARIES:
            versions[name.lower()] = version.split()[0].rstrip("\\").strip()
    images: dict[str, str] = {}
    pinned = Path(project) / IMAGES_LOCK
    if pinned.is_file():
        try:
            entries = json.loads(pinned.read_text(encoding="utf-8")).get("images", {})
            images = {name: str(entry.get("id", "?")) for name, entry in sorted(entries.items())}
        except (ValueError, AttributeError):
            images = {}
    return versions, images


def provenance_html(profile: str, sources: Sequence[str], project: Path | None) -> str:
    """How the outputs were made, from tracked inputs only: the page is a DVC output and must have the same bytes
    on every machine and after every rerun, so what differs by design (CPU, C library, dispatch levels, native or
    container runtime) and what accumulates (the runs recorded so far) stays in the provenance sidecars, which
    `miad compare` lists; the page says so."""
    out = [
        '<h2 id="how">How this was made</h2>',
        f"<p>Params profile <code>{_e(profile)}</code>. Built by the DVC stage <code>report</code> "
        f"(<code>miad report</code>) from {_e(', '.join(sources))}; dvc.lock records the hash of every input.</p>",
        '<p class="note">Which machine and runtime made each output (CPU, C library, numeric dispatch, native or '
        "container) is recorded beside it in its provenance sidecar, outside every hash: it differs between machines "
        "by design while the outputs do not, so this page, itself a pipeline output, leaves it out. "
        "<code>miad compare</code> lists it.</p>",
    ]
    versions, images = pinned_environment(project) if project is not None else ({}, {})
    if not versions and not images:
        return "\n".join([*out, '<p class="note">No pinned versions were found (requirements.lock).</p>'])
    out += ["<h3>Pinned versions</h3>", "<table>", "<tr><th>library</th><th>version (requirements.lock)</th></tr>"]
    out += [f"<tr><td>{_e(n)}</td><td>{_e(v)}</td></tr>" for n, v in sorted(versions.items())]
    out += [
        "</table>",
        "<h3>Container images</h3>",
        "<table>",
        "<tr><th>image</th><th>id (docker/images.lock)</th></tr>",
    ]
    out += [f"<tr><td>{_e(n)}</td><td><code>{_e(i)}</code></td></tr>" for n, i in images.items()]
    return "\n".join([*out, "</table>"])


def _shown_path(path: Path, out: Path) -> str:
    """`path` relative to the folder that holds `out` (the project root for results/), else its name: never absolute."""
    try:
        return path.absolute().relative_to(out.absolute().parent).as_posix()
    except ValueError:
        return path.name


# --- the page -----------------------------------------------------------------------------------------------------


def build_page(out: Path, *, profile: str, made_by: Sequence[Path] = (), project: Path | None = None) -> str:
    """The page's HTML from results folder `out` (tables/, figures/), naming the folders `made_by` it was built
    from and the versions and images `project`'s lock files pin."""
    out = Path(out)
    claims = out / "tables" / "claims.csv"
    verdicts = read_verdicts(claims) if claims.is_file() else []
    tables = [(name, out / "tables" / f"{name}.md") for name in TABLE_NAMES]
    present = [(name, path.read_text(encoding="utf-8")) for name, path in tables if path.is_file()]
    sources = [_shown_path(Path(p), out) for p in made_by]
    nav = [("findings", "Findings"), *((n, f"Table {n[-1]}") for n, _ in present), ("how", "How this was made")]
    body = [
        "<h1>MIAD reproduction: results</h1>",
        f"<p><b>{_e(summary_line(verdicts, profile))}.</b></p>" if verdicts else "<p>No findings decided.</p>",
        "<p>" + " · ".join(f'<a href="#{_e(a)}">{_e(t)}</a>' for a, t in nav) + "</p>",
        findings_html(verdicts),
        *(table_html(text, name) for name, text in present),
        figures_html(out / "figures"),
        provenance_html(profile, sources, project),
    ]
    head = f'<meta charset="utf-8">\n<title>MIAD reproduction ({_e(profile)})</title>\n<style>\n{STYLE}\n</style>'
    page = ["<!DOCTYPE html>", '<html lang="en">', "<head>", head, "</head>", "<body>", *body, "</body>", "</html>"]
    return "\n".join(page) + "\n"


def write_page(out: Path, *, profile: str, made_by: Sequence[Path] = (), project: Path | None = None) -> Path:
    """Write `out`/report.html (atomically) and return its path."""
    path = Path(out) / PAGE_NAME
    write_text_atomic(path, build_page(out, profile=profile, made_by=made_by, project=project))
    return path
