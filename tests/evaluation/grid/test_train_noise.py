"""The training noise as a grid factor: fixed levels and noise distributions side by side."""

import hashlib
import math

import pytest

from agents.noise_distribution import NoiseDistribution
from agents.runs import load_run
from evaluation.grid.cells import canonical_json
from evaluation.grid.report import results_markdown
from evaluation.grid.runner import run_grid
from evaluation.grid.spec import load_spec, spec_from_dict
from evaluation.grid.summary import read_table, settings, settings_table

TASK = {"id": "NoisyFunctionApprox-v0", "options": {"steps": 10, "response_steps": 4}}
BASE = {
    "tasks": [TASK],
    "train_sigmas": [0.25, 0.5, 1.0],
    "seeds": [0, 1],
    "model": {"hidden_size": 8},
    "training": {"iterations": 3, "batch_size": 8},
    "sweep": {"test_sigmas": [0, 0.5, 1.0], "episodes": 8},
}
MIXED = [
    0.5,
    "uniform:0,1",
    {"dist": "log_uniform:0.05,1", "per": "batch"},
    "discrete:0,0.5,1@1,2,1",
]


def spec(**changes):
    return spec_from_dict(BASE | changes)


def full_hash(cell):
    """SHA-256 of the cell's whole config (defaults included), as folder names were hashed."""
    return hashlib.sha256(canonical_json(cell.to_dict()).encode("utf-8")).hexdigest()[:12]


def test_a_fixed_sigma_cell_keeps_its_config_and_hash():
    """Computed before the training noise became a factor of levels and distributions."""
    cell = spec().cells()[2]
    assert (cell.placement, cell.train_sigma, cell.seed) == ("in", 0.5, 0)
    assert "sigma_dist" not in cell.train and cell.train["sigma"] == 0.5
    assert full_hash(cell) == "148a6323ad22"
    assert cell.folder_name.startswith("function_approx-in-sigma0.5-obs0-seed0-")
    # the same cell, with distributions beside it in the factor
    mixed = spec(train_sigmas=MIXED).cells()
    assert full_hash(mixed[0]) == "148a6323ad22" and mixed[0].key == cell.key


def test_mixed_levels_and_distributions_expand_into_their_cells():
    cells = spec(train_sigmas=MIXED, placements=["in", "out"]).cells()
    assert len(cells) == 2 * 4 * 2  # placements x training noise x seeds
    labels = ["0.5", "uniform:0,1", "log_uniform:0.05,1 per batch", "discrete:0,0.5,1@1,2,1"]
    assert [(c.placement, c.train_noise_label, c.seed) for c in cells] == [
        (p, label, s) for p in ("in", "out") for label in labels for s in (0, 1)
    ]
    fixed, uniform, log_uniform, discrete = cells[0], cells[2], cells[4], cells[6]
    assert uniform.train["sigma"] == 0.0
    assert uniform.train["sigma_dist"] == {
        "kind": "uniform",
        "levels": [0.0, 1.0],
        "weights": None,
        "per": "row",
    }
    assert log_uniform.train["sigma_dist"]["per"] == "batch"
    assert discrete.train["sigma_dist"]["weights"] == [1.0, 2.0, 1.0]
    # the level of a distribution is its mean, computed here by hand
    assert uniform.train_sigma == 0.5
    assert discrete.train_sigma == pytest.approx((0 * 1 + 0.5 * 2 + 1 * 1) / 4)
    assert log_uniform.train_sigma == pytest.approx((1 - 0.05) / math.log(1 / 0.05))
    assert uniform.folder_name == f"function_approx-in-uniform0_1-obs0-seed0-{uniform.key}"
    assert log_uniform.folder_name.startswith("function_approx-in-log_uniform0.05_1-batch-obs0-")
    assert discrete.folder_name.startswith("function_approx-in-discrete0_0.5_1w1_2_1-obs0-")
    assert len({c.key for c in cells}) == len(cells)
    assert uniform.group != fixed.group  # a distribution is not an ensemble member's sigma


def test_toml_and_dataclass_entries_give_the_same_cells(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text(
        'train_sigmas = [0.5, "uniform:0,1", { dist = "log_uniform:0.05,1", per = "batch" }]\n'
        "seeds = [0]\n"
        "[model]\nhidden_size = 8\n[training]\niterations = 3\nbatch_size = 8\n"
        "[[tasks]]\nid = 'NoisyFunctionApprox-v0'\noptions = { steps = 10, response_steps = 4 }\n"
    )
    from_toml = load_spec(path).cells()
    objects = (
        0.5,
        NoiseDistribution.uniform(0, 1),
        NoiseDistribution.log_uniform(0.05, 1, per="batch"),
    )
    from_python = spec(train_sigmas=objects, seeds=[0], sweep={}).cells()
    assert [c.key for c in from_toml] == [c.key for c in from_python]


@pytest.mark.parametrize(
    ("entries", "match"),
    [
        ([0.5, "uniform:1,0"], r"`train_sigmas\[1\]` is 'uniform:1,0'.*low <= high"),
        (["gauss:0,1"], r"`train_sigmas\[0\]` is 'gauss:0,1'.*kind.*'gauss'"),
        (["log_uniform:0,1"], r"`train_sigmas\[0\]` is 'log_uniform:0,1'.*low > 0"),
        (["discrete:0,1@0,0"], r"`train_sigmas\[0\]`.*sum to a positive number"),
        (["uniform:0,a"], r"`train_sigmas\[0\]` is 'uniform:0,a'.*must be one of"),
        ([{"dist": "uniform:0,1", "per": "step"}], r"`train_sigmas\[0\]`.*'step'"),
        ([{"per": "row"}], r"`train_sigmas\[0\]`.*needs `dist`"),
        ([None], r"`train_sigmas\[0\]` is None; entries are noise levels"),
        ([0.5, "fixed:0.5"], r"`train_sigmas\[1\]` .* same training noise as `train_sigmas\[0\]`"),
        ([], r"`train_sigmas` must be a non-empty list"),
        ([-0.1], r"`train_sigmas` has -0\.1"),
    ],
)
def test_a_bad_training_noise_entry_is_named(entries, match):
    with pytest.raises(ValueError, match=match):
        spec(train_sigmas=entries).cells()


def test_sigma_dist_in_training_options_is_refused():
    with pytest.raises(ValueError, match=r"`training.sigma_dist` is set by the grid.*train_sigmas"):
        spec(training={"sigma_dist": "uniform:0,1"}).cells()


def test_rl_distributions_must_be_drawn_per_batch():
    rl = {"trainer": "rl", "tasks": [{"id": "NoisyRegulator-v0"}], "training": {}}
    with pytest.raises(ValueError, match=r"train_sigmas entry 'uniform:0,1 per row'.*per='batch'"):
        spec(**rl, train_sigmas=["uniform:0,1"]).cells()
    (cell,) = spec(
        **rl, seeds=[0], placements=["in"], train_sigmas=[{"dist": "uniform:0,1", "per": "batch"}]
    ).cells()
    assert cell.train["sigma_dist"]["per"] == "batch"


def test_a_mixed_grid_trains_sweeps_and_names_the_distribution(tmp_path):
    grid = spec(train_sigmas=[0.5, "uniform:0,1"], placements=["in"], seeds=[0])
    result = run_grid(grid, tmp_path, progress=False, figures=True)
    assert len(result.ran) == 2
    rows = read_table(tmp_path / "summary.csv")
    assert [(r["train_noise"], r["train_sigma"]) for r in rows] == [
        ("0.5", 0.5),
        ("uniform:0,1", 0.5),
    ]
    spread = rows[1]
    assert spread["folder"].startswith("function_approx-in-uniform0_1-obs0-seed0-")
    run = load_run(tmp_path / spread["folder"])
    assert run.train_config.sigma_dist == NoiseDistribution.uniform(0, 1)
    # the distribution is its own setting, though its mean equals the fixed level
    assert [s["train_noise"] for s in settings(rows)] == ["0.5", "uniform:0,1"]
    table = settings_table(rows)
    assert "train noise" in table and "uniform:0,1 (mean 0.5)" in table
    names = {path.name for path in result.files if path.suffix == ".png"}
    assert "function_approx-model-sigma_star.png" in names
    text = results_markdown(
        {"function_approx": result}, scale="quick", figures_from=tmp_path, command="test"
    )
    assert "| 0.5 -> " in text and ", uniform:0,1 -> " in text
    assert "trained across uniform:0,1: " in text


def test_tables_written_before_the_column_read_as_fixed_levels(tmp_path):
    path = tmp_path / "old.csv"
    path.write_text("train_sigma,seed\n0.25,0\n")
    assert read_table(path) == [{"train_sigma": 0.25, "seed": 0, "train_noise": "0.25"}]
