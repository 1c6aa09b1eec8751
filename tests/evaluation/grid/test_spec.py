"""The grid spec: TOML loading, validation of the whole spec, expansion into hashed cells."""

import dataclasses
import itertools

import pytest

from evaluation.grid.cells import Cell
from evaluation.grid.spec import GridSpec, SweepSpec, TaskSpec, load_spec, spec_from_dict

TASK = {"id": "NoisyFunctionApprox-v0", "options": {"steps": 10, "response_steps": 4}}
BASE = {
    "tasks": [TASK],
    "train_sigmas": [0.25, 0.5, 1.0],
    "seeds": [0, 1],
    "model": {"hidden_size": 8},
    "training": {"iterations": 3, "batch_size": 8},
    "sweep": {"test_sigmas": [0, 0.5, 1.0], "episodes": 8},
}


def spec(**changes):
    return spec_from_dict(BASE | changes)


def test_cells_are_the_product_of_the_factors_in_a_fixed_order():
    cells = spec(train_obs_noise=[0.0, 0.1]).cells()
    assert len(cells) == 1 * 2 * 2 * 3 * 2  # tasks x obs noise x placements x sigmas x seeds
    factors = [(c.train_obs_noise, c.placement, c.train_sigma, c.seed) for c in cells]
    assert factors == list(itertools.product([0.0, 0.1], ["in", "out"], [0.25, 0.5, 1.0], [0, 1]))
    assert cells[0].task_kwargs["steps"] == 10 and cells[0].model["input_size"] == 1
    assert cells[0].train == {**cells[0].train, "iterations": 3, "sigma": 0.25, "seed": 0}
    assert len({cell.key for cell in cells}) == len(cells)


def test_the_content_hash_names_the_full_config():
    cell = spec().cells()[0]
    again = Cell.from_dict(cell.to_dict())
    assert again.key == cell.key and again.folder_name == cell.folder_name
    assert cell.folder_name == f"function_approx-in-sigma0.25-obs0-seed0-{cell.key}"
    other_sweep = spec(sweep={"test_sigmas": [0, 0.5], "episodes": 8}).cells()[0]
    other_training = spec(training={"iterations": 4, "batch_size": 8}).cells()[0]
    assert len({cell.key, other_sweep.key, other_training.key}) == 3
    # the cells of one task and architecture share a group whatever their sigma, seed, placement
    assert len({c.group for c in spec().cells()}) == 1


def test_toml_file_round_trip(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text(
        """
name = "fa"
placements = ["in", "out"]
train_sigmas = [0.25, 0.5, 1.0]
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
    )
    loaded = load_spec(path)
    assert loaded.name == "fa"
    assert [c.key for c in loaded.cells()] == [c.key for c in spec().cells()]


def test_the_example_spec_is_valid():
    from pathlib import Path

    cells = load_spec(Path(__file__).parents[3] / "examples" / "grid.toml").cells()
    assert len(cells) >= 4


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"tasks": [{"id": "NoisyNope-v0"}]}, r"tasks\[0\]\.id: unknown environment id"),
        (
            {"tasks": [TASK, {"id": "NoisyRegulator-v0", "options": {"stepz": 3}}]},
            r"tasks\[1\]\.options: .*stepz",
        ),
        ({"tasks": []}, "`tasks` is empty"),
        ({"seeds": []}, "`seeds` must be a non-empty list"),
        ({"placements": []}, "`placements` must be a non-empty list"),
        ({"train_sigmas": [0.5, -0.1]}, r"`train_sigmas` has -0\.1.*>= 0"),
        ({"train_obs_noise": [-1.0]}, r"`train_obs_noise` has -1\.0"),
        ({"placements": ["in", "middle"]}, "`placements` has 'middle'; allowed"),
        ({"seeds": [0, 0]}, "`seeds` lists 0 twice"),
        ({"tasks": [TASK, TASK]}, r"tasks\[1\] .* gives the same cell as tasks\[0\]"),
        ({"sweep": {"test_sigmas": [0.5, 1.0]}}, r"tasks\[0\]\.sweep\.test_sigmas` must include 0"),
        ({"sweep": {"axes": ["model", "brain"]}}, r"sweep\.axes` has 'brain'"),
        ({"sweep": {"episodes": 0}}, r"sweep\.episodes` must be an integer >= 1"),
        ({"sweep": {"levels": [0]}}, r"sweep: unknown key 'levels'"),
        ({"sweep": {"metric": "score"}}, r"sweep\.metric` is 'score'; .* reports \['mse'\]"),
        ({"model": {"hidden_size": 0}}, r"tasks\[0\]\.model: .*hidden_size"),
        ({"model": {"placement": "in"}}, r"`model\.placement` is set by the grid"),
        ({"training": {"sigma": 0.5}}, r"`training\.sigma` is set by the grid"),
        ({"training": {"iterationz": 3}}, r"tasks\[0\]\.training: .*iterationz"),
        ({"model_kind": "lstm"}, "`model_kind` is 'lstm'; allowed"),
        ({"trainer": "evolution"}, "`trainer` is 'evolution'; allowed"),
        ({"tasks": [TASK | {"options": {"obs_noise": 0.1}}]}, "obs_noise` is a grid factor"),
        ({"train_sigmaz": [1.0]}, "unknown key 'train_sigmaz'"),
    ],
)
def test_bad_specs_name_the_entry(changes, match):
    with pytest.raises(ValueError, match=match):
        spec(**changes).cells()


def test_a_dataclass_spec_needs_no_toml():
    grid = GridSpec(
        tasks=(TaskSpec(id="NoisyRegulator-v0", options={"steps": 5, "settle_steps": 2}),),
        placements=("in",),
        seeds=(3,),
        model={"hidden_size": 4},
        training={"iterations": 2},
        sweep=SweepSpec(test_sigmas=(0.0, 0.5)),
    )
    (cell,) = grid.cells()
    assert (cell.label, cell.placement, cell.seed, cell.train_sigma) == ("regulator", "in", 3, 0.5)
    assert dataclasses.replace(grid, seeds=(3, 4)).cells()[0].key == cell.key


def test_feedforward_and_rl_cells():
    mlp = spec(model_kind="noisy_mlp", model={"hidden_size": 8, "num_layers": 1}).cells()[0]
    assert mlp.model_kind == "noisy_mlp" and mlp.model["num_layers"] == 1
    rl = spec(trainer="rl", training={"iterations": 2}).cells()[0]
    assert rl.trainer == "rl" and rl.model_kind == "CTRNNPolicyConfig"
    assert rl.train["sigma"] == 0.25 and rl.train["iterations"] == 2
