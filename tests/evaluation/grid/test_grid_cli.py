"""`noisepref grid` and `noisepref reproduce`, the presets and the generated results section."""

import re

import pytest

from evaluation.cli import main
from evaluation.grid.presets import PRESETS, SCALES, preset, preset_names
from evaluation.grid.report import BEGIN, END, replace_section, results_markdown
from evaluation.grid.runner import run_grid
from evaluation.grid.spec import spec_from_dict

SPEC = """
train_sigmas = [0.5]
seeds = [0, 1]
[model]
hidden_size = 8
[training]
iterations = 3
batch_size = 8
[sweep]
test_sigmas = [0, 0.5, 1.0]
episodes = 8
[[tasks]]
id = "NoisyFunctionApprox-v0"
options = { steps = 10, response_steps = 4 }
"""


def test_grid_command_runs_then_skips(tmp_path, capsys):
    spec = tmp_path / "grid.toml"
    spec.write_text(SPEC)
    argv = ["grid", str(spec), "--out", str(tmp_path / "out"), "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "4 cells run, 0 already done" in out and "noise-in" in out and "verdict" in out
    assert (tmp_path / "out" / "summary.csv").is_file()
    assert main(argv) == 0
    assert "0 cells run, 4 already done" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (SPEC.replace("seeds = [0, 1]", "seeds = []"), "`seeds` must be a non-empty list"),
        (SPEC.replace("steps = 10", "stepz = 10"), r"tasks\[0\]\.options: .*stepz"),
        (SPEC.replace("train_sigmas = [0.5]", "train_sigmas = [-0.5]"), "`train_sigmas` has -0.5"),
        ("tasks = [", "not valid TOML"),
    ],
)
def test_a_bad_spec_is_one_line_and_exit_2(tmp_path, capsys, text, match):
    spec = tmp_path / "grid.toml"
    spec.write_text(text)
    assert main(["grid", str(spec), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("noisepref grid: error: ") and len(err.splitlines()) == 1
    assert re.search(match, err), err
    assert not (tmp_path / "out").exists()


def test_grid_refuses_a_missing_spec_and_a_file_as_out(tmp_path, capsys):
    assert main(["grid", str(tmp_path / "nope.toml"), "--out", str(tmp_path / "o")]) == 2
    assert "no such file" in capsys.readouterr().err
    spec = tmp_path / "grid.toml"
    spec.write_text(SPEC)
    assert main(["grid", str(spec), "--out", str(spec)]) == 2
    assert "must name a folder" in capsys.readouterr().err


def test_reproduce_refuses_an_unknown_task_and_scale(capsys):
    for argv in (["reproduce", "chess"], ["reproduce", "maze", "--scale", "huge"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("name", list(PRESETS))
@pytest.mark.parametrize("scale", SCALES)
def test_every_preset_is_a_valid_grid(name, scale):
    cells = preset(name, scale).cells()
    seeds = {cell.seed for cell in cells}
    placements = {cell.placement for cell in cells}
    assert placements == {"in", "out"}
    assert len(seeds) == (5 if scale == "paper" else len(seeds))
    assert all(0.0 in cell.sweep["test_sigmas"] for cell in cells)


def test_quick_is_smaller_than_paper():
    for name in preset_names():
        quick, paper = preset(name, "quick").cells(), preset(name, "paper").cells()
        assert len(quick) < len(paper)
        assert quick[0].train["iterations"] < paper[0].train["iterations"]


def test_preset_refuses_unknown_names():
    with pytest.raises(ValueError, match="`task` must be one of"):
        preset("chess")
    with pytest.raises(ValueError, match="`scale` must be one of"):
        preset("maze", "huge")


def test_results_section_and_readme_markers(tmp_path):
    grid = spec_from_dict(
        {
            "tasks": [
                {"id": "NoisyFunctionApprox-v0", "options": {"steps": 10, "response_steps": 4}}
            ],
            "model": {"hidden_size": 8},
            "training": {"iterations": 3, "batch_size": 8},
            "sweep": {"test_sigmas": [0, 0.5], "episodes": 8},
        }
    )
    result = run_grid(grid, tmp_path / "fa", progress=False)
    text = results_markdown(
        {"fa": result}, scale="quick", figures_from=tmp_path, command="noisepref reproduce fa"
    )
    rows = [line for line in text.splitlines() if line.startswith("| fa |")]
    assert [row.split("|")[2].strip() for row in rows] == ["in", "out"]
    assert "![fa: sigma* against training sigma](fa/function_approx-model-sigma_star.png)" in text
    assert "CPUs" in text and "min to train and sweep" in text
    assert result.cell_seconds > 0
    readme = f"# Title\n{BEGIN}\nold\n{END}\nrest\n"
    assert replace_section(readme, text) == f"# Title\n{BEGIN}\n{text}{END}\nrest\n"
    with pytest.raises(ValueError, match="no <!-- grid-results -->"):
        replace_section("# no markers\n", text)
