"""Tests of the batched noise sweep and its result container."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from agents import CTRNN, CTRNNConfig
from evaluation.sweep import check_finite_metrics, sweep_noise
from evaluation.sweep_result import SweepResult, best_level_index, check_levels, summary_table
from noise_envs import FunctionApproxTask, make_task

BEST = 0.3


class BiasedOracle:
    """Outputs the task's target plus ``sigma - BEST``: its mse at sigma is ``(sigma - BEST)^2``."""

    def __init__(self, task: FunctionApproxTask, bias_of_sigma: bool = True) -> None:
        self.task = task
        self.bias_of_sigma = bias_of_sigma

    def initial_state(self, batch_size, device="cpu"):
        return torch.zeros(batch_size, 1, device=device)

    def step(self, obs, state, sigma=0.0, noise=None):
        sigma = torch.as_tensor(sigma, dtype=obs.dtype).expand(obs.shape[0])
        bias = (sigma - BEST) if self.bias_of_sigma else torch.zeros_like(sigma)
        return self.task.target_of(obs) + bias[:, None], state + 1


class SilentPolicy:
    """Outputs 0 whatever the noise: its mse is f(x)^2, a function of the episode alone."""

    def initial_state(self, batch_size, device="cpu"):
        return torch.zeros(batch_size, 1, device=device)

    def step(self, obs, state, sigma=0.0, noise=None):
        return torch.zeros(obs.shape[0], 1), state


@pytest.fixture
def task():
    return FunctionApproxTask(steps=4, response_steps=2)


@pytest.fixture
def noisy_task():
    return make_task("NoisyFunctionApprox-v0", steps=6, response_steps=3, obs_noise=0.1)


@pytest.fixture
def ctrnn():
    return CTRNN(CTRNNConfig(input_size=1, output_size=1, hidden_size=8, dt=20.0))


def make_result(values, levels=None, higher=False, **kwargs):
    values = np.asarray(values, dtype=float)
    levels = np.arange(values.shape[0]) * 0.1 if levels is None else levels
    defaults = {"task_id": "T-v0", "primary_metric": "mse", "seed": 0}
    return SweepResult(
        levels=levels,
        metrics={"mse": values},
        metric_directions={"mse": higher},
        **defaults | kwargs,
    )


def test_closed_form_metric_per_level(task):
    """A policy biased by sigma - 0.3 has mse (sigma - 0.3)^2 at every episode of every level."""
    levels = [0.0, 0.1, 0.2, 0.3, 0.45, 0.6]
    result = sweep_noise(BiasedOracle(task), task, levels, episodes=7)
    expected = (np.array(levels) - BEST) ** 2
    assert result.values("mse").shape == (6, 7)
    np.testing.assert_allclose(result.values("mse"), np.repeat(expected[:, None], 7, 1), atol=1e-6)
    summary = result.summary()
    np.testing.assert_allclose(summary.mean, expected, atol=1e-6)
    np.testing.assert_allclose(summary.sem, 0.0, atol=1e-6)
    assert result.best_level() == pytest.approx(0.3)


def test_levels_are_sorted_and_rows_follow(task):
    """Unsorted levels come back ascending, each row still holding its own level's metric."""
    result = sweep_noise(BiasedOracle(task), task, [0.6, 0.0, 0.3], episodes=3)
    np.testing.assert_array_equal(result.levels, [0.0, 0.3, 0.6])
    np.testing.assert_allclose(result.summary().mean, [0.09, 0.0, 0.09], atol=1e-6)


def test_noise_free_policy_gives_identical_rows(noisy_task):
    """Common random numbers: a policy blind to sigma sees the same trials at every level."""
    result = sweep_noise(SilentPolicy(), noisy_task, [0.0, 0.2, 0.9], episodes=16)
    values = result.values()
    assert np.ptp(values[0]) > 0.01  # episodes differ from each other ...
    np.testing.assert_array_equal(values[1], values[0])  # ... but not across levels
    np.testing.assert_array_equal(values[2], values[0])
    np.testing.assert_allclose(result.summary().sem[0], values[0].std(ddof=1) / 4)


def test_ctrnn_noise_is_common_across_levels(ctrnn, noisy_task):
    """Two copies of level 0.5 get the same noise samples, hence identical rows; level 0 differs."""
    result = sweep_noise(ctrnn, noisy_task, [0.0, 0.5, 0.5], episodes=8, seed=3)
    values = result.values()
    np.testing.assert_array_equal(values[1], values[2])
    assert not np.allclose(values[0], values[1])


def test_adding_levels_leaves_other_levels_unchanged(ctrnn, noisy_task):
    """Episode e of a level is the same whichever other levels share the sweep."""
    alone = sweep_noise(ctrnn, noisy_task, [0.4], episodes=8, seed=1)
    together = sweep_noise(ctrnn, noisy_task, [0.0, 0.4, 1.0], episodes=8, seed=1)
    np.testing.assert_allclose(together.values()[1], alone.values()[0], rtol=1e-5)


def test_per_row_sweep_matches_separate_rollouts_noise_free(ctrnn, task):
    """At sigma 0 on a noise-free task the sweep's mse equals a hand rollout on the same x."""
    result = sweep_noise(ctrnn, task, [0.0], episodes=5)
    mse = result.values()[0]
    # recompute: the CTRNN fed a constant x, scored over the last 2 of 4 steps
    # (x is recovered from the task's draws through the oracle: the same seed gives the same x)
    xs = _episode_inputs(task, 5)
    with torch.no_grad():
        outputs, _ = ctrnn(torch.as_tensor(xs, dtype=torch.float32)[None].expand(4, -1, -1))
    target = torch.sin(math.pi * torch.as_tensor(xs, dtype=torch.float32))
    expected = ((outputs[2:] - target) ** 2).mean(0).squeeze(-1).numpy()
    np.testing.assert_allclose(mse, expected, rtol=1e-5)


def _episode_inputs(task, episodes):
    """The x of each episode of a seed-0 sweep, read through a policy that records its inputs."""
    seen = []

    class Recorder(SilentPolicy):
        def step(self, obs, state, sigma=0.0, noise=None):
            seen.append(obs.clone())
            return super().step(obs, state, sigma, noise)

    sweep_noise(Recorder(), task, [0.0], episodes=episodes)
    return seen[0].numpy()


def test_chunking_keeps_shape_and_deterministic_values(task):
    """Splitting the episodes into chunks changes nothing for a deterministic policy and task."""
    levels = [0.0, 0.15, 0.3, 0.5]
    whole = sweep_noise(BiasedOracle(task), task, levels, episodes=10)
    chunked = sweep_noise(BiasedOracle(task), task, levels, episodes=10, max_rows=12)
    assert chunked.values().shape == (4, 10)
    # equal up to float32 rounding, which depends on each episode's x (drawn per chunk)
    np.testing.assert_allclose(chunked.values(), whole.values(), atol=1e-6)
    np.testing.assert_allclose(chunked.summary().mean, (np.array(levels) - BEST) ** 2, atol=1e-6)


def test_chunks_keep_common_random_numbers_and_draw_fresh_episodes(ctrnn, noisy_task):
    """Within each chunk levels share noise; different chunks see different episodes."""
    result = sweep_noise(ctrnn, noisy_task, [0.5, 0.5], episodes=9, max_rows=8, progress=True)
    values = result.values()
    np.testing.assert_array_equal(values[0], values[1])
    assert len(np.unique(values[0])) == 9  # chunks of 4, 4, 1 episodes, none repeated
    again = sweep_noise(ctrnn, noisy_task, [0.5, 0.5], episodes=9, max_rows=8)
    np.testing.assert_array_equal(again.values(), values)


def test_more_levels_than_rows_warns(task):
    with pytest.warns(UserWarning, match="exceed `max_rows`"):
        result = sweep_noise(BiasedOracle(task), task, [0.0, 0.3, 0.6], episodes=2, max_rows=2)
    np.testing.assert_allclose(result.summary().mean, [0.09, 0.0, 0.09], atol=1e-6)


def test_same_seed_same_result_other_seed_other_result(ctrnn, noisy_task):
    first = sweep_noise(ctrnn, noisy_task, [0.0, 0.3], episodes=6, seed=7)
    second = sweep_noise(ctrnn, noisy_task, [0.0, 0.3], episodes=6, seed=7)
    other = sweep_noise(ctrnn, noisy_task, [0.0, 0.3], episodes=6, seed=8)
    np.testing.assert_array_equal(first.values(), second.values())
    assert not np.allclose(first.values(), other.values())
    assert first.seed == 7


def test_sweep_runs_without_gradients(ctrnn, task):
    """The sweep leaves no autograd graph behind, even for a model with trainable weights."""
    result = sweep_noise(ctrnn, task, [0.0, 0.2], episodes=2)
    assert result.task_id == "NoisyFunctionApprox-v0"
    assert all(p.grad is None for p in ctrnn.parameters())
    assert result.metric_directions == {"mse": False}


def test_result_arrays_are_read_only():
    result = make_result(np.ones((2, 3)))
    with pytest.raises(ValueError, match="read-only"):
        result.values()[0, 0] = 5.0


@pytest.mark.parametrize(
    ("levels", "message"),
    [
        ([], "non-empty"),
        ([[0.0, 0.1]], "1-D"),
        ([0.0, -0.1], ">= 0"),
        ([0.0, float("nan")], "finite"),
        ([0.0, float("inf")], "finite"),
        (["a"], "numbers"),
    ],
)
def test_bad_levels_are_rejected(levels, message, task):
    with pytest.raises(ValueError, match=rf"`levels` must .*{message}"):
        sweep_noise(BiasedOracle(task), task, levels, episodes=1)


def test_check_levels_accepts_tensors_and_sorts():
    np.testing.assert_array_equal(check_levels(torch.tensor([0.5, 0.0])), [0.0, 0.5])


def test_levels_above_the_largest_noise_are_refused_before_any_rollout(task):
    """1e30 is refused by check_levels naming `levels` (not `sigma` from inside the rollout)."""
    with pytest.raises(ValueError, match=r"`levels` must be <= 1e\+06 .*got \[1e\+30\]$"):
        check_levels([0.0, 1e30])
    with pytest.raises(ValueError, match=r"^`levels` must be <= 1e\+06"):
        sweep_noise(BiasedOracle(task), task, [0.0, 1e30], episodes=1)
    np.testing.assert_array_equal(check_levels([1e6, 0.0]), [0.0, 1e6])  # the bound itself is ok


class NaNAbove:
    """The task's target, but NaN in rows whose noise level exceeds ``threshold``."""

    def __init__(self, task: FunctionApproxTask, threshold: float) -> None:
        self.task, self.threshold = task, threshold

    def initial_state(self, batch_size, device="cpu"):
        return torch.zeros(batch_size, 1, device=device)

    def step(self, obs, state, sigma=0.0, noise=None):
        sigma = torch.as_tensor(sigma, dtype=obs.dtype).expand(obs.shape[0])
        output = self.task.target_of(obs).clone()
        output[sigma > self.threshold] = math.nan
        return output, state


def test_non_finite_metrics_are_an_error_naming_the_metric_and_levels(task):
    """NaN outputs at levels 1 and 2 only: the error names 'mse' and exactly those levels."""
    with pytest.raises(
        ValueError,
        match=r"^the model's outputs are not finite: metric 'mse' is NaN or infinite at levels "
        r"\[1, 2\];",
    ):
        sweep_noise(NaNAbove(task, 0.6), task, [2.0, 0.0, 0.5, 1.0], episodes=3)
    finite = sweep_noise(NaNAbove(task, 10.0), task, [0.0, 1.0], episodes=3)
    np.testing.assert_array_equal(finite.values("mse"), 0.0)  # the target itself: mse 0


def test_a_diverged_ctrnn_sweep_is_refused(task, ctrnn):
    """NaN weights (a diverged training) no longer report sigma* = 0 silently."""
    with torch.no_grad():
        ctrnn.W_out.fill_(math.nan)
    with pytest.raises(ValueError, match=r"not finite: metric 'mse' .* levels \[0, 0\.5\]"):
        sweep_noise(ctrnn, task, [0.0, 0.5], episodes=2)


def test_check_finite_metrics_lists_at_most_eight_levels():
    """Twenty bad levels: eight shown and the count given."""
    levels = np.arange(20.0)
    with pytest.raises(ValueError, match=r"levels \[0, 1, 2, 3, 4, 5, 6, 7\] \(20 of 20 levels\)"):
        check_finite_metrics({"mse": np.full((20, 2), math.inf)}, levels)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"episodes": 0}, "`episodes` must be an integer >= 1, got 0"),
        ({"max_rows": 0}, "`max_rows` must be an integer >= 1, got 0"),
        ({"seed": -1}, "`seed` must be an integer >= 0, got -1"),
        ({"seed": 1.5}, "`seed` must be an integer >= 0, got 1.5"),
    ],
)
def test_bad_options_are_rejected(kwargs, message, task):
    with pytest.raises(ValueError, match=message):
        sweep_noise(BiasedOracle(task), task, [0.0], **kwargs)


def test_unknown_metric_suggests_the_closest():
    result = make_result(np.ones((2, 3)))
    with pytest.raises(ValueError, match="Did you mean 'mse'"):
        result.summary("mes")


def test_summary_matches_hand_computation():
    """sem = std(ddof=1) / sqrt(n) and the 95 % interval is mean +- 1.959964 sem."""
    values = np.array([[1.0, 2.0, 3.0, 6.0], [0.0, 0.0, 1.0, 1.0]])
    summary = make_result(values).summary()
    sem0 = math.sqrt(((1 - 3) ** 2 + (2 - 3) ** 2 + 0 + (6 - 3) ** 2) / 3) / 2
    np.testing.assert_allclose(summary.mean, [3.0, 0.5])
    np.testing.assert_allclose(summary.sem[0], sem0)
    np.testing.assert_allclose(summary.ci_high[0], 3.0 + 1.959964 * sem0, rtol=1e-6)
    np.testing.assert_allclose(summary.ci_low[0], 3.0 - 1.959964 * sem0, rtol=1e-6)
    np.testing.assert_array_equal(summary.n, [4, 4])
    narrow = make_result(values).summary(confidence=0.5)
    np.testing.assert_allclose(narrow.ci_high[0] - 3.0, 0.6744898 * sem0, rtol=1e-6)


def test_summary_of_one_episode_has_undefined_sem():
    summary = make_result(np.array([[1.0], [2.0]])).summary()
    assert np.isnan(summary.sem).all()
    np.testing.assert_array_equal(summary.mean, [1.0, 2.0])


@pytest.mark.parametrize("confidence", [0.0, 1.0, 1.5])
def test_summary_rejects_bad_confidence(confidence):
    with pytest.raises(ValueError, match="`confidence` must"):
        make_result(np.ones((2, 2))).summary(confidence=confidence)


def test_best_level_follows_direction_and_breaks_ties_low():
    values = np.array([[2.0, 2.0], [1.0, 1.0], [3.0, 3.0]])
    assert make_result(values).best_level() == pytest.approx(0.1)
    assert make_result(values, higher=True).best_level() == pytest.approx(0.2)
    assert best_level_index(np.array([1.0, 1.0 + 1e-14, 2.0]), False) == 0
    assert best_level_index(np.array([1.0 + 1e-14, 1.0, 2.0]), False) == 0


def test_constructor_validates_shapes_and_names():
    with pytest.raises(ValueError, match=r"shape \[2, E\]"):
        make_result(np.ones((3, 2)), levels=[0.0, 0.1])
    with pytest.raises(ValueError, match="`metric_directions` must name exactly"):
        SweepResult(
            task_id="T",
            levels=[0.0],
            metrics={"mse": np.ones((1, 2))},
            metric_directions={"perf": True},
            primary_metric="mse",
            seed=0,
        )
    with pytest.raises(ValueError, match="`primary_metric` must be one of"):
        make_result(np.ones((1, 2)), primary_metric="perf")
    with pytest.raises(ValueError, match="`levels` must be ascending"):
        make_result(np.ones((2, 2)), levels=[0.5, 0.0])
    with pytest.raises(ValueError, match="`levels` must be >= 0"):
        make_result(np.ones((2, 2)), levels=[-0.5, 0.0])
    with pytest.raises(ValueError, match="`seed` must be an integer >= 0"):
        make_result(np.ones((1, 2)), seed=-3)


def test_repr_names_task_levels_and_size():
    text = repr(make_result(np.ones((3, 5))))
    assert text.startswith("SweepResult(task_id='T-v0', levels=[0, 0.1, 0.2], episodes=5")
    assert "primary_metric='mse'" in text


def test_csv_round_trip_is_exact(tmp_path, ctrnn, noisy_task):
    result = sweep_noise(ctrnn, noisy_task, [0.0, 0.1, 0.7], episodes=5, seed=4)
    path = result.to_csv(tmp_path / "sub" / "sweep.csv")
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# {")
    assert lines[1] == "level,episode,mse"
    assert len(lines) == 2 + 3 * 5
    assert lines[2].startswith("0.0,0,")
    back = SweepResult.from_csv(path)
    np.testing.assert_array_equal(back.levels, result.levels)
    np.testing.assert_array_equal(back.values("mse"), result.values("mse"))
    assert (back.task_id, back.primary_metric, back.seed) == ("NoisyFunctionApprox-v0", "mse", 4)
    assert back.metric_directions == {"mse": False}
    assert [p.name for p in path.parent.iterdir()] == ["sweep.csv"]  # no temporary file left


def test_csv_round_trip_keeps_duplicate_levels_and_several_metrics(tmp_path):
    result = SweepResult(
        task_id="T",
        levels=[0.0, 0.5, 0.5],
        metrics={"mse": np.arange(6.0).reshape(3, 2) / 7, "success": np.eye(3, 2)},
        metric_directions={"mse": False, "success": True},
        primary_metric="success",
        seed=2,
    )
    back = SweepResult.from_csv(result.to_csv(tmp_path / "sweep.csv"))
    np.testing.assert_array_equal(back.values("mse"), result.values("mse"))
    np.testing.assert_array_equal(back.values("success"), result.values("success"))
    assert back.metric_directions == {"mse": False, "success": True}
    assert back.primary_metric == "success"


def test_csv_without_metadata_needs_directions(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("level,episode,mse\n0,0,1.5\n0,1,2.5\n0.2,0,0.5\n0.2,1,0.5\n")
    with pytest.raises(ValueError, match="pass `metric_directions`"):
        SweepResult.from_csv(path)
    result = SweepResult.from_csv(path, metric_directions={"mse": False}, task_id="X")
    np.testing.assert_array_equal(result.values(), [[1.5, 2.5], [0.5, 0.5]])
    assert result.best_level() == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lvl,episode,mse\n0,0,1\n", "expected a header"),
        ("level,episode,mse\n0,0,1\n0,1,x\n", "must be a number"),
        ("level,episode,mse\n0,0,1\n0.1,1,1\n", "level-major"),
        ("level,episode,mse\n0,1,1\n0,0,1\n", "level-major"),
        ("# {not json\nlevel,episode,mse\n0,0,1\n", "not JSON metadata"),
    ],
)
def test_malformed_csv_is_rejected(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        SweepResult.from_csv(path, metric_directions={"mse": False})


def test_summary_table_lists_every_level_and_label():
    table = summary_table(
        {
            "in": make_result(np.array([[1.0, 1.0], [0.5, 0.5]])),
            "out": make_result(np.array([[0.25, 0.25], [2.0, 2.0], [3.0, 3.0]])),
        }
    )
    lines = table.splitlines()
    assert lines[0] == "mse (mean +/- sem)"
    assert lines[1].split() == ["sigma", "in", "out"]
    assert lines[3].split() == ["0", "1", "+/-", "0", "0.25", "+/-", "0"]
    assert lines[5].split() == ["0.2", "3", "+/-", "0"]  # "in" has no level 0.2


def test_results_are_plain_files(tmp_path):
    """to_csv returns the path it wrote, as a Path."""
    path = make_result(np.ones((1, 1))).to_csv(str(tmp_path / "a.csv"))
    assert isinstance(path, Path)
    assert path.exists()


@pytest.mark.parametrize(
    "content", [b"\x89PNG\r\n\x1a\n\x00\x00", b"level,episode,mse\n\xff,0,1\n"]
)
def test_from_csv_of_a_binary_file_names_it(content, tmp_path):
    """A file with NUL bytes or invalid UTF-8 is one ValueError naming the file, not a codec error."""
    path = tmp_path / "table.csv"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=rf"^{path}: it is a binary file, not a CSV text table"):
        SweepResult.from_csv(path)
