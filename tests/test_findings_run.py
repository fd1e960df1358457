"""The committed findings run (results/findings/): its files agree with each other and with the README, and
`miad compare` finds it as the findings profile's reference."""

from __future__ import annotations

import csv
import json
import re
import subprocess

from miad.claims.findings import FINDINGS
from miad.claims.output import VERDICT_CODES
from tests.conftest import REPO

FOLDER = REPO / "results" / "findings"


def test_the_committed_verdicts_agree_in_metrics_json_claims_csv_and_the_readme() -> None:
    metrics = json.loads((FOLDER / "metrics.json").read_text(encoding="utf-8"))
    rows = [r for r in csv.DictReader((FOLDER / "tables" / "claims.csv").open(encoding="utf-8")) if not r["part"]]
    claims = {k: v for k, v in metrics["claims"].items() if k != "summary"}
    assert {r["finding"] for r in rows} == set(claims) == {f.id for f in FINDINGS}
    for row in rows:
        assert claims[row["finding"]]["verdict"] == VERDICT_CODES[row["verdict"]], row["finding"]
    counts = {v: sum(r["verdict"] == v for r in rows) for v in VERDICT_CODES}
    assert metrics["claims"]["summary"] == {"findings": len(rows), **counts}
    held, against, open_ = counts["holds"], counts["contradicted"], counts["undecided"]
    claims_md = (FOLDER / "tables" / "claims.md").read_text(encoding="utf-8")
    assert f"{held} of {len(rows)} findings hold, {against} contradicted, {open_} undecided" in claims_md
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    quoted = f"**{held} of {len(rows)} hold, {against} contradicted, {open_} undecided**"
    assert quoted in readme, "README.md quotes other findings verdicts than results/findings"
    assert "Profile `findings`" in (FOLDER / "tables" / "table3.md").read_text(encoding="utf-8")


def test_the_readme_quotes_the_committed_pairing_widths_and_wall_time() -> None:
    pairing = json.loads((FOLDER / "pairing.json").read_text(encoding="utf-8"))
    run = json.loads((FOLDER / "run.json").read_text(encoding="utf-8"))
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert pairing["profile"] == "findings" and pairing["effects"] == pairing["jointly_resampled"] == 32
    median, widest = pairing["median_paired_half_width"], pairing["max_paired_half_width"]
    assert f"{median:.3f} at the median and {widest:.3f} at most" in readme
    assert re.search(rf"\*\*{run['wall_seconds'] / 60:.1f}\s+minutes\*\*", readme)
    assert re.search(r"5400 images", (FOLDER / "README.md").read_text(encoding="utf-8"))


def test_miad_compare_takes_the_committed_findings_run_as_the_findings_reference() -> None:
    done = subprocess.run(
        ["miad", "compare", "--profile", "findings", "--exact", "--metrics", "results/findings/metrics.json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "results/findings/metrics.json at git revision HEAD" in done.stdout
