"""CTRNNEnsemble: K CTRNNs as one module, each member the CTRNN it stands for."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from agents.ctrnn import CTRNN, CTRNNConfig
from agents.ensemble import BlockRandomSource, CTRNNEnsemble, member_sigma
from agents.policy import Policy, SequencePolicy
from agents.rollout import rollout
from noise_envs import make_task
from noise_envs.random import RandomSource

CONFIG = CTRNNConfig(input_size=2, output_size=3, hidden_size=5)
PLACEMENTS = ["in", "out", "out", "in"]
SEEDS = [0, 1, 2, 3]
TOLERANCE = {"rtol": 1e-5, "atol": 1e-6}  # float rounding of batched vs. single matrix products


def _ensemble(**changes) -> CTRNNEnsemble:
    config = dataclasses.replace(CONFIG, **changes)
    return CTRNNEnsemble.from_seeds(config, SEEDS, PLACEMENTS)


def _lone(k: int, **changes) -> CTRNN:
    config = dataclasses.replace(CONFIG, placement=PLACEMENTS[k], **changes)
    return CTRNN(config, torch.Generator().manual_seed(SEEDS[k]))


def test_members_start_as_lone_ctrnns_seeded_alike():
    ensemble = _ensemble()
    for k in range(len(SEEDS)):
        lone, member = _lone(k), ensemble.member(k)
        assert member.config == lone.config
        for name, value in lone.state_dict().items():
            assert torch.equal(member.state_dict()[name], value), (k, name)


def test_protocols_and_shapes():
    ensemble = _ensemble()
    assert isinstance(ensemble, Policy)
    assert isinstance(ensemble, SequencePolicy)
    assert ensemble.W.shape == (4, 5, 5)
    assert ensemble.U.shape == (4, 5, 2)
    assert ensemble.W_out.shape == (4, 3, 5)
    assert ensemble.initial_state(8).shape == (8, 5)
    assert "K=4" in repr(ensemble) and "2 noise in" in repr(ensemble)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("activation", ["relu", "tanh", "softplus", "sigmoid"])
def test_forward_equals_each_member_alone(activation, fused):
    ensemble = _ensemble(activation=activation)
    ensemble.fused = fused
    steps, per_member = 7, 3
    generator = torch.Generator().manual_seed(5)
    inputs = torch.randn(steps, 4 * per_member, 2, generator=generator)
    xi = torch.randn(steps, 4 * per_member, 5, generator=generator)
    sigma = member_sigma([0.0, 0.3, 1.0, 2.0], per_member)
    outputs, states = ensemble(inputs, sigma, xi)
    for k in range(4):
        rows = slice(k * per_member, (k + 1) * per_member)
        lone = _lone(k, activation=activation)
        y, h = lone(inputs[:, rows], sigma[rows], xi[:, rows])
        torch.testing.assert_close(outputs[:, rows], y, **TOLERANCE)
        torch.testing.assert_close(states[:, rows], h, **TOLERANCE)


def test_step_by_step_equals_forward():
    ensemble = _ensemble()
    steps, rows = 6, 8
    generator = torch.Generator().manual_seed(2)
    inputs = torch.randn(steps, rows, 2, generator=generator)
    xi = torch.randn(steps, rows, 5, generator=generator)
    outputs, states = ensemble(inputs, 0.5, xi)
    state = ensemble.initial_state(rows)
    for t in range(steps):
        action, state = ensemble.step(inputs[t], state, 0.5, xi[t])
        torch.testing.assert_close(action, outputs[t], **TOLERANCE)
        torch.testing.assert_close(state, states[t], **TOLERANCE)


def test_one_step_by_hand():
    """K = 2 one-unit members, one noise in and one noise out, against the update written out."""
    config = CTRNNConfig(input_size=1, output_size=1, hidden_size=1, dt=20.0, tau=100.0)
    ensemble = CTRNNEnsemble.from_seeds(config, [0, 1], ["in", "out"])
    with torch.no_grad():
        ensemble.W.copy_(torch.tensor([[[0.5]], [[-1.0]]]))
        ensemble.U.copy_(torch.tensor([[[2.0]], [[1.0]]]))
        ensemble.b.copy_(torch.tensor([[0.1], [0.2]]))
        ensemble.W_out.copy_(torch.tensor([[[3.0]], [[-2.0]]]))
        ensemble.b_out.copy_(torch.tensor([[1.0], [0.0]]))
    h, u, xi, sigma, gamma = [1.0, 2.0], [0.5, -1.0], [-0.4, 0.3], 2.0, 0.2
    # member 0: in,  relu(0.5*1 + 2*0.5 + 0.1 + 2*(-0.4)) = relu(0.8) = 0.8
    # member 1: out, relu(-1*2 + 1*(-1) + 0.2) + 2*0.3 = 0 + 0.6 = 0.6
    expected_h = [0.8 * 1.0 * gamma + (1 - gamma) * 1.0, 0.6 * gamma + (1 - gamma) * 2.0]
    expected_y = [3.0 * expected_h[0] + 1.0, -2.0 * expected_h[1]]
    y, new_h = ensemble.step(
        torch.tensor(u)[:, None], torch.tensor(h)[:, None], sigma, torch.tensor(xi)[:, None]
    )
    torch.testing.assert_close(new_h.flatten(), torch.tensor(expected_h))
    torch.testing.assert_close(y.flatten(), torch.tensor(expected_y))


@pytest.mark.parametrize("fused", [True, False])
def test_per_member_sources_give_each_member_its_lone_noise(fused):
    ensemble = _ensemble()
    ensemble.fused = fused
    steps, per_member = 5, 2
    inputs = torch.randn(steps, 4 * per_member, 2, generator=torch.Generator().manual_seed(0))
    outputs = ensemble.unroll(inputs, 0.7, [RandomSource.from_seed(10 + k) for k in range(4)])
    for k in range(4):
        rows = slice(k * per_member, (k + 1) * per_member)
        alone = _lone(k).unroll(inputs[:, rows], 0.7, RandomSource.from_seed(10 + k))
        torch.testing.assert_close(outputs[:, rows], alone, **TOLERANCE)


def test_closed_loop_rollout_equals_members_with_common_random_numbers():
    task = make_task("NoisyRegulator-v0", steps=12, settle_steps=3)
    config = CTRNNConfig(input_size=task.obs_size, output_size=task.action_size, hidden_size=6)
    ensemble = CTRNNEnsemble.from_seeds(config, [3, 4], ["in", "out"])
    per_member = 5
    together = rollout(
        ensemble,
        task,
        2 * per_member,
        sigma=0.4,
        env_rng=RandomSource.from_seed(1, repeats=2),
        noise=RandomSource.from_seed(2, repeats=2),
    )
    for k in range(2):
        alone = rollout(
            ensemble.member(k),
            task,
            per_member,
            sigma=0.4,
            env_rng=RandomSource.from_seed(1),
            noise=RandomSource.from_seed(2),
        )
        for name, values in alone.metrics.items():
            torch.testing.assert_close(
                together.metrics[name][k * per_member : (k + 1) * per_member], values, **TOLERANCE
            )


def test_member_round_trip_and_from_members():
    ensemble = _ensemble()
    replacement = CTRNN(
        dataclasses.replace(CONFIG, placement="in"), torch.Generator().manual_seed(9)
    )
    ensemble.set_member(1, replacement)
    assert ensemble.placements == ("in", "in", "out", "in")
    for name, value in replacement.state_dict().items():
        assert torch.equal(ensemble.member(1).state_dict()[name], value)
    assert torch.equal(ensemble.member(2).W, _lone(2).W)  # the others are untouched
    rebuilt = CTRNNEnsemble.from_members([ensemble.member(k) for k in range(4)])
    for name, value in ensemble.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[name], value)
    assert rebuilt.placements == ensemble.placements


def test_block_random_source_draws_each_block_from_its_own_source():
    blocks = BlockRandomSource([RandomSource.from_seed(1), RandomSource.from_seed(2)])
    x = blocks.uniform(6, 2)
    steps = blocks.normal_steps(3, 6, 2)
    for k, seed in enumerate((1, 2)):
        alone = RandomSource.from_seed(seed)
        assert torch.equal(x[3 * k : 3 * k + 3], alone.uniform(3, 2))
        assert torch.equal(steps[:, 3 * k : 3 * k + 3], alone.normal_steps(3, 3, 2))


# --- bad input ------------------------------------------------------------------------------


def test_members_of_different_architectures_are_refused():
    other = dataclasses.replace(CONFIG, hidden_size=6)
    with pytest.raises(ValueError, match=r"one architecture.*member 1 has hidden_size=6"):
        CTRNNEnsemble([CONFIG, other])
    with pytest.raises(ValueError, match="one architecture"):
        _ensemble().set_member(0, CTRNN(dataclasses.replace(CONFIG, activation="tanh")))


def test_no_members_is_refused():
    with pytest.raises(ValueError, match=r"at least one CTRNNConfig \(K >= 1\)"):
        CTRNNEnsemble([])
    with pytest.raises(ValueError, match=r"at least one CTRNNConfig \(K >= 1\)"):
        CTRNNEnsemble.from_seeds(CONFIG, [])


def test_per_member_lists_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="2 placements and 3 seeds"):
        CTRNNEnsemble.from_seeds(CONFIG, [0, 1, 2], ["in", "out"])
    with pytest.raises(ValueError, match=r"one entry per member \(2\), got 1"):
        CTRNNEnsemble([CONFIG, CONFIG], [torch.Generator()])
    with pytest.raises(ValueError, match=r"one source per member \(4\), got a sequence of 2"):
        _ensemble().unroll(torch.zeros(3, 4, 2), 0.5, [1, 2])


def test_unknown_placement_suggests_the_closest():
    with pytest.raises(ValueError, match=r"`placements` must be one of.*got 'inn'.*'in'"):
        CTRNNEnsemble.from_seeds(CONFIG, [0, 1], ["inn", "out"])


def test_rows_not_grouped_by_member_are_refused():
    ensemble = _ensemble()
    with pytest.raises(ValueError, match=r"`batch_size` has 6 rows.*multiple of 4"):
        ensemble.initial_state(6)
    with pytest.raises(ValueError, match=r"`inputs` has 5 rows"):
        ensemble(torch.zeros(3, 5, 2))
    with pytest.raises(ValueError, match=r"multiple of the number of blocks \(2\)"):
        BlockRandomSource([1, 2]).normal(3)


def test_bad_member_index_and_kinds_are_refused():
    ensemble = _ensemble()
    with pytest.raises(ValueError, match=r"`index` must be an integer in \[0, 4\), got 4"):
        ensemble.member(4)
    with pytest.raises(ValueError, match="`model` must be a CTRNN"):
        ensemble.set_member(0, torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match=r"`configs\[1\]` must be a CTRNNConfig"):
        CTRNNEnsemble([CONFIG, {"hidden_size": 5}])
    with pytest.raises(ValueError, match="whole member blocks"):
        BlockRandomSource([1, 2]).subset([0])


def test_sigmoid_readout_and_per_member_initialisation():
    configs = [
        dataclasses.replace(CONFIG, readout="sigmoid", recurrent_init="identity"),
        dataclasses.replace(
            CONFIG, readout="sigmoid", recurrent_init="orthogonal", placement="out"
        ),
        dataclasses.replace(CONFIG, readout="sigmoid", recurrent_gain=1.5),
    ]
    generators = [torch.Generator().manual_seed(s) for s in (5, 6, 7)]
    ensemble = CTRNNEnsemble(configs, generators)
    inputs = torch.randn(4, 6, 2, generator=torch.Generator().manual_seed(1))
    xi = torch.randn(4, 6, 5, generator=torch.Generator().manual_seed(2))
    outputs = ensemble.unroll(inputs, 0.3, xi)
    for k, (config, seed) in enumerate(zip(configs, (5, 6, 7), strict=True)):
        lone = CTRNN(config, torch.Generator().manual_seed(seed))
        assert torch.equal(ensemble.member(k).W, lone.W)
        rows = slice(2 * k, 2 * k + 2)
        expected = lone.unroll(inputs[:, rows], 0.3, xi[:, rows])
        torch.testing.assert_close(outputs[:, rows], expected, **TOLERANCE)
    assert bool(((outputs > 0) & (outputs < 1)).all())


def test_non_finite_or_mistyped_inputs_are_refused():
    ensemble = _ensemble()
    bad = torch.zeros(3, 4, 2)
    bad[1, 2, 0] = float("nan")
    with pytest.raises(ValueError, match="`inputs`"):
        ensemble(bad)
    with pytest.raises(ValueError, match="`inputs` must have the model's dtype"):
        ensemble(torch.zeros(3, 4, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"T >= 1"):
        ensemble(torch.zeros(0, 4, 2))
    with pytest.raises(ValueError, match="`obs` must have the model's dtype"):
        ensemble.step(torch.zeros(4, 2, dtype=torch.int64), ensemble.initial_state(4))
