"""Tests of training noise distributions: their laws, their specs, and how training uses them."""

import json
import math

import numpy as np
import pytest
import torch
from scipy import stats

from agents import CTRNN, CTRNNConfig, TrainConfig, load_run, train
from agents.noise_distribution import NoiseDistribution, as_noise_distribution
from agents.run_files import RUN_FILE
from noise_envs import make_task

N = 20000


def draws(dist, n=N, seed=0):
    return dist.sample(n, torch.Generator().manual_seed(seed)).double().numpy()


# ---------------------------------------------------------------------------------------------
# laws (statistical tests at a 1e-3 level with fixed seeds: a correct sampler passes for sure)


def test_uniform_draws_follow_their_law():
    x = draws(NoiseDistribution.uniform(0.2, 0.7))
    assert x.min() >= 0.2 and x.max() <= 0.7
    assert stats.kstest(x, stats.uniform(loc=0.2, scale=0.5).cdf).pvalue > 1e-3


def test_log_uniform_draws_follow_their_law():
    x = draws(NoiseDistribution.log_uniform(0.05, 1.0))
    assert stats.kstest(x, stats.loguniform(0.05, 1.0).cdf).pvalue > 1e-3
    # The mean is the closed form (high - low) / log(high / low).
    assert np.mean(x) == pytest.approx(0.95 / math.log(20.0), rel=0.02)


def test_discrete_draws_follow_their_weights():
    dist = NoiseDistribution.discrete((0.0, 0.5, 1.0), (1.0, 2.0, 1.0))
    x = draws(dist)
    counts = [int(np.sum(x == level)) for level in (0.0, 0.5, 1.0)]
    assert sum(counts) == N
    assert stats.chisquare(counts, [N / 4, N / 2, N / 4]).pvalue > 1e-3


def test_discrete_zero_weight_level_is_never_drawn_and_not_in_the_support():
    dist = NoiseDistribution.discrete((0.0, 2.0), (1.0, 0.0))
    assert set(draws(dist, 500)) == {0.0}
    assert dist.high == 0.0


def test_per_batch_draws_one_level_per_batch_and_rows_differ_per_row():
    batch = draws(NoiseDistribution.uniform(0, 1, per="batch"), 64)
    assert np.all(batch == batch[0])
    levels = [
        draws(NoiseDistribution.uniform(0, 1, per="batch"), 4, seed)[0] for seed in range(200)
    ]
    assert stats.kstest(levels, stats.uniform.cdf).pvalue > 1e-3
    rows = draws(NoiseDistribution.uniform(0, 1), 64)
    assert len(set(rows)) == 64


def test_draws_are_reproducible_and_never_touch_the_global_generator():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = draws(NoiseDistribution.log_uniform(0.1, 1.0), 100, seed=7)
    b = draws(NoiseDistribution.log_uniform(0.1, 1.0), 100, seed=7)
    assert np.array_equal(a, b)
    assert torch.equal(torch.random.get_rng_state(), before)


def test_fixed_draws_its_level_and_the_dtype_and_device_are_the_callers():
    out = NoiseDistribution.fixed(0.3).sample(5, torch.Generator(), dtype=torch.float64)
    assert out.dtype == torch.float64 and torch.equal(
        out, torch.full((5,), 0.3, dtype=torch.float64)
    )


@pytest.mark.parametrize(
    ("dist", "mean", "high"),
    [
        (NoiseDistribution.fixed(0.5), 0.5, 0.5),
        (NoiseDistribution.uniform(0, 1), 0.5, 1.0),
        (NoiseDistribution.log_uniform(0.1, 0.1), 0.1, 0.1),
        (NoiseDistribution.discrete((0, 1, 3), (2, 1, 1)), 1.0, 3.0),
        (NoiseDistribution.discrete((0, 1)), 0.5, 1.0),
    ],
)
def test_mean_and_high_are_the_closed_forms(dist, mean, high):
    assert dist.mean == pytest.approx(mean)
    assert dist.high == high


# ---------------------------------------------------------------------------------------------
# specs and JSON


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("0.5", NoiseDistribution.fixed(0.5)),
        ("fixed:0.5", NoiseDistribution.fixed(0.5)),
        ("uniform:0,1", NoiseDistribution.uniform(0, 1)),
        ("log_uniform:0.05,1", NoiseDistribution.log_uniform(0.05, 1)),
        ("discrete:0,0.5,1@1,2,1", NoiseDistribution.discrete((0, 0.5, 1), (1, 2, 1))),
        ("discrete:0,1", NoiseDistribution.discrete((0, 1))),
    ],
)
def test_parse_reads_every_form_and_spec_writes_it_back(spec, expected):
    dist = NoiseDistribution.parse(spec)
    assert dist == expected
    assert NoiseDistribution.parse(dist.spec) == dist
    assert NoiseDistribution.from_dict(json.loads(json.dumps(dist.to_dict()))) == dist


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: NoiseDistribution.uniform(1.0, 0.5), r"low <= high, got low 1.0 > high 0.5"),
        (lambda: NoiseDistribution.log_uniform(0.5, 0.1), r"low <= high"),
        (lambda: NoiseDistribution.log_uniform(0.0, 1.0), r"needs low > 0, got low 0.0"),
        (lambda: NoiseDistribution.uniform(-0.1, 1.0), r"levels must be in \[0, .*got -0.1"),
        (lambda: NoiseDistribution.discrete((0.0, -1.0)), r"levels must be in \[0, .*got -1.0"),
        (lambda: NoiseDistribution.fixed(math.nan), r"`levels` must be finite"),
        (lambda: NoiseDistribution.discrete((0, 1), (0, 0)), r"sum to a positive number, got \[0"),
        (lambda: NoiseDistribution.discrete((0, 1), (1, -1)), r"`weights` must be >= 0"),
        (lambda: NoiseDistribution.discrete((0, 1), (1,)), r"one entry per level \(2\), got 1"),
        (lambda: NoiseDistribution(kind="uniform", levels=(0, 1), weights=(1, 1)), r"discrete"),
        (lambda: NoiseDistribution(kind="gauss"), r"`kind` must be one of"),
        (lambda: NoiseDistribution.uniform(0, 1, per="episode"), r"`per` must be one of"),
        (lambda: NoiseDistribution(kind="uniform", levels=(1,)), r"needs `levels` = \(low, high\)"),
        (lambda: NoiseDistribution.parse("uniform:0,x"), r"must be one of 0.5, fixed:0.5"),
        (lambda: NoiseDistribution.parse("normal:0,1"), r"kind` must be one of"),
        (lambda: NoiseDistribution.parse("uniform:0,1@1,1"), r"discrete distributions only"),
        (lambda: NoiseDistribution.parse(""), r"must be one of"),
        (lambda: as_noise_distribution(3), r"`sigma_dist` must be a NoiseDistribution"),
    ],
)
def test_bad_distributions_are_refused_by_name(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# ---------------------------------------------------------------------------------------------
# TrainConfig


def test_fixed_sigma_config_writes_the_same_dict_as_before():
    assert "sigma_dist" not in TrainConfig(sigma=0.5).to_dict()
    assert TrainConfig(sigma=0.5).noise == NoiseDistribution.fixed(0.5)


def test_config_takes_a_distribution_as_object_dict_or_spec_and_round_trips():
    dist = NoiseDistribution.uniform(0, 1, per="batch")
    for given in (dist, dist.to_dict(), None):
        config = TrainConfig(sigma_dist=given if given is not None else dist)
        assert config.sigma_dist == dist and config.noise == dist
        assert TrainConfig.from_json(config.to_json()) == config
    assert TrainConfig(sigma_dist="uniform:0,1").sigma_dist == NoiseDistribution.uniform(0, 1)


def test_a_fixed_distribution_is_stored_as_sigma():
    config = TrainConfig(sigma_dist="fixed:0.3")
    assert (config.sigma, config.sigma_dist) == (0.3, None)
    assert config == TrainConfig(sigma=0.3)


def test_sigma_and_a_distribution_together_are_refused():
    with pytest.raises(ValueError, match=r"either `sigma` \(0.5\) or `sigma_dist` \(uniform:0,1\)"):
        TrainConfig(sigma=0.5, sigma_dist="uniform:0,1")


# ---------------------------------------------------------------------------------------------
# training: the level each row of each batch gets


class RecordingCTRNN(CTRNN):
    """A CTRNN that keeps the sigma of every sequence it runs."""

    def __init__(self, config, generator=None):
        super().__init__(config, generator)
        self.sigmas = []

    def forward(self, inputs, sigma=0.0, noise=None, h0=None, *, validate=True):
        self.sigmas.append(sigma.clone() if isinstance(sigma, torch.Tensor) else sigma)
        return super().forward(inputs, sigma, noise, h0, validate=validate)


def recording_model():
    config = CTRNNConfig(input_size=1, output_size=1, hidden_size=4, dt=20.0)
    return RecordingCTRNN(config, generator=torch.Generator().manual_seed(0))


def noise_generator(seed):
    """The trainer's model-noise generator, derived from the seed as its docstring says."""
    noise_seed = np.random.SeedSequence(seed).generate_state(2, dtype=np.uint64)[1]
    return torch.Generator().manual_seed(int(noise_seed))


def train_recording(dist, iterations=3, batch=16, seed=5):
    model = recording_model()
    task = make_task("NoisyRegulator-v0", steps=6, settle_steps=2)
    config = TrainConfig(sigma_dist=dist, iterations=iterations, batch_size=batch, seed=seed)
    train(model, task, config, progress=False)
    return model.sigmas


def test_per_row_levels_reach_the_model_row_by_row():
    sigmas = train_recording(NoiseDistribution.uniform(0.0, 1.0))
    assert len(sigmas) == 3 and all(s.shape == (16,) for s in sigmas)
    # The first batch's levels are the first draw of the trainer's seeded noise generator.
    u = torch.rand(16, dtype=torch.float64, generator=noise_generator(5))
    assert torch.equal(sigmas[0], u.float())
    assert len({float(s) for s in torch.cat(sigmas)}) == 48  # fresh levels every iteration


def test_per_batch_levels_are_one_per_iteration():
    sigmas = train_recording(NoiseDistribution.discrete((0.1, 0.2, 0.3, 0.4), per="batch"))
    for s in sigmas:
        assert torch.all(s == s[0])
        assert min(abs(float(s[0]) - x) for x in (0.1, 0.2, 0.3, 0.4)) < 1e-6


def test_fixed_sigma_still_reaches_the_model_as_a_float():
    model = recording_model()
    task = make_task("NoisyRegulator-v0", steps=6, settle_steps=2)
    train(model, task, TrainConfig(sigma=0.25, iterations=2, batch_size=4), progress=False)
    assert model.sigmas == [0.25, 0.25]


def test_distribution_run_is_stored_resumes_bit_identically_and_loads(tmp_path):
    task = make_task("NoisyRegulator-v0", steps=6, settle_steps=2)
    config = TrainConfig(
        sigma_dist="log_uniform:0.05,1", iterations=6, batch_size=8, checkpoint_every=3
    )

    def model():
        config = CTRNNConfig(input_size=1, output_size=1, hidden_size=4, dt=20.0)
        return CTRNN(config, generator=torch.Generator().manual_seed(0))

    straight = train(model(), task, config, run_dir=tmp_path / "a", progress=False)
    train(
        model(),
        task,
        config.replace(iterations=3),
        run_dir=tmp_path / "b",
        progress=False,
    )
    resumed = train(model(), task, config, run_dir=tmp_path / "b", progress=False)
    for name, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
    record = json.loads((tmp_path / "a" / RUN_FILE).read_text())
    assert record["train"]["sigma_dist"] == {
        "kind": "log_uniform",
        "levels": [0.05, 1.0],
        "weights": None,
        "per": "row",
    }
    assert load_run(tmp_path / "a").train_config.sigma_dist == config.sigma_dist
