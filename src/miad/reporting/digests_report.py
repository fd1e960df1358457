"""`miad compare --renders / --models`: the workspace's digests against the reference files, as text a user reads.

A short summary first ("renders: 1040 images in 15 datasets; 1038 identical, 2 differ (other bits, same picture:
max |diff| 1, PSNR >= 78.1 dB), 0 missing"), then the counts per dataset, then the differing, missing and extra
images or tensors (at most `show` lines each), and a verdict line. Without the reference's own images or checkpoints
it says how to get them, since a digest alone cannot say how far apart two images are.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

from miad.reporting.digests import (
    MACHINE_FILE,
    MODEL_ROOTS,
    MODELS_FILE,
    RENDERS_FILE,
    DigestError,
    environments,
    model_digests,
    parse_models,
    parse_renders,
    read_reference_file,
    render_digests,
)
from miad.reporting.digests_compare import (
    CheckpointChange,
    ImageChange,
    ModelsComparison,
    RendersComparison,
    compare_models,
    compare_renders,
    measure_pixels,
    measure_weights,
)

WORST_TENSORS = 3  # per differing checkpoint, the tensors named with their differences
KINDS = ("mask differs", "another picture", "other bits, same picture", "image differs")  # worst first
RENDERS_HINT = (
    "pixel differences need the reference images: pass --against DIR, the renders/ folder of another clone at the "
    "reference revision (or the clone itself), or a copy fetched with `dvc get . renders -o DIR --rev REV` (needs "
    "the DVC remote holding that revision's renders)"
)
MODELS_HINT = (
    "weight differences need the reference checkpoints: pass --against DIR, a folder holding the reference's "
    "models/ and models_size/ (another clone at the reference revision, or copies fetched with "
    "`dvc get . models -o DIR/models --rev REV` and the same for models_size)"
)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> list[str]:
    """Aligned columns, two spaces apart; the columns in `right` right-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    return [
        "  "
        + "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in (header, *rows)
    ]


def _listing(title: str, rows: Sequence[Sequence[str]], header: Sequence[str], show: int, right=()) -> list[str]:
    if not rows:
        return []
    lines = [f"\n{title} ({len(rows)}):", *_table(header, rows[:show], right)]
    return lines + ([f"  ... and {len(rows) - show} more (--show N lists more)"] if len(rows) > show else [])


def _psnr(values: Sequence[float]) -> str:
    worst = min(values)
    return f"PSNR {'' if len(values) == 1 else '>= '}{worst:.1f} dB" if math.isfinite(worst) else "PSNR inf"


def _kind_summary(changes: Sequence[ImageChange]) -> str:
    parts = []
    for kind in KINDS:
        group = [c for c in changes if c.kind == kind]
        if not group:
            continue
        if kind == "mask differs":
            text = "mask differs: another dataset"
        elif kind == "image differs":
            text = "image only, pixels not measured"
        else:
            measured = [c.image for c in group if c.image is not None]  # none for an image of another shape
            text = kind
            if measured:
                text += f": max |diff| {max(d.max_abs for d in measured)}, {_psnr([d.psnr for d in measured])}"
        parts.append(text if len({c.kind for c in changes}) == 1 else f"{len(group)} {text}")
    return "; ".join(parts)


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}%"


def format_renders(comparison: RendersComparison, reference: str, *, against: str | None, show: int = 40) -> str:
    images = sum(d.reference for d in comparison.datasets)
    identical = sum(d.identical for d in comparison.datasets)
    changes = comparison.changes
    summary = (
        f"renders: {_count(images, 'image')} in {_count(len(comparison.datasets), 'dataset')}; {identical} identical, "
        f"{len(changes)} "
        f"differ{f' ({_kind_summary(changes)})' if changes else ''}, {len(comparison.missing)} missing"
        + (f", {len(comparison.extra)} extra" if comparison.extra else "")
    )
    lines = [summary, f"reference: {reference}" + (f"; reference images: {against}" if against else "")]
    counts = [
        (d.dataset, str(d.reference), str(d.identical), str(d.differ), str(d.missing), str(d.extra))
        for d in comparison.datasets
    ]
    lines += ["", *_table(("dataset", "images", "identical", "differ", "missing", "extra"), counts, (1, 2, 3, 4, 5))]
    rows = []
    for change in changes:
        image, mask = change.image, change.mask
        rows.append(
            (
                change.reference.dataset,
                change.reference.item,
                change.kind,
                "—" if image is None else str(image.max_abs),
                "—" if image is None else f"{image.psnr:.1f}",
                _percent(None if image is None else image.changed),
                _percent(mask.changed if mask is not None else None) if change.mask_differs else "",
                change.note,
            )
        )
    header = ("dataset", "split/stem", "what", "max |diff|", "PSNR dB", "pixels changed", "mask changed", "note")
    lines += _listing("differing images", rows, header, show, (3, 4, 5, 6))
    for title, side in (("missing from yours", comparison.missing), ("extra in yours", comparison.extra)):
        lines += _listing(title, [(r.dataset, r.item) for r in side], ("dataset", "split/stem"), show)
    if comparison.unjudged:
        named = ", ".join(f"{name} ({_count(count, 'image')})" for name, count in comparison.unjudged.items())
        lines.append(f"\ndatasets only you have (not judged): {named}")
    if images and identical == 0 and len(comparison.missing) == images:
        lines.append("\nno reference image found in your renders/: `dvc pull` or `make reproduce` first")
    if changes and not comparison.measured:
        lines.append(f"\n{RENDERS_HINT}")
    lines.append(f"\nrenders: {'IDENTICAL' if comparison.identical else 'DIFFERENT'}")
    return "\n".join(lines)


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _first(names: Sequence[str], separator: str = ", ") -> str:
    more = f" and {len(names) - WORST_TENSORS} more" if len(names) > WORST_TENSORS else ""
    return separator.join(names[:WORST_TENSORS]) + more


def _tensor_lines(checkpoint: CheckpointChange) -> list[str]:
    """The worst few differing tensors of a checkpoint (by max |diff| when measured), its missing and extra
    tensors, and the notes."""
    differing = [t for t in checkpoint.changes if t.status == "differs"]
    measured = sorted(
        (t for t in differing if t.max_abs is not None),
        key=lambda t: -math.inf if math.isnan(t.max_abs) else -t.max_abs,
    )
    lines = []
    if measured:
        lines.append("    worst: " + _first([f"{t.tensor} {_number(t.max_abs)}" for t in measured]))
    elif differing:
        lines.append("    differ: " + _first([t.tensor for t in differing]))
    for status in ("missing", "extra"):
        names = [t.tensor for t in checkpoint.changes if t.status == status]
        if names:
            lines.append(f"    {status} tensors: " + _first(names))
    notes = [f"{t.tensor}: {t.note}" for t in checkpoint.changes if t.note]
    return lines + (["    notes: " + _first(notes, "; ")] if notes else [])


def format_models(comparison: ModelsComparison, reference: str, *, against: str | None, show: int = 40) -> str:
    changed = comparison.changed
    differ = sum(c.count("differs") for c in changed)
    largest = [c.max_abs for c in changed if c.max_abs is not None]
    detail = _count(differ, "differing tensor") + (f", max |diff| {_number(max(largest))}" if largest else "")
    identical = comparison.checkpoints - len(changed) - len(comparison.missing)
    lines = [
        f"models: {_count(comparison.checkpoints, 'checkpoint')} ({_count(comparison.tensors, 'tensor')}); "
        f"{identical} identical, "
        f"{len(changed)} differ{f' ({detail})' if changed else ''}, {len(comparison.missing)} missing",
        f"reference: {reference}" + (f"; reference checkpoints: {against}" if against else ""),
    ]
    rows = [
        (
            c.model,
            f"{c.count('differs')} / {c.tensors}",
            str(c.count("missing")),
            str(c.count("extra")),
            _number(c.max_abs),
            c.note,
        )
        for c in changed
    ]
    header = ("checkpoint", "tensors differ", "missing", "extra", "max |diff|", "note")
    lines += _listing("differing checkpoints", rows, header, show, (1, 2, 3, 4))
    for number, checkpoint in enumerate(changed[:show]):
        lines += [*([""] if number == 0 else []), f"  {checkpoint.model}:", *_tensor_lines(checkpoint)]
    lines += _listing("checkpoints missing from yours", [(m,) for m in comparison.missing], ("checkpoint",), show)
    if comparison.unjudged:
        lines.append(f"\ncheckpoints only you have (not judged): {', '.join(comparison.unjudged)}")
    if changed and not comparison.measured:
        lines.append(f"\n{MODELS_HINT}")
    lines.append(f"\nmodels: {'IDENTICAL' if comparison.identical else 'DIFFERENT'}")
    return "\n".join(lines)


def renders_root(against: Path) -> Path:
    """A renders folder given directly, or a clone (a folder holding renders/)."""
    root = Path(against) / "renders" if (Path(against) / "renders").is_dir() else Path(against)
    if not any(root.glob("*/*/*/shard-*.zip")):
        raise DigestError(
            f"--against {against}: no shards under it (expected a renders folder, <variant>/<scenario>/<split>/"
            "shard-*.zip, or a folder holding renders/)"
        )
    return root


def models_root(against: Path) -> Path:
    if not any((Path(against) / root).is_dir() for root in MODEL_ROOTS):
        raise DigestError(f"--against {against}: holds neither {' nor '.join(r + '/' for r in MODEL_ROOTS)}")
    return Path(against)


def _made_by(workspace: Path, digests: Path, revision: str | None) -> list[str]:
    """Which environments made your outputs and the reference's (informational; silent where unknown)."""
    lines = [f"    {group['runs']:4d} x {group['line']}" for group in environments(workspace)["environments"]]
    lines = ["  yours (provenance sidecars):", *lines] if lines else []
    try:
        text, described = read_reference_file(digests, MACHINE_FILE, revision)
        theirs = [f"    {group['runs']:4d} x {group['line']}" for group in json.loads(text)["environments"]]
        lines += [f"  the reference's ({described}):", *theirs]
    except (DigestError, ValueError, KeyError, TypeError):
        pass  # machine.json is informative only
    return ["", "made by (informational, not compared):", *lines] if lines else []


def compare_workspace(
    workspace: Path,
    digests: Path,
    revision: str | None,
    *,
    renders: bool,
    models: bool,
    against: Path | None = None,
    show: int = 40,
    progress: bool = False,
) -> tuple[str, bool]:
    """(report, identical?) of the workspace's renders and/or models against the reference digest files (in
    `digests`, or as git `revision` holds them). Every input is checked before the long loops start."""
    if against is not None and not Path(against).is_dir():
        raise DigestError(f"--against {against}: no such folder")
    roots = {
        "renders": renders_root(against) if renders and against is not None else None,
        "models": models_root(against) if models and against is not None else None,
    }
    texts = {}
    if renders:
        texts["renders"] = read_reference_file(digests, RENDERS_FILE, revision)
    if models:
        texts["models"] = read_reference_file(digests, MODELS_FILE, revision)
    parsed = {
        "renders": parse_renders(*texts["renders"]) if renders else None,
        "models": parse_models(*texts["models"]) if models else None,
    }
    sections, identical = [], True
    if renders:
        folder = Path(workspace) / "renders"
        comparison = compare_renders(render_digests(folder, progress=progress), parsed["renders"])
        if roots["renders"] is not None and comparison.changes:
            comparison = measure_pixels(comparison, folder, roots["renders"], progress=progress)
        where = None if roots["renders"] is None else str(roots["renders"])
        sections.append(format_renders(comparison, texts["renders"][1], against=where, show=show))
        identical &= comparison.identical
    if models:
        found = compare_models(model_digests(workspace, progress=progress), parsed["models"])
        if roots["models"] is not None and found.changed:
            found = measure_weights(found, parsed["models"], workspace, roots["models"], progress=progress)
        where = None if roots["models"] is None else str(roots["models"])
        sections.append(format_models(found, texts["models"][1], against=where, show=show))
        identical &= found.identical
    return "\n\n".join(sections) + "\n".join(["", *_made_by(workspace, digests, revision)]), identical
