"""MAML-PPO and ProMP beside MAML-TRPO: each objective against its formula written out here, ProMP's adaptive
KL coefficient, the config's checks, and whole runs through the launcher (resume, backends, evaluation)."""

import io
import math
import shutil

import pytest
import torch
from conftest import make_episode_batch
from run_helpers import assert_same_policy

from metarl.adaptation import InnerStep
from metarl.algos.maml_ppo import ADAM_EPS as PPO_ADAM_EPS
from metarl.algos.maml_ppo import MAMLPPO
from metarl.algos.promp import ProMP, adapted_kl_coefficients
from metarl.config import PPOSettings, ProMPSettings, TrainConfig, from_dict
from metarl.meta_batch import MetaBatchTensors
from metarl.policies import parameters_of

INNER_LR, GAMMA, GAE_LAMBDA = 0.4, 0.95, 0.9
NEW_ALGOS = ["maml_ppo", "promp"]


# The objectives written out: a tanh MLP's mean, a diagonal Gaussian's log-density and KL, one task at a time.


def mean_action(params, observations):
    hidden = torch.tanh(observations @ params["mean.0.weight"].T + params["mean.0.bias"])
    return hidden @ params["mean.2.weight"].T + params["mean.2.bias"]


def log_density(params, observations, actions):
    """log N(a; μ(s), diag σ²), summed over action dimensions: [T, B]."""
    log_std = params["log_std"]
    z = (actions - mean_action(params, observations)) / log_std.exp()
    return (-0.5 * z**2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


def gaussian_kl(old_params, new_params, observations):
    """KL(N(μ₀, σ₀²) ‖ N(μ₁, σ₁²)) per state, summed over action dimensions: [T, B]."""
    mean_0, mean_1 = mean_action(old_params, observations), mean_action(new_params, observations)
    log_std_0, log_std_1 = old_params["log_std"], new_params["log_std"]
    terms = log_std_1 - log_std_0 + (torch.exp(2 * log_std_0) + (mean_0 - mean_1) ** 2) / (2 * torch.exp(2 * log_std_1))
    return (terms - 0.5).sum(-1)


def average(values_TB, mask_TB):
    """The mean over a task's valid steps."""
    return (values_TB * mask_TB).sum() / mask_TB.sum()


def task_batch(batch, i):
    """Task i's episodes of a stacked batch, as (observations, actions, mask)."""
    return batch.observations_TBO[i], batch.actions_TBA[i], batch.mask_TB[i]


def clipped(ratio, advantages, clip_eps):
    return torch.minimum(ratio * advantages, torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps) * advantages)


def inner_steps(params, data, i, sampled_by=None, first_order=False):
    """Task i's [θ, θ'₁, …]: plain policy-gradient steps, or (``sampled_by``: the parameters that sampled each
    support batch) ProMP's importance-sampled LVC steps."""
    steps = [params]
    for k, (batch, advantages) in enumerate(zip(data.support, data.support_advantages, strict=True)):
        observations, actions, mask = task_batch(batch, i)
        log_p = log_density(steps[-1], observations, actions)
        if sampled_by is None:
            loss = -average(log_p * advantages[i], mask)
        else:
            ratio = torch.exp(log_p - log_density(sampled_by[k], observations, actions).detach())
            loss = -average(ratio * advantages[i], mask)
        grads = torch.autograd.grad(loss, list(steps[-1].values()), create_graph=not first_order)
        step = zip(steps[-1].items(), grads, strict=True)
        steps.append({name: value - INNER_LR * grad for (name, value), grad in step})
    return steps


def detached_steps(params, data, i, sampled_by=None):
    return [{n: v.detach() for n, v in step.items()} for step in inner_steps(params, data, i, sampled_by, True)]


def query_ratio(adapted, old_adapted, data, i):
    observations, actions, _ = task_batch(data.query, i)
    return torch.exp(log_density(adapted, observations, actions) - log_density(old_adapted, observations, actions))


def leaves(params):
    return {name: value.detach().clone().requires_grad_() for name, value in params.items()}


def moved(params, scale, seed=5):
    """θ away from θ_start by a random step: far enough that the clip holds some of the query steps."""
    generator = torch.Generator().manual_seed(seed)
    return {n: v + scale * torch.randn(v.shape, generator=generator, dtype=v.dtype) for n, v in params.items()}


def set_policy(policy, params):
    with torch.no_grad():
        for name, value in parameters_of(policy).items():
            value.copy_(params[name])


def meta_batch(inner, num_steps=1):
    """Support (``num_steps`` batches) and query episodes of 2 tasks, float64, with uneven episode lengths."""
    lengths = [[6, 4, 5], [5, 6, 2], [3, 6, 4]]
    support = [[make_episode_batch(10 * k + i, lengths[k]) for k in range(num_steps)] for i in range(2)]
    query = [make_episode_batch(40 + i, [6, 3, 6]) for i in range(2)]
    return MetaBatchTensors.from_episodes(support, query, inner, "cpu")


# MAML-PPO


def maml_ppo_loss_by_hand(params, start, data, clip_eps):
    losses = []
    for i in range(data.num_tasks):
        adapted = inner_steps(params, data, i)[-1]
        old_adapted = detached_steps(start, data, i)[-1]
        ratio = query_ratio(adapted, old_adapted, data, i)
        losses.append(-average(clipped(ratio, data.query_advantages[i], clip_eps), data.query.mask_TB[i]))
    return torch.stack(losses).mean()


def test_maml_ppo_loss_and_gradient_are_the_clipped_surrogate_through_the_inner_step(tiny_policy):
    """At θ away from the iteration's start (where the clip holds some steps), the learner's loss and its
    meta-gradient are the clipped surrogate of the adapted policies, second order through the inner step."""
    clip_eps = 0.2
    learner = MAMLPPO(tiny_policy, InnerStep((INNER_LR,), GAMMA, GAE_LAMBDA), PPOSettings(clip_eps=clip_eps))
    data = meta_batch(learner.inner)
    start = {n: v.detach().clone() for n, v in parameters_of(tiny_policy).items()}
    old = learner.old_policy(parameters_of(tiny_policy), data)
    theta = moved(start, 0.15)
    set_policy(tiny_policy, theta)

    params = parameters_of(tiny_policy)
    loss = learner.loss(params, data, old)
    gradient = torch.autograd.grad(loss, list(params.values()))

    by_hand_params = leaves(theta)
    expected = maml_ppo_loss_by_hand(by_hand_params, leaves(start), data, clip_eps)
    expected_gradient = torch.autograd.grad(expected, list(by_hand_params.values()))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-10)
    for name, actual, wanted in zip(params, gradient, expected_gradient, strict=True):
        torch.testing.assert_close(actual, wanted, rtol=1e-9, atol=1e-12, msg=name)
    # the clip is in play: some steps are held, and the unclipped surrogate has another value
    held = 0.0
    for i in range(data.num_tasks):
        adapted, old_adapted = inner_steps(leaves(theta), data, i)[-1], detached_steps(leaves(start), data, i)[-1]
        ratio = query_ratio(adapted, old_adapted, data, i)
        held += float((((ratio - 1).abs() > clip_eps).double() * data.query.mask_TB[i]).sum())
    assert held > 0
    assert maml_ppo_loss_by_hand(leaves(theta), leaves(start), data, 1e6).item() != pytest.approx(expected.item())


def test_maml_ppo_first_step_is_adams_first_step_on_the_meta_gradient(tiny_policy):
    """One Adam step from the start: θ₁ = θ₀ − lr · g / (|g| + ε), g the surrogate's meta-gradient at θ₀ (the ratio
    is 1 there, so nothing is clipped); the statistics describe the update."""
    settings = PPOSettings(lr=0.01, adam_steps=1, clip_eps=0.2)
    learner = MAMLPPO(tiny_policy, InnerStep((INNER_LR,), GAMMA, GAE_LAMBDA), settings)
    data = meta_batch(learner.inner)
    start = {n: v.detach().clone() for n, v in parameters_of(tiny_policy).items()}
    by_hand_params = leaves(start)
    loss = maml_ppo_loss_by_hand(by_hand_params, leaves(start), data, settings.clip_eps)
    gradient = dict(zip(start, torch.autograd.grad(loss, list(by_hand_params.values())), strict=True))

    stats = learner.step(data)

    for name, value in parameters_of(tiny_policy).items():
        expected = start[name] - settings.lr * gradient[name] / (gradient[name].abs() + PPO_ADAM_EPS)
        torch.testing.assert_close(value.detach(), expected, rtol=1e-9, atol=1e-12, msg=name)
        assert value.grad is None  # no gradient is left on the policy
    assert stats["surrogate_before"] == pytest.approx(loss.item(), rel=1e-10)
    after = maml_ppo_loss_by_hand(leaves(parameters_of(tiny_policy)), leaves(start), data, settings.clip_eps)
    assert stats["surrogate_after"] == pytest.approx(after.item(), rel=1e-9)
    assert stats["surrogate_after"] < stats["surrogate_before"]
    assert 0 < stats["kl"] < 0.01 and 0 <= stats["clip_fraction"] <= 1


# ProMP


def promp_loss_by_hand(params, start, data, clip_eps, penalty):
    """ProMP's objective with two inner steps: clipped surrogate + mean over steps of η KL_k on support batch k."""
    surrogates, kls = [], [[], []]
    for i in range(data.num_tasks):
        sampled_by = detached_steps(start, data, i)
        steps = inner_steps(params, data, i, sampled_by)
        ratio = query_ratio(steps[-1], sampled_by[-1], data, i)
        surrogates.append(-average(clipped(ratio, data.query_advantages[i], clip_eps), data.query.mask_TB[i]))
        for k, batch in enumerate(data.support):
            observations, _, mask = task_batch(batch, i)
            kls[k].append(average(gaussian_kl(sampled_by[k], steps[k], observations), mask))
    inner_kls = torch.stack([torch.stack(step_kls).mean() for step_kls in kls])
    return torch.stack(surrogates).mean() + (penalty * inner_kls).mean(), inner_kls


def promp(policy, num_steps=2, **settings):
    inner = InnerStep((INNER_LR,) * num_steps, GAMMA, GAE_LAMBDA, objective="lvc")
    return ProMP(policy, inner, ProMPSettings(**settings))


def test_promp_loss_and_gradient_by_hand(tiny_policy):
    """Two inner steps, θ away from the start: the clipped surrogate through ProMP's importance-sampled LVC steps
    plus the KL penalty between each step's pre-update policies then and now, value and meta-gradient."""
    penalty, clip_eps = 0.7, 0.2  # a large η, so that the penalty's share of the gradient is checked too
    learner = promp(tiny_policy, clip_eps=clip_eps, inner_kl_penalty=penalty)
    data = meta_batch(learner.inner, num_steps=2)
    start = {n: v.detach().clone() for n, v in parameters_of(tiny_policy).items()}
    sampled_by = learner.sampling_policies(parameters_of(tiny_policy), data)
    theta = moved(start, 0.15)
    set_policy(tiny_policy, theta)

    params = parameters_of(tiny_policy)
    loss = learner.loss(params, data, sampled_by)
    gradient = torch.autograd.grad(loss, list(params.values()))

    by_hand_params = leaves(theta)
    expected, inner_kls = promp_loss_by_hand(by_hand_params, leaves(start), data, clip_eps, penalty)
    expected_gradient = torch.autograd.grad(expected, list(by_hand_params.values()))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-10)
    for name, actual, wanted in zip(params, gradient, expected_gradient, strict=True):
        torch.testing.assert_close(actual, wanted, rtol=1e-9, atol=1e-12, msg=name)
    assert (inner_kls > 1e-3).all()  # both penalties are in play
    # the importance weights matter once θ has moved: the plain LVC step gives another θ' (and loss)
    plain = maml_ppo_loss_by_hand(leaves(theta), leaves(start), data, clip_eps)
    assert plain.item() != pytest.approx((expected - (penalty * inner_kls).mean()).item(), rel=1e-6)


def test_promp_step_and_its_statistics(tiny_policy):
    """One Adam step from the start is Adam's first step on the surrogate's gradient (the KL penalty is zero, with a
    zero gradient, there); the statistics are those of the update, measured by hand."""
    learner = promp(tiny_policy, lr=0.01, adam_steps=1, inner_kl_penalty=0.3)
    data = meta_batch(learner.inner, num_steps=2)
    start = {n: v.detach().clone() for n, v in parameters_of(tiny_policy).items()}
    by_hand_params = leaves(start)
    loss, _ = promp_loss_by_hand(by_hand_params, leaves(start), data, 0.3, 0.3)
    gradient = dict(zip(start, torch.autograd.grad(loss, list(by_hand_params.values())), strict=True))

    stats = learner.step(data)

    for name, value in parameters_of(tiny_policy).items():
        expected = start[name] - 0.01 * gradient[name] / (gradient[name].abs() + 1e-8)
        torch.testing.assert_close(value.detach(), expected, rtol=1e-9, atol=1e-12, msg=name)
    after, inner_kls = promp_loss_by_hand(leaves(parameters_of(tiny_policy)), leaves(start), data, 0.3, 0.3)
    assert stats["surrogate_before"] == pytest.approx(loss.item(), rel=1e-10)
    assert stats["surrogate_after"] == pytest.approx((after - (0.3 * inner_kls).mean()).item(), rel=1e-9)
    assert stats["inner_kl"] == pytest.approx(inner_kls.mean().item(), rel=1e-9)
    assert stats["inner_kl_coeff"] == 0.3 and learner.inner_kl_coefficients == [0.3, 0.3]  # fixed: not adaptive
    assert 0 < stats["kl"] < 0.01


def test_promp_needs_the_lvc_inner_step(tiny_policy):
    with pytest.raises(ValueError, match="'lvc'"):
        ProMP(tiny_policy, InnerStep((INNER_LR,)), ProMPSettings())


def test_adaptive_kl_coefficient_rule():
    """ProMP's _adapt_kl_coeff, per inner step: halve below target / 1.5, double above 1.5 × target, else keep."""
    target = 0.01
    kls = [target / 1.5 * 0.999, target / 1.5, target, target * 1.5, target * 1.5 * 1.001, 0.0]
    assert adapted_kl_coefficients([1.0] * 6, kls, target) == [0.5, 1.0, 1.0, 1.0, 2.0, 0.5]
    assert adapted_kl_coefficients([0.2, 0.8], [1.0, 1e-9], target) == [0.4, 0.4]
    with pytest.raises(ValueError):
        adapted_kl_coefficients([1.0], [0.1, 0.2], target)


@pytest.mark.parametrize(("target", "factor"), [(1e3, 0.5), (1e-12, 2.0)])
def test_adaptive_coefficients_follow_the_kl_after_the_update(tiny_policy, target, factor):
    """With adaptive_inner_kl_penalty each step's η is halved (KL far below target) or doubled (far above) after
    the Adam steps, and kept in the learner's state; this iteration's loss used the old one."""
    learner = promp(tiny_policy, inner_kl_penalty=0.1, adaptive_inner_kl_penalty=True, inner_kl_target=target)
    stats = learner.step(meta_batch(learner.inner, num_steps=2))
    assert stats["inner_kl_coeff"] == 0.1
    assert learner.inner_kl_coefficients == [0.1 * factor, 0.1 * factor]
    assert learner.state_dict()["inner_kl_coefficients"] == [0.1 * factor, 0.1 * factor]


def test_learner_state_round_trip_and_misfit(tiny_policy):
    """state_dict() loads into a fresh learner, which then takes the same step; a state of another algorithm or
    size is a ValueError that says what is wrong."""
    data = meta_batch(InnerStep((INNER_LR,) * 2, GAMMA, GAE_LAMBDA), num_steps=2)
    first = promp(tiny_policy, adaptive_inner_kl_penalty=True, inner_kl_target=1e-12)
    first.step(data)
    twin_policy = type(tiny_policy)(2, 2, (5,), "tanh", 0.8).double()
    twin_policy.load_state_dict(tiny_policy.state_dict())
    twin = promp(twin_policy, adaptive_inner_kl_penalty=True, inner_kl_target=1e-12)
    saved = io.BytesIO()
    torch.save(first.state_dict(), saved)  # as a checkpoint holds it
    twin.load_state_dict(torch.load(io.BytesIO(saved.getvalue()), weights_only=True))
    assert first.step(data) == twin.step(data)
    assert_same_policy(tiny_policy.state_dict(), twin_policy.state_dict())

    with pytest.raises(ValueError, match="inner_kl_coefficients"):
        twin.load_state_dict({"adam": first.state_dict()["adam"]})
    with pytest.raises(ValueError, match="adam"):
        MAMLPPO(twin_policy, InnerStep((INNER_LR,))).load_state_dict({})
    with pytest.raises(ValueError, match="does not fit"):
        other = MAMLPPO(type(tiny_policy)(2, 2, (7,)).double(), InnerStep((INNER_LR,)))
        other.load_state_dict(first.state_dict())


# Config


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["algo=reptile"], "algo must be one of 'maml_trpo', 'maml_ppo', 'promp', got 'reptile'"),
        (["algo=promp"], "inner_objective must be 'lvc' with algo: promp"),
        (["ppo.clip_eps=1.5"], "ppo.clip_eps must be in (0, 1)"),
        (["promp.adam_steps=0"], "promp.adam_steps must be positive"),
        (["promp.inner_kl_penalty=-1"], "promp.inner_kl_penalty must be non-negative"),
        (["promp.lr=.inf"], "promp.lr must be a finite number"),
    ],
)
def test_bad_algorithm_settings_are_one_line(launcher_here, assert_clean_error, overrides, message):
    args = [arg for override in overrides for arg in ("--set", override)]
    line = assert_clean_error(launcher_here("train.py", *args, "--print-config"), message)
    assert "--set" in line  # and says how to fix it


def test_old_configs_default_to_maml_trpo():
    """A saved config from before the key (no algo:, ppo: or promp:) is a MAML-TRPO run's."""
    config = from_dict(TrainConfig, {"inner_lr": 0.5}).validate()
    assert config.algo == "maml_trpo"
    assert config.ppo == PPOSettings() and config.promp == ProMPSettings()


# Whole runs through the launcher


def algo_args(algo, tiny_run_args, **changes):
    """The tiny run's --set arguments for ``algo`` (ProMP's with an adaptive coefficient that changes every
    iteration, so that a resume has to carry it)."""
    settings = {"algo": algo, **changes}
    if algo == "promp":
        settings.update({"inner_objective": "lvc", "promp.adaptive_inner_kl_penalty": "true"})
        settings.update({"promp.inner_kl_target": "1.0e-9"})
    return tiny_run_args(**settings)


@pytest.fixture(scope="module", params=NEW_ALGOS)
def four_iterations(request, tmp_path_factory, train, tiny_run_args):
    """(algo, run directory) of an uninterrupted tiny run of 4 iterations."""
    run_dir = tmp_path_factory.mktemp(request.param) / "run"
    result = train(*algo_args(request.param, tiny_run_args, num_iterations=4), "--output-dir", run_dir)
    assert result.returncode == 0, result.stderr
    return request.param, run_dir


def learner_tensors(state):
    """Every tensor and number of a learner state, flattened by path, to compare two states exactly."""
    if isinstance(state, dict):
        return {f"{key}/{path}": value for key, item in state.items() for path, value in learner_tensors(item).items()}
    if isinstance(state, (list, tuple)):
        return {f"{i}/{path}": value for i, item in enumerate(state) for path, value in learner_tensors(item).items()}
    return {"": state}


def assert_same_learner(first, second):
    first, second = learner_tensors(first), learner_tensors(second)
    assert first.keys() == second.keys()
    for path, value in first.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, second[path]), path
        else:
            assert value == second[path], path


def test_resume_mid_run_is_bit_identical(four_iterations, train, tiny_run_args, tmp_path, run_scalars):
    """2 iterations, then --resume to 4: the same policy, optimiser state and logged statistics as 4 in one go.
    The checkpoint carries Adam's moments (and ProMP's coefficients), which a fresh optimiser would not have."""
    algo, uninterrupted = four_iterations
    resumed = tmp_path / "resumed"
    assert train(*algo_args(algo, tiny_run_args, num_iterations=2), "--output-dir", resumed).returncode == 0
    halfway = torch.load(resumed / "checkpoints" / "latest.pt", weights_only=True)["learner"]
    assert all(float(entry["step"]) == 2 * 5 for entry in halfway["adam"]["state"].values())
    if algo == "promp":
        assert halfway["inner_kl_coefficients"] == [5e-4 * 4]  # doubled twice: the KL is far above the target

    result = train("--resume", resumed, "--set", "num_iterations=4")
    assert result.returncode == 0, result.stderr

    state = torch.load(resumed / "checkpoints" / "latest.pt", weights_only=True)
    expected = torch.load(uninterrupted / "checkpoints" / "latest.pt", weights_only=True)
    assert state["iteration"] == 4 and state["env_steps"] == expected["env_steps"]
    assert_same_policy(expected["policy"], state["policy"])
    assert_same_learner(expected["learner"], state["learner"])
    logged, reference = run_scalars(resumed), run_scalars(uninterrupted)
    meta_tags = [tag for tag in reference if tag.startswith(("meta/", "returns/"))]
    assert "meta/clip_fraction" in meta_tags and ("meta/inner_kl_coeff" in meta_tags) == (algo == "promp")
    for tag in meta_tags:
        assert logged[tag] == reference[tag], tag


def test_algorithm_cannot_change_on_resume(four_iterations, train, assert_clean_error, tmp_path):
    algo, run_dir = four_iterations
    for override in ["algo=maml_trpo", f"{'ppo' if algo == 'maml_ppo' else 'promp'}.lr=0.01"]:
        result = train("--resume", run_dir, "--set", override)
        assert_clean_error(result, f"cannot change {override.split('.')[0].split('=')[0]} when resuming")


def test_a_run_from_before_the_algo_key_resumes(tiny_run_copy, train):
    """A MAML-TRPO run whose config.yaml and checkpoint predate algo: (no algo, ppo, promp, learner) resumes, and
    refuses a change of algorithm."""
    config_file = tiny_run_copy / "config.yaml"
    lines = config_file.read_text().splitlines()
    kept, skipping = [], False
    for line in lines:
        if line.startswith(("algo:", "ppo:", "promp:")):
            skipping = not line.startswith("algo:")
            continue
        if skipping and line.startswith(" "):
            continue
        skipping = False
        kept.append(line)
    config_file.write_text("\n".join(kept) + "\n")
    assert "algo" not in config_file.read_text() and "promp" not in config_file.read_text()
    checkpoint = tiny_run_copy / "checkpoints" / "latest.pt"
    state = torch.load(checkpoint, weights_only=True)
    del state["learner"]
    torch.save(state, checkpoint)

    assert "cannot change algo" in train("--resume", tiny_run_copy, "--set", "algo=maml_ppo").stderr
    result = train("--resume", tiny_run_copy, "--set", "num_iterations=4")
    assert result.returncode == 0, result.stderr
    assert torch.load(checkpoint, weights_only=True)["iteration"] == 4


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["process", "ray"])
def test_every_backend_gives_the_same_run(four_iterations, backend, train, tiny_run_args, tmp_path, run_scalars):
    """Sampling with worker processes or Ray actors changes no number of either algorithm's run."""
    if backend == "ray":
        pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]'")
    algo, uninterrupted = four_iterations
    run_dir = tmp_path / backend
    args = algo_args(algo, tiny_run_args, num_iterations=4, **{"sampler.backend": backend, "sampler.num_workers": 2})
    result = train(*args, "--output-dir", run_dir, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    state = torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=True)
    expected = torch.load(uninterrupted / "checkpoints" / "latest.pt", weights_only=True)
    assert_same_policy(expected["policy"], state["policy"])
    assert_same_learner(expected["learner"], state["learner"])
    assert run_scalars(run_dir)["meta/kl"] == run_scalars(uninterrupted)["meta/kl"]


def test_evaluate_takes_every_algorithms_checkpoint(four_iterations, launcher, tmp_path):
    """launchers/evaluate.py evaluates a MAML-PPO or ProMP run as it does MAML-TRPO's: same inner step, same policy."""
    _, run_dir = four_iterations
    output_dir = tmp_path / "evaluation"
    args = ["--num-tasks", 2, "--num-steps", 1, "--episodes-per-task", 2, "--output-dir", output_dir]
    result = launcher("evaluate.py", "--run", run_dir, *args, "--quiet")
    assert result.returncode == 0, result.stderr
    assert (output_dir / "evaluation.json").is_file()


def test_a_checkpoint_without_the_learners_state_is_refused(four_iterations, train, assert_clean_error, tmp_path):
    """A MAML-PPO or ProMP checkpoint whose optimiser state is missing would resume with fresh moments, so with
    other numbers: refused with one line naming the checkpoint."""
    _, run_dir = four_iterations
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    checkpoint = copy / "checkpoints" / "latest.pt"
    state = torch.load(checkpoint, weights_only=True)
    state["learner"] = {}
    torch.save(state, checkpoint)
    result = train("--resume", copy, "--set", "num_iterations=5")
    assert_clean_error(result, str(checkpoint), "the meta-learner's state does not fit algo")
