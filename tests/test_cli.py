import subprocess
import sys

import pytest

from miad.cli import build_parser, main
from tests.conftest import REPO


def _subcommands() -> dict[str, str]:
    """{name: summary} of every `miad` subcommand, from the parser itself."""
    parser = build_parser()
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return {choice.dest: choice.help for choice in action._choices_actions}


def test_every_command_explains_itself(capsys):
    commands = _subcommands()
    assert {"render", "train", "evaluate", "report", "compare", "repro"} <= commands.keys()
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    listing = " ".join(capsys.readouterr().out.split())  # argparse wraps the summaries
    for name, summary in commands.items():
        assert summary and " ".join(summary.replace("%%", "%").split()[:4]) in listing, name
        with pytest.raises(SystemExit) as info:
            main([name, "--help"])
        out = capsys.readouterr().out
        assert info.value.code == 0 and out.startswith("usage: miad " + name), name
        assert "options:" in out and len(out.splitlines()) > 3, name  # its own flags, explained


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "miad.cli", "--help"], capture_output=True, text=True, check=True)
    assert "dvc repro" in out.stdout


def test_typo_in_params_is_named(tmp_path, params_file, capsys):
    text = params_file.read_text().replace("n_train:", "n_trian:", 1)
    params_file.write_text(text)
    assert main(["params", "--params", str(params_file)]) == 2
    assert "unknown key(s) ['n_trian']" in capsys.readouterr().err


def test_profile_switch_keeps_comments(tmp_path, capsys):
    path = tmp_path / "params.yaml"
    path.write_text((REPO / "params.yaml").read_text())
    assert main(["profile", "--params", str(path)]) == 0 and capsys.readouterr().out.strip() == "smoke"
    assert main(["profile", "paper", "--params", str(path)]) == 0
    text = path.read_text()
    assert text.startswith("# MIAD") and "\nprofile: paper\n" in text
    assert main(["params", "--params", str(path)]) == 0 and '"profile": "paper"' in capsys.readouterr().out


def test_profile_switch_through_the_miad_program(tmp_path):
    """`make reproduce PROFILE=findings` runs `miad profile findings`: the program pins its numeric environment
    from the params first, which must work for a command without --profile."""
    path = tmp_path / "params.yaml"
    path.write_text((REPO / "params.yaml").read_text())
    for name in ("findings", "paper", "smoke"):
        done = subprocess.run(
            [sys.executable, "-m", "miad.cli", "profile", name, "--params", str(path)], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert f"\nprofile: {name}\n" in path.read_text()


def test_unknown_scenario_is_refused(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["render", "--scenario", "wind_turbin"])
    assert "invalid choice: 'wind_turbin'" in capsys.readouterr().err


def test_verify_without_renders_fails_clearly(tmp_path, capsys):
    assert main(["verify", "--renders", str(tmp_path)]) == 2
    assert "no rendered splits found" in capsys.readouterr().err


def test_parsing_loads_no_numeric_library():
    """The numeric environment is pinned after parsing: no package's `cli.py` may load numpy, torch or OpenCV."""
    probe = (
        "import sys; from miad.cli import build_parser; build_parser().parse_args(['train', '--help'][:1] + "
        "['--method', 'patchcore', '--scenario', 'witness_mark', '--out', 'x']); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'numpy', 'torch', 'cv2', 'timm', 'scipy', 'bpy'}))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
