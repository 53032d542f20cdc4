"""Task-distributed environments, registered as Gymnasium ids on import."""

import gymnasium

from envs.base import Task, TaskDistribution, TaskEnv, TaskVectorEnv, make_task_vector_env

ENV_IDS = {
    "metarl/Navigation2D-v0": ("envs.navigation:Navigation2DEnv", "envs.navigation:Navigation2DVectorEnv", 100),
}

for _env_id, (_entry_point, _vector_entry_point, _horizon) in ENV_IDS.items():
    if _env_id not in gymnasium.registry:
        gymnasium.register(
            _env_id,
            entry_point=_entry_point,
            vector_entry_point=_vector_entry_point,
            max_episode_steps=_horizon,
        )

__all__ = ["ENV_IDS", "Task", "TaskDistribution", "TaskEnv", "TaskVectorEnv", "make_task_vector_env"]
