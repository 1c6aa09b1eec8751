"""NoisyMultitask-v0 epoch lengths follow YANG19.md's distributions (chi-square tests, fixed seeds)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from noise_envs import MultitaskTask
from noise_envs.multitask_trials import TASK_NAMES

DT = 20.0


def uniform_pmf(low: float, high: float, dt: float = DT) -> dict[int, float]:
    """P(floor(x / dt) = k) for x ~ U(low, high)."""
    pmf = {}
    for k in range(math.floor(low / dt), math.ceil(high / dt)):
        overlap = min(high, (k + 1) * dt) - max(low, k * dt)
        if overlap > 0:
            pmf[k] = overlap / (high - low)
    return pmf


def choice_pmf(values_ms, dt: float = DT) -> dict[int, float]:
    """P(floor(v / dt) = k) for v drawn uniformly from ``values_ms``."""
    pmf: dict[int, float] = {}
    for value in values_ms:
        k = math.floor(value / dt)
        pmf[k] = pmf.get(k, 0.0) + 1.0 / len(values_ms)
    return pmf


SHORT, DELAY = choice_pmf((200, 400, 600)), choice_pmf((200, 400, 800, 1600))
FIXED_500 = {25: 1.0}


def epochs_of(state, family: str) -> dict[str, np.ndarray]:
    """Epoch lengths (steps) of each row, read from its event steps."""
    on, off = state.stimulus_on.numpy(), state.stimulus_off.numpy()
    go, length = state.go.numpy(), state.length.numpy()
    epochs = {"fixation": on[:, 0], "response": length - go}
    if family in ("go", "dm"):
        epochs["stimulus"] = go - on[:, 0]
    if family == "delaygo":
        epochs |= {"stimulus": off[:, 0] - on[:, 0], "delay": go - off[:, 0]}
    if family in ("delaydm", "dms", "dmc"):
        epochs |= {"stimulus1": off[:, 0] - on[:, 0], "delay1": on[:, 1] - off[:, 0]}
    if family == "delaydm":
        epochs |= {"stimulus2": off[:, 1] - on[:, 1], "delay2": go - off[:, 1]}
    return epochs


CASES = [
    ("go", "fdgo", "fixation", uniform_pmf(300, 700)),
    ("go", "fdanti", "stimulus", uniform_pmf(500, 1500)),
    ("go", "fdgo", "response", FIXED_500),
    ("react", "reactgo", "fixation", uniform_pmf(500, 2500)),
    ("react", "reactanti", "response", FIXED_500),
    ("delaygo", "delaygo", "fixation", choice_pmf((300, 500, 700))),
    ("delaygo", "delayanti", "stimulus", SHORT),
    ("delaygo", "delaygo", "delay", DELAY),
    ("delaygo", "delaygo", "response", FIXED_500),
    ("dm", "dm1", "fixation", uniform_pmf(100, 400)),
    ("dm", "contextdm2", "stimulus", choice_pmf((400, 800, 1600))),
    ("dm", "multidm", "response", FIXED_500),
    ("delaydm", "delaydm1", "fixation", SHORT),
    ("delaydm", "contextdelaydm1", "stimulus1", SHORT),
    ("delaydm", "multidelaydm", "delay1", DELAY),
    ("delaydm", "delaydm2", "stimulus2", SHORT),
    ("delaydm", "contextdelaydm2", "delay2", uniform_pmf(100, 300)),
    ("delaydm", "delaydm1", "response", FIXED_500),
    ("dms", "dmsgo", "fixation", SHORT),
    ("dms", "dmsnogo", "stimulus1", SHORT),
    ("dms", "dmsgo", "delay1", DELAY),
    ("dms", "dmsnogo", "response", FIXED_500),
    ("dmc", "dmcgo", "fixation", SHORT),
    ("dmc", "dmcnogo", "delay1", DELAY),
    ("dmc", "dmcgo", "response", SHORT),
]


@pytest.mark.parametrize(("family", "name", "epoch", "pmf"), CASES)
def test_epoch_lengths_follow_yangs_distributions(family, name, epoch, pmf):
    """Every length lies in the support, and a chi-square test does not reject the pmf."""
    task = MultitaskTask(tasks=name, obs_noise=0.0)
    state, _ = task.reset(4000, generator=sum(map(ord, name + epoch)))
    lengths = epochs_of(state, family)[epoch]
    support = np.array(sorted(pmf))
    assert np.isin(lengths, support).all(), f"{set(lengths.tolist()) - set(support.tolist())}"
    if len(support) == 1:
        return
    observed = np.array([(lengths == k).sum() for k in support])
    expected = np.array([pmf[k] for k in support]) * len(lengths)
    assert stats.chisquare(observed, expected).pvalue > 1e-3


def test_a_chi_square_test_here_does_detect_a_wrong_distribution():
    """Power check: fdgo's stimulus epoch is not U(300, 1700) (a wrong range is rejected)."""
    task = MultitaskTask(tasks="fdgo", obs_noise=0.0)
    state, _ = task.reset(4000, generator=0)
    lengths = epochs_of(state, "go")["stimulus"]
    wrong = uniform_pmf(400, 1600)
    support = np.array(sorted(wrong))
    observed = np.array([(lengths == k).sum() for k in support])
    expected = np.array([wrong[k] for k in support]) * observed.sum()
    assert stats.chisquare(observed, expected).pvalue < 1e-6


def test_stimuli_in_each_family_are_on_when_yang_shows_them():
    """fdgo/reactgo and stim2 of the matching tasks stay on to the end; DM stimuli go off at the cue;
    reactgo's cue is the stimulus onset."""
    task = MultitaskTask(tasks=["fdgo", "reactgo", "dm1", "dmsgo"], obs_noise=0.0)
    state, _ = task.reset(400, generator=0)
    kinds = {name: state.task.numpy() == TASK_NAMES.index(name) for name in task.task_names}
    on, off, go = state.stimulus_on.numpy(), state.stimulus_off.numpy(), state.go.numpy()
    never = off.max()
    assert (off[kinds["fdgo"], 0] == never).all() and (off[kinds["reactgo"], 0] == never).all()
    assert (go[kinds["reactgo"]] == on[kinds["reactgo"], 0]).all()
    assert (off[kinds["dm1"]] == go[kinds["dm1"], None]).all()
    assert (on[kinds["dm1"], 0] == on[kinds["dm1"], 1]).all()
    assert (off[kinds["dmsgo"], 1] == never).all() and (
        go[kinds["dmsgo"]] == on[kinds["dmsgo"], 1]
    ).all()


@pytest.mark.parametrize("dt", [10.0, 50.0, 100.0])
def test_other_time_steps_floor_each_epoch(dt):
    """At dt = 100 ms, fdgo's fixation epoch U(300, 700) lasts 3 to 6 steps with known odds."""
    task = MultitaskTask(tasks="fdgo", obs_noise=0.0, dt=dt)
    state, _ = task.reset(4000, generator=int(dt))
    lengths = epochs_of(state, "go")["fixation"]
    pmf = uniform_pmf(300, 700, dt)
    support = np.array(sorted(pmf))
    assert np.isin(lengths, support).all()
    observed = np.array([(lengths == k).sum() for k in support])
    assert stats.chisquare(observed, np.array([pmf[k] for k in support]) * 4000).pvalue > 1e-3
    assert (epochs_of(state, "go")["response"] == math.floor(500 / dt)).all()
