"""Tests of the supervised BPTT trainer: learning, determinism, resume, divergence, validation."""

import math

import numpy as np
import pytest
import torch

import agents.supervised as supervised
from agents import CTRNN, CTRNNConfig, TrainConfig, TrainingDiverged, load_run, rollout, train
from agents.errors import RunMismatch
from agents.runs import CHECKPOINT_FILE, read_history
from noise_envs import RandomSource, make_task

TASK_ID = "NoisyRegulator-v0"
TASK_KWARGS = {"steps": 10, "settle_steps": 5}


def make_model(seed=0, hidden_size=8):
    config = CTRNNConfig(input_size=1, output_size=1, hidden_size=hidden_size, dt=20.0)
    return CTRNN(config, generator=torch.Generator().manual_seed(seed))


def make_config(**changes):
    base = TrainConfig(
        sigma=0.1, iterations=40, batch_size=16, learning_rate=3e-2, checkpoint_every=10, seed=0
    )
    return base.replace(**changes)


def regulator(**options):
    return make_task(TASK_ID, **TASK_KWARGS, **options)


def weights(model):
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), f"{name} differs"


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """An uninterrupted 40-iteration run saved to a folder, shared by the resume tests."""
    folder = tmp_path_factory.mktemp("straight")
    return train(make_model(), regulator(), make_config(), run_dir=folder, progress=False)


def held_out_loss(model):
    with torch.no_grad():
        result = rollout(
            model, regulator(), 256, sigma=0.1, env_rng=123, noise=RandomSource.from_seed(456)
        )
    return result.teacher_loss.item()


def failing_loss(monkeypatch, at_call, make_bad):
    """Replace the trainer's teacher loss so that call number ``at_call`` (1-based) goes wrong."""
    calls = {"count": 0}
    original = supervised.teacher_loss

    def patched(*args, **kwargs):
        calls["count"] += 1
        result = original(*args, **kwargs)
        return make_bad(result) if calls["count"] == at_call else result

    monkeypatch.setattr(supervised, "teacher_loss", patched)


def poison(value):
    def make_bad(loss):
        return loss * value

    return make_bad


def interrupt(result):
    raise KeyboardInterrupt("simulated interruption")


def test_training_lowers_the_held_out_loss_fivefold():
    """60 iterations bring the teacher loss on unseen episodes to under a fifth of its start."""
    model = make_model()
    before = held_out_loss(model)
    result = train(model, regulator(), make_config(iterations=60), progress=False)
    after = held_out_loss(result.model)
    assert after < before / 5, (before, after)
    assert result.model is model
    assert result.iterations_done == 60
    assert result.run_dir is None


def adam_by_hand(config, loss_of):
    """``make_model()`` after ``config.iterations`` clipped Adam steps on
    ``loss_of(model, env_rng, noise)``, with the random sources the trainer derives from the seed."""
    model = make_model()
    env_seed, noise_seed = np.random.SeedSequence(config.seed).generate_state(2, dtype=np.uint64)
    env_rng = RandomSource.from_seed(int(env_seed))
    noise = RandomSource.from_seed(int(noise_seed))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.learning_rate)
    for _ in range(config.iterations):
        loss = loss_of(model, env_rng, noise)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        optimizer.step()
    return model


def test_trainer_equals_a_hand_written_adam_loop():
    """Three iterations equal Adam on the clipped teacher-loss gradient with the seeded sources.

    The regulator is open loop, so the trainer runs each batch of episodes as one sequence.
    """
    config, task = make_config(iterations=3, grad_clip=0.05), regulator()
    trained = train(make_model(), task, config, progress=False).model

    def sequence_loss(model, env_rng, noise):
        episode = task.open_loop_episode(16, env_rng)
        outputs, _ = model(episode.observations, sigma=0.1, noise=noise)
        error = episode.masks * (outputs - episode.targets) ** 2
        return error.sum() / episode.masks.sum()

    assert_same_weights(weights(trained), weights(adam_by_hand(config, sequence_loss)))


def test_trainer_follows_the_closed_loop_rollout_with_observation_noise():
    """Three iterations equal Adam on the closed-loop rollout's loss up to float rounding: the
    trainer's one-sequence path meets the same episodes, observation noise included, every
    iteration."""
    config, task = make_config(iterations=3, grad_clip=0.05), regulator(obs_noise=0.3)
    trained = train(make_model(), task, config, progress=False).model

    def rollout_loss(model, env_rng, noise):
        return rollout(model, task, 16, sigma=0.1, env_rng=env_rng, noise=noise).teacher_loss

    by_hand = weights(adam_by_hand(config, rollout_loss))
    for name, value in weights(trained).items():
        np.testing.assert_allclose(
            value.numpy(), by_hand[name].numpy(), rtol=1e-4, atol=1e-5, err_msg=name
        )


def test_history_has_one_row_per_iteration():
    """The history logs iterations 1..N with the configured learning rate and finite values."""
    result = train(make_model(), regulator(), make_config(iterations=7), progress=False)
    assert [row["iteration"] for row in result.history] == list(range(1, 8))
    for row in result.history:
        assert set(row) == {"iteration", "loss", "grad_norm", "learning_rate", "seconds"}
        assert row["learning_rate"] == 3e-2
        assert math.isfinite(row["loss"]) and row["loss"] >= 0
        assert row["grad_norm"] > 0 and row["seconds"] > 0


def test_history_logs_the_gradient_norm_before_clipping():
    """With clipping off or at 1e-3, the first iteration's gradient norm is the same unclipped one."""
    task = regulator()
    clipped = train(make_model(), task, make_config(iterations=1, grad_clip=1e-3), progress=False)
    free = train(make_model(), task, make_config(iterations=1, grad_clip=0.0), progress=False)
    assert clipped.history[0]["grad_norm"] == free.history[0]["grad_norm"] > 1e-3


def test_same_seed_gives_identical_weights_and_another_seed_does_not():
    """Training is a function of the seed: same seed, same bits; another seed, other weights."""
    task = regulator()
    first = train(make_model(), task, make_config(iterations=10), progress=False)
    second = train(make_model(), task, make_config(iterations=10), progress=False)
    other = train(make_model(), task, make_config(iterations=10, seed=1), progress=False)
    assert_same_weights(weights(first.model), weights(second.model))
    assert not torch.equal(first.model.W, other.model.W)


def test_resuming_with_more_iterations_equals_an_uninterrupted_run(tmp_path, straight):
    """20 iterations, then 40 in the same folder, end bitwise where 40 straight iterations end."""
    task = regulator()
    train(make_model(), task, make_config(iterations=20), run_dir=tmp_path / "b", progress=False)
    resumed = train(make_model(), task, make_config(), run_dir=tmp_path / "b", progress=False)
    assert_same_weights(weights(straight.model), weights(resumed.model))
    assert [row["loss"] for row in resumed.history] == [row["loss"] for row in straight.history]
    assert load_run(tmp_path / "b").train_config.iterations == 40


def test_resuming_after_a_crash_equals_an_uninterrupted_run(tmp_path, monkeypatch, straight):
    """A run stopped at iteration 25 restarts from the checkpoint at 20 and ends bitwise equal."""
    task = regulator()
    with monkeypatch.context() as patch:
        failing_loss(patch, 25, interrupt)
        with pytest.raises(KeyboardInterrupt):
            train(make_model(), task, make_config(), run_dir=tmp_path / "b", progress=False)
    assert load_run(tmp_path / "b").iterations_done == 20
    # Another initial model: the checkpoint's weights replace it.
    resumed = train(make_model(seed=7), task, make_config(), run_dir=tmp_path / "b", progress=False)
    assert_same_weights(weights(straight.model), weights(resumed.model))
    assert [row["iteration"] for row in resumed.history] == list(range(1, 41))
    assert [row["loss"] for row in read_history(tmp_path / "b")] == [
        row["loss"] for row in straight.history
    ]


def test_resume_false_starts_over(tmp_path):
    """With resume=False a folder's earlier run is discarded and training starts from the model."""
    task = regulator()
    fresh = train(make_model(), task, make_config(iterations=10), progress=False)
    train(make_model(seed=3), task, make_config(iterations=20), run_dir=tmp_path, progress=False)
    again = train(
        make_model(),
        task,
        make_config(iterations=10),
        run_dir=tmp_path,
        progress=False,
        resume=False,
    )
    assert_same_weights(weights(fresh.model), weights(again.model))
    assert len(read_history(tmp_path)) == 10
    assert load_run(tmp_path).iterations_done == 10


def test_fewer_iterations_than_done_is_refused(tmp_path):
    """A folder trained for 20 iterations cannot be 'resumed' to 10."""
    task = regulator()
    train(make_model(), task, make_config(iterations=20), run_dir=tmp_path, progress=False)
    with pytest.raises(RunMismatch, match=r"already trained 20 iterations.*`iterations` = 10"):
        train(make_model(), task, make_config(iterations=10), run_dir=tmp_path, progress=False)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_divergence_names_the_iteration_and_keeps_the_last_checkpoint(tmp_path, monkeypatch, bad):
    """A non-finite loss at iteration 15 raises naming 15; the checkpoint at 10 stays and loads."""
    task = regulator()
    reference = train(make_model(), task, make_config(iterations=10), progress=False)
    failing_loss(monkeypatch, 15, poison(bad))
    model = make_model()
    with pytest.raises(TrainingDiverged, match="iteration 15"):
        train(model, task, make_config(), run_dir=tmp_path, progress=False)
    run = load_run(tmp_path)
    assert (run.status, run.iterations_done) == ("running", 10)
    assert_same_weights(weights(reference.model), weights(run.model))
    assert torch.load(tmp_path / CHECKPOINT_FILE, weights_only=True)["iteration"] == 10
    assert all(math.isfinite(value) for value in weights(model)["W"].flatten().tolist())


@pytest.mark.parametrize(
    ("section", "changes", "message"),
    [
        ("task", {"task_kwargs": {"steps": 12, "settle_steps": 5}}, r"task.kwargs.steps is 10"),
        ("model", {"hidden_size": 4}, r"model.config.hidden_size is 8 there, 4 here"),
        ("train", {"sigma": 0.2}, r"train.sigma is 0.1 there, 0.2 here"),
    ],
)
def test_a_folder_with_another_run_is_not_overwritten(tmp_path, section, changes, message):
    """Training into a folder that holds a different run raises RunMismatch naming the field and
    both values; the checkpoint is untouched."""
    train(make_model(), regulator(), make_config(iterations=2), run_dir=tmp_path, progress=False)
    before = (tmp_path / CHECKPOINT_FILE).read_bytes()
    task = make_task(TASK_ID, **changes.get("task_kwargs", TASK_KWARGS))
    model = make_model(hidden_size=changes.get("hidden_size", 8))
    config = make_config(iterations=2, sigma=changes.get("sigma", 0.1))
    with pytest.raises(RunMismatch, match=message):
        train(model, task, config, run_dir=tmp_path, progress=False)
    assert (tmp_path / CHECKPOINT_FILE).read_bytes() == before


def test_model_that_does_not_fit_the_task_is_refused():
    """A model whose input size differs from the task's observation size is rejected up front."""
    model = CTRNN(CTRNNConfig(input_size=3, output_size=1, hidden_size=4))
    with pytest.raises(ValueError, match="`input_size` is 3, but NoisyRegulator-v0 needs 1"):
        train(model, regulator(), make_config(iterations=1), progress=False)


def test_a_task_that_cannot_be_saved_is_refused_before_training(tmp_path):
    """A task with a callable target cannot be written to run.json; nothing is trained or written."""
    task = make_task("NoisyFunctionApprox-v0", steps=4, response_steps=2, function=torch.cos)
    model = make_model()
    before = weights(model)
    with pytest.raises(ValueError, match="`function` is a callable"):
        train(model, task, make_config(iterations=2), run_dir=tmp_path / "run", progress=False)
    assert_same_weights(before, weights(model))
    assert not (tmp_path / "run").exists()


def test_config_must_be_a_train_config():
    """Passing a dict instead of a TrainConfig is a ValueError, not a crash mid-training."""
    with pytest.raises(ValueError, match="`config` must be a TrainConfig, got dict"):
        train(make_model(), regulator(), {"iterations": 1}, progress=False)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("sigma", -0.1, r"`sigma` must be >= 0, got -0.1"),
        ("sigma", math.nan, r"`sigma` must be finite"),
        ("sigma", math.inf, r"`sigma` must be finite"),
        ("iterations", 0, r"`iterations` must be an integer >= 1, got 0"),
        ("iterations", 2.5, r"`iterations` must be an integer >= 1, got 2.5"),
        ("batch_size", -3, r"`batch_size` must be an integer >= 1, got -3"),
        ("batch_size", True, r"`batch_size` must be an integer >= 1, got True"),
        ("learning_rate", 0.0, r"`learning_rate` must be > 0, got 0.0"),
        ("learning_rate", math.nan, r"`learning_rate` must be finite"),
        ("grad_clip", -1.0, r"`grad_clip` must be >= 0, got -1.0"),
        ("seed", -1, r"`seed` must be an integer >= 0, got -1"),
        ("seed", 1.5, r"`seed` must be an integer >= 0, got 1.5"),
        ("checkpoint_every", 0, r"`checkpoint_every` must be an integer >= 1, got 0"),
    ],
)
def test_train_config_rejects_bad_values(field, value, message):
    """Every TrainConfig field is validated with a message naming it and the value."""
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{field: value})


def test_train_config_round_trips_through_json():
    """from_json(to_json(config)) gives the config back; unknown keys are named."""
    config = make_config(grad_clip=0.0, seed=5)
    assert TrainConfig.from_json(config.to_json()) == config
    with pytest.raises(ValueError, match=r"unknown TrainConfig option 'sigmaa'.*'sigma'"):
        TrainConfig.from_dict({"sigmaa": 0.1})


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_training_runs_on_cuda(tmp_path):
    """With device='cuda' the model trains there and the saved run loads back on the CPU."""
    result = train(
        make_model(), regulator(), make_config(iterations=5), run_dir=tmp_path, device="cuda"
    )
    assert result.model.W.device.type == "cuda"
    run = load_run(tmp_path)
    assert torch.equal(run.model.W, result.model.W.cpu())
