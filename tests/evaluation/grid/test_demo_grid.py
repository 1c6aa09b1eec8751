"""The demo runs its two networks as the cells of a grid: the same networks as in memory."""

import numpy as np

from evaluation.demo import PlacementConfig, compare_placements
from evaluation.grid.cell_run import CELL_FILE

TINY = PlacementConfig(
    hidden_size=8, iterations=3, batch_size=8, episodes=8, num_levels=3, sigma=0.5, seed=2
)


def test_the_demo_in_a_grid_equals_the_demo_in_memory(tmp_path):
    in_grid = compare_placements(TINY, out_dir=tmp_path, progress=False)
    in_memory = compare_placements(TINY, progress=False)
    for label in ("noise-in", "noise-out"):
        np.testing.assert_array_equal(
            in_grid.sweeps[label].values(), in_memory.sweeps[label].values()
        )
        assert in_grid.preferences[label] == in_memory.preferences[label]
    for placement in ("in", "out"):
        folder = tmp_path / TINY.run_name(placement)
        assert (folder / CELL_FILE).is_file() and (folder / "sweep.csv").is_file()


def test_the_grid_spec_of_a_demo_has_its_two_networks():
    cells = TINY.grid_spec().cells()
    assert [cell.placement for cell in cells] == ["in", "out"]
    for cell in cells:
        assert cell.model == TINY.model_config(cell.placement).to_dict()
        assert cell.train == TINY.train_config().to_dict()
        assert list(cell.sweep["test_sigmas"]) == TINY.levels.tolist()
