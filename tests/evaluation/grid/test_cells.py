"""A cell's content hash: defaulted fields are left out, so new defaulted fields rename nothing."""

import dataclasses
import hashlib
import json

import pytest

import agents.train_config
from evaluation.grid.cells import HASH_LENGTH, Cell
from evaluation.grid.runner import run_grid
from evaluation.grid.spec import spec_from_dict

GRID = {
    "tasks": [{"id": "NoisyFunctionApprox-v0", "options": {"steps": 10, "response_steps": 4}}],
    "placements": ["in"],
    "train_sigmas": [0.5],
    "seeds": [1],
    "model": {"hidden_size": 8},
    "training": {"iterations": 2, "batch_size": 8},
    "sweep": {"test_sigmas": [0, 0.5], "episodes": 4},
}


@pytest.fixture
def cell():
    return spec_from_dict(GRID).cells()[0]


def test_the_hash_covers_the_fields_away_from_their_defaults(cell):
    """The hash is SHA-256 of the canonical JSON of the config less its defaulted fields."""
    hashed = cell.hashed()
    assert hashed["train"] == {"sigma": 0.5, "seed": 1, "iterations": 2, "batch_size": 8}
    assert hashed["model"]["hidden_size"] == 8 and "activation" not in hashed["model"]
    assert hashed["task_kwargs"] == {"steps": 10, "response_steps": 4}  # obs_noise 0: default
    text = json.dumps(hashed, sort_keys=True, separators=(",", ":"))
    assert cell.key == hashlib.sha256(text.encode()).hexdigest()[:HASH_LENGTH]
    assert cell.folder_name.endswith(f"-seed1-{cell.key}")


def _with_field(cell, monkeypatch, name, value):
    """The cell as a spec would build it once TrainConfig has a new field ``name`` (default 0)."""
    base = agents.train_config.TrainConfig
    extended = dataclasses.make_dataclass(
        "TrainConfig", [(name, float, dataclasses.field(default=0.0))], bases=(base,), frozen=True
    )
    monkeypatch.setattr(agents.train_config, "TrainConfig", extended)
    return Cell.from_dict({**cell.to_dict(), "train": {**cell.train, name: value}})


def test_a_new_field_at_its_default_keeps_the_hash_and_another_value_changes_it(cell, monkeypatch):
    old_key, old_record = cell.key, cell.to_dict()
    same = _with_field(cell, monkeypatch, "new_option", 0.0)
    assert same.key == old_key and same.folder_name == cell.folder_name
    assert same.same_config(old_record)  # a cell.json written before the field existed
    other = _with_field(cell, monkeypatch, "new_option", 0.25)
    assert other.key != old_key and not other.same_config(old_record)


def test_changing_any_value_changes_the_hash(cell):
    for section, name, value in [
        ("train", "sigma", 0.25),
        ("train", "learning_rate", 0.5),  # a default value made explicit and changed
        ("model", "activation", "tanh"),
        ("task_kwargs", "obs_noise", 0.1),
        ("sweep", "episodes", 5),
    ]:
        data = cell.to_dict()
        data[section] = {**data[section], name: value}
        assert Cell.from_dict(data).key != cell.key, (section, name)


def test_a_grid_named_by_the_full_config_hash_is_renamed_not_retrained(tmp_path):
    """A folder from before the hash left defaults out is adopted and skipped."""
    first = run_grid(spec_from_dict(GRID), tmp_path, progress=False, figures=False)
    cell = first.cells[0]
    assert cell.full_folder_name != cell.folder_name
    (tmp_path / cell.folder_name).rename(tmp_path / cell.full_folder_name)
    second = run_grid(spec_from_dict(GRID), tmp_path, progress=False, figures=False)
    assert second.skipped == [cell.folder_name] and not second.ran
    assert second.rows == first.rows
    assert not (tmp_path / cell.full_folder_name).exists()
