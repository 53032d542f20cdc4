"""What a run's checkpoint must hold, checked one way wherever one is read: to resume a run (RL training,
pretraining, supervised meta-training) or to evaluate a policy (MAML's, the pretrained baseline's).

A checkpoint that does not fit is one ``CheckpointError`` naming the file, what is wrong and the fix, raised before
anything is built from it: not a KeyError, nor torch's page of size mismatches.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from metarl.checkpoint import CheckpointError, load_checkpoint
from metarl.config import current_names, shown
from metarl.run import CONFIG_FILE, RL_TRAINING, RUN_KINDS, RunKind, latest_checkpoint

RESUMED_POLICY_KEYS = ("policy", "iteration", "env_steps", "wall_time_s")
"""What a resume of a policy's run continues from: the policy and the counters it carries on."""
EVALUATED_POLICY_KEYS = ("policy", "env_id")
"""What an evaluation needs of a checkpoint: the policy, and the env it was trained on (its counters are recorded
where present)."""


@dataclass(frozen=True)
class CheckpointUse:
    """What a checkpoint is read for: the run it must come from, what it must hold, and how the messages say to name
    another (a resume's run directory, or the launcher option that named the file)."""

    kind: RunKind
    """The kind of run it must come from (its ``method``)."""
    required: tuple[str, ...] = ()
    env_id: str | None = None
    """The env its policy must have been trained on; None where the run has none. A checkpoint from before the key
    existed is taken to be of this env."""
    resumed_run: Path | None = None
    """The run directory a resume continues; None where an option named the file."""
    flag: str = "--checkpoint"
    """The option that named the file (where it is not a resume's)."""

    def other_kind(self, path: Path, method: Any) -> str:
        """The message for a checkpoint of ``method``, not of this use's kind, with how to use it or find another."""
        other = next((kind for kind in RUN_KINDS if kind.method == method), None)
        if self.resumed_run is not None and other is not None:
            return (
                f"{self.resumed_run} holds a {other.name} run, not a {self.kind.name} one; "
                f"resume it with python {other.launcher} --resume {self.resumed_run}"
            )
        what = f"a {other.name} checkpoint (of {other.launcher})" if other else f"of method {shown(method)}"
        return f"checkpoint {path} is {what}, not a {self.kind.name} one; {self.fix}"

    @property
    def fix(self) -> str:
        """How the user names another checkpoint."""
        if self.resumed_run is not None:
            return "check the --resume path"
        return f"{self.flag} takes one of {self.kind.launcher}" + (f" for {self.env_id}" if self.env_id else "")


def read_checkpoint(path: Path, use: CheckpointUse, device: str | torch.device = "cpu") -> dict[str, Any]:
    """The checkpoint at ``path``, checked to fit ``use`` (see ``check_checkpoint``), its tensors on ``device``, and
    its run's config in today's key names (``metarl.config.ALIASES``)."""
    state = load_checkpoint(path, map_location=device, made_by=use.kind.launcher)
    check_checkpoint(state, path, use)
    if isinstance(state.get("config"), dict):
        state["config"] = current_names(state["config"], f"checkpoint {path}")
    return state


def check_checkpoint(state: Any, path: Path, use: CheckpointUse) -> None:
    """Refuse a checkpoint that is not a dict, lacks a key ``use`` requires, comes from another env or kind of run,
    or holds counters that are not counts."""
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(state).__name__}, not a {use.kind.name} checkpoint")
    missing = [key for key in use.required if key not in state]
    if missing:
        raise CheckpointError(
            f"checkpoint {path} lacks {', '.join(missing)}; it was not written by {use.kind.launcher}, or is damaged"
        )
    if use.env_id is not None and state.get("env_id", use.env_id) != use.env_id:
        where = f"the run's {CONFIG_FILE} says {use.env_id}" if use.resumed_run else f"not on {use.env_id}"
        raise CheckpointError(f"checkpoint {path} was trained on {state['env_id']}, {where}; {use.fix}")
    method = state.get("method", RL_TRAINING.method)  # RL training's first checkpoints predate the key
    if method != use.kind.method:
        raise CheckpointError(use.other_kind(path, method))
    for key in ("iteration", "env_steps"):
        value = state.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise CheckpointError(f"checkpoint {path}: {key} is {shown(value)}, not a non-negative integer")
    if not isinstance(state.get("wall_time_s", 0.0), (int, float)):
        raise CheckpointError(f"checkpoint {path}: wall_time_s is {shown(state['wall_time_s'])}, not a number")


def load_policy_weights(policy: nn.Module, state: Mapping[str, Any], path: Path) -> None:
    """Load a checked checkpoint's policy into ``policy``, refusing one that is not a dict of tensors, whose
    parameters are not ``policy``'s names and shapes, or that holds non-finite parameters (a run that diverged:
    every episode would stop at its first action)."""
    weights = state["policy"]
    if not isinstance(weights, dict) or not all(isinstance(value, torch.Tensor) for value in weights.values()):
        raise CheckpointError(
            f"checkpoint {path}: its policy is a {type(weights).__name__}, not a dict of tensors; it is damaged "
            "or was not written by metarl"
        )
    expected = policy.state_dict()
    if weights.keys() != expected.keys():
        raise CheckpointError(
            f"checkpoint {path} does not fit the run's policy: it has parameters {sorted(weights)}, the run's "
            f"policy {sorted(expected)}"
        )
    for name, tensor in expected.items():
        if weights[name].shape != tensor.shape:
            raise CheckpointError(
                f"checkpoint {path} does not fit the run's policy: {name} has shape {tuple(weights[name].shape)} "
                f"there but {tuple(tensor.shape)} for the env and hidden_sizes in the run's {CONFIG_FILE}"
            )
    non_finite = [name for name, value in weights.items() if value.is_floating_point() and not value.isfinite().all()]
    if non_finite:
        raise CheckpointError(
            f"checkpoint {path} holds non-finite parameters ({', '.join(non_finite)}): its run diverged; "
            "evaluate an earlier checkpoint, or start a new run with smaller steps"
        )
    policy.load_state_dict(weights)


def resume_checkpoint(
    run_dir: Path, kind: RunKind, required: tuple[str, ...] = (), env_id: str | None = None
) -> tuple[dict[str, Any], Path] | None:
    """What the latest checkpoint of the ``kind`` run in ``run_dir`` holds, checked to hold ``required`` and to come
    from ``env_id``, and its path; None if it has none yet. Read before the run's objects are built: a corrupt file
    or another kind's run fails in a second, not after the sampler's workers started."""
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        return None
    return read_checkpoint(checkpoint, CheckpointUse(kind, required, env_id, resumed_run=run_dir)), checkpoint
