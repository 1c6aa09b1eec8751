"""Tests of recalibration: the read-out is the least-squares one, and the new run is a run."""

import json
import math

import numpy as np
import pytest
import torch
from scipy import stats

from agents import CTRNNConfig, TrainConfig, load_run, train_run
from agents.errors import NotARunFolder, RunMismatch
from agents.mlp import NoisyMLPConfig
from agents.recalibration_config import RecalibrationConfig
from agents.run_files import RUN_FILE
from evaluation.cli import main
from evaluation.mechanism.analysis import AnalysisConfig, analyze_model
from evaluation.mechanism.mean_field import mean_field_statistics
from evaluation.recalibrate import (
    bias_shift,
    check_recalibratable,
    collect_readout_data,
    fit_readout,
    recalibrate,
)
from evaluation.sweep import sweep_noise
from noise_envs import RandomSource

TASK = "NoisyFunctionApprox-v0"


def ctrnn_config(**changes):
    return CTRNNConfig(input_size=1, output_size=1, hidden_size=12, dt=20.0, **changes)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A small noise-in CTRNN trained at sigma 0.5 (the run recalibrations start from)."""
    folder = tmp_path_factory.mktemp("runs") / "source"
    config = TrainConfig(sigma=0.5, iterations=60, batch_size=32, learning_rate=1e-2)
    return train_run(folder, TASK, ctrnn_config(), config, progress=False)


def numpy_readout(data):
    """The weighted least-squares read-out, by numpy on the scored rows."""
    features, targets, masks = (t.numpy() for t in (data.features, data.targets, data.masks))
    weights, biases = [], []
    for a in range(targets.shape[1]):
        keep = masks[:, a] > 0
        scale = np.sqrt(masks[keep, a])[:, None]
        design = np.hstack([features[keep], np.ones((keep.sum(), 1))]) * scale
        solution = np.linalg.lstsq(design, targets[keep, a : a + 1] * scale, rcond=None)[0][:, 0]
        weights.append(solution[:-1])
        biases.append(solution[-1])
    return np.array(weights), np.array(biases)


def test_recalibrated_readout_is_the_least_squares_solution(source, tmp_path):
    new = recalibrate(source.path, tmp_path / "new", to_sigma=0.0, episodes=64, seed=3, ridge=0)
    data = collect_readout_data(source.model, source.task(), 0.0, episodes=64, seed=3)
    weight, bias = numpy_readout(data)
    np.testing.assert_allclose(new.model.W_out.detach().numpy(), weight, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(new.model.b_out.detach().numpy(), bias, rtol=1e-4, atol=1e-5)
    # Only the read-out changed.
    for name in ("W", "U", "b", "h0"):
        assert torch.equal(getattr(new.model, name), getattr(source.model, name)), name


def test_collected_states_are_the_models_own_sequence(source):
    """Step-by-step collection sees what CTRNN.forward computes on the same episodes and noise."""
    task, sigma, seed = source.task(), 0.3, 4
    data = collect_readout_data(source.model, task, sigma, episodes=8, seed=seed)
    env_seed, noise_seed = np.random.SeedSequence(seed).generate_state(2, dtype=np.uint64)
    episode = task.open_loop_episode(8, RandomSource.from_seed(int(env_seed)))
    with torch.no_grad():
        _, hidden = source.model(
            episode.observations, sigma, RandomSource.from_seed(int(noise_seed))
        )
    steps = hidden.shape[0]
    np.testing.assert_allclose(
        data.features.numpy(), hidden.reshape(steps * 8, -1).double().numpy(), atol=1e-5
    )
    np.testing.assert_array_equal(data.masks.numpy(), episode.masks.reshape(steps * 8, -1).numpy())
    np.testing.assert_allclose(data.targets.numpy(), episode.targets.reshape(steps * 8, -1))


def test_a_huge_ridge_leaves_only_the_weighted_mean_target(source):
    data = collect_readout_data(source.model, source.task(), 0.0, episodes=16, seed=0)
    weight, bias = fit_readout(data, ridge=1e12)
    assert float(weight.abs().max()) < 1e-6
    mean = float((data.masks * data.targets).sum() / data.masks.sum())
    assert float(bias[0]) == pytest.approx(mean, abs=1e-6)


def test_recalibrated_run_records_its_source_and_loads_sweeps_and_analyses(source, tmp_path):
    out = tmp_path / "at-zero"
    recalibrate(source.path, out, to_sigma=0.0, episodes=128, seed=1)
    record = json.loads((out / RUN_FILE).read_text())
    assert record["trainer"] == "recalibrate" and record["status"] == "complete"
    assert record["train"]["source"] == str(source.path.resolve())
    assert record["train"]["source_train"]["sigma"] == 0.5
    assert {k: record["train"][k] for k in ("to_sigma", "method", "episodes", "seed")} == {
        "to_sigma": 0.0,
        "method": "readout",
        "episodes": 128,
        "seed": 1,
    }
    run = load_run(out)
    assert isinstance(run.train_config, RecalibrationConfig) and run.train_config.sigma == 0.0
    task = run.task()
    levels = [0.0, 0.5]
    before = sweep_noise(source.model, task, levels, episodes=128, seed=9, progress=False)
    after = sweep_noise(run.model, task, levels, episodes=128, seed=9, progress=False)
    # Fitted at zero noise, the read-out is better there than the one trained at 0.5.
    assert after.values("mse")[0].mean() < before.values("mse")[0].mean()
    small = AnalysisConfig(
        num_inputs=2, num_levels=3, steps=60, burn_in=10, replicas=2, episodes=8, num_initial=2
    )
    report = analyze_model(run.model, task, train_sigma=run.train_config.sigma, config=small)
    assert "kink occupancy" in report.summary()


def test_same_recalibration_again_is_a_no_op_and_another_is_refused(source, tmp_path):
    out = tmp_path / "again"
    first = recalibrate(source.path, out, to_sigma=0.1, episodes=32)
    stamp = (out / "weights.safetensors").stat().st_mtime_ns
    second = recalibrate(source.path, out, to_sigma=0.1, episodes=32)
    assert (out / "weights.safetensors").stat().st_mtime_ns == stamp
    assert torch.equal(first.model.W_out, second.model.W_out)
    with pytest.raises(RunMismatch, match=r"train.to_sigma is 0.1 there, 0.2 here"):
        recalibrate(source.path, out, to_sigma=0.2, episodes=32)


def test_a_noisy_mlp_run_is_recalibrated_too(tmp_path):
    config = NoisyMLPConfig(input_size=1, output_size=1, hidden_size=8)
    run = train_run(
        tmp_path / "mlp",
        TASK,
        config,
        TrainConfig(sigma=0.5, iterations=5, batch_size=8),
        model_kind="noisy_mlp",
        progress=False,
    )
    new = recalibrate(run.path, tmp_path / "mlp0", to_sigma=0.0, episodes=16, ridge=0)
    with pytest.raises(ValueError, match=r"the bias shift applies to CTRNNs"):
        recalibrate(run.path, tmp_path / "mlp1", to_sigma=0.0, method="bias_shift+readout")
    data = collect_readout_data(run.model, run.task(), 0.0, episodes=16)
    weight, bias = numpy_readout(data)
    np.testing.assert_allclose(new.model.W_out.detach().numpy(), weight, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(new.model.b_out.detach().numpy(), bias, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# the bias shift


def relu_mean(mu, s):
    """E[relu(mu + s xi)], the textbook closed form (s > 0) or relu (s = 0)."""
    if s == 0:
        return np.maximum(mu, 0.0)
    z = mu / s
    return mu * stats.norm.cdf(z) + s * stats.norm.pdf(z)


@pytest.mark.parametrize("to_sigma", [0.0, 0.2, 0.8])
def test_bias_shift_restores_each_units_mean_rate(source, to_sigma):
    model, u = source.model, torch.tensor([[0.4]])
    delta = bias_shift(model, u, 0.5, to_sigma).numpy()
    mu = mean_field_statistics(model, u, 0.5, linear_response=False).pre_mean[0].numpy()
    np.testing.assert_allclose(relu_mean(mu + delta, to_sigma), relu_mean(mu, 0.5), atol=1e-7)
    if to_sigma < 0.5:  # less noise, less of the rectified mean: every bias moves up
        assert np.all(delta >= -1e-12)


def test_bias_shift_is_zero_for_noise_out_and_no_shift_for_the_same_noise(source):
    model, u = source.model, torch.tensor([[0.4], [-0.2]])
    assert float(bias_shift(model, u, 0.5, 0.5).abs().max()) < 1e-9
    from agents import CTRNN

    out = CTRNN(ctrnn_config(placement="out"))
    assert torch.equal(bias_shift(out, u, 0.5, 0.0), torch.zeros(12, dtype=torch.float64))


def test_bias_shift_method_moves_the_biases_and_records_it(source, tmp_path):
    new = recalibrate(source.path, tmp_path / "shifted", to_sigma=0.0, method="bias_shift+readout")
    assert new.train_config.method == "bias_shift+readout" and new.train_config.bias_shift
    assert not torch.equal(new.model.b, source.model.b)


# ---------------------------------------------------------------------------------------------
# refusals


def test_negative_to_sigma_is_refused(source, tmp_path):
    with pytest.raises(ValueError, match=r"`to_sigma` must be >= 0, got -0.5"):
        recalibrate(source.path, tmp_path / "neg", to_sigma=-0.5)
    assert not (tmp_path / "neg").exists()


def test_the_source_folder_as_output_is_refused(source):
    with pytest.raises(ValueError, match=r"is the source run itself"):
        recalibrate(source.path, source.path, to_sigma=0.0)


def _sigmoid_run(tmp_path):
    """A one-iteration run with a sigmoid read-out, which recalibration cannot refit."""
    config = TrainConfig(iterations=1, batch_size=4)
    return train_run(
        tmp_path / "sig", TASK, ctrnn_config(readout="sigmoid"), config, progress=False
    )


def test_a_sigmoid_readout_run_is_refused(tmp_path):
    run = _sigmoid_run(tmp_path)
    with pytest.raises(ValueError, match=r"has a sigmoid read-out; recalibration refits a linear"):
        recalibrate(run.path, tmp_path / "sig0", to_sigma=0.0)
    assert not (tmp_path / "sig0").exists()


def test_a_model_without_a_linear_readout_is_refused():
    with pytest.raises(ValueError, match=r"holds a Linear; recalibration refits the linear"):
        check_recalibratable(torch.nn.Linear(2, 2))


def test_a_folder_that_is_not_a_run_and_a_bad_method_are_refused(source, tmp_path):
    with pytest.raises(NotARunFolder, match=r"has no run.json"):
        recalibrate(tmp_path, tmp_path / "x", to_sigma=0.0)
    with pytest.raises(ValueError, match=r"`method` must be one of \['readout'"):
        recalibrate(source.path, tmp_path / "x", to_sigma=0.0, method="retrain")
    with pytest.raises(ValueError, match=r"`ridge` must be >= 0"):
        RecalibrationConfig(ridge=-1.0)
    assert math.isfinite(RecalibrationConfig().ridge)


# ---------------------------------------------------------------------------------------------
# the command line


def test_cli_recalibrates_and_the_result_sweeps(source, tmp_path, capsys):
    out = tmp_path / "cli"
    assert (
        main(
            [
                "recalibrate",
                str(source.path),
                "--to-sigma",
                "0",
                "--out",
                str(out),
                "--episodes",
                "32",
                "--no-progress",
            ]
        )
        == 0
    )
    assert "read-out fitted at sigma 0: mse" in capsys.readouterr().out
    levels = "0,0.5"
    assert main(["sweep", str(out), "--levels", levels, "--episodes", "16", "--no-progress"]) == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--to-sigma", "-1"], "`to_sigma` must be >= 0, got -1.0"),
        (["--to-sigma", "0", "--ridge", "-1"], "`ridge` must be >= 0"),
    ],
)
def test_cli_refuses_bad_values_in_one_line(source, tmp_path, capsys, extra, message):
    code = main(["recalibrate", str(source.path), "--out", str(tmp_path / "x"), *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert err.startswith("noisepref recalibrate: error:")


def test_cli_refuses_the_source_as_output_and_a_sigmoid_run(source, tmp_path, capsys):
    assert (
        main(["recalibrate", str(source.path), "--to-sigma", "0", "--out", str(source.path)]) == 2
    )
    assert "is the source run itself" in capsys.readouterr().err
    run = _sigmoid_run(tmp_path)
    assert (
        main(["recalibrate", str(run.path), "--to-sigma", "0", "--out", str(tmp_path / "y")]) == 2
    )
    assert "sigmoid read-out" in capsys.readouterr().err
