"""Task-distributed environments, registered as Gymnasium ids on import."""

import gymnasium

from envs.base import Task, TaskDistribution, TaskVectorEnv, make_task_vector_env, registry_id

# id: (module, single env class, vector env class, default horizon)
ENV_IDS = {
    "metarl/Navigation2D-v0": ("envs.navigation", "Navigation2DEnv", "Navigation2DVectorEnv", 100),
    "metarl/HalfCheetahVel-v0": ("envs.half_cheetah", "HalfCheetahVelEnv", "HalfCheetahVelVectorEnv", 200),
    "metarl/HalfCheetahDir-v0": ("envs.half_cheetah", "HalfCheetahDirEnv", "HalfCheetahDirVectorEnv", 200),
    "metarl/AntVel-v0": ("envs.ant", "AntVelEnv", "AntVelVectorEnv", 200),
    "metarl/AntDir-v0": ("envs.ant", "AntDirEnv", "AntDirVectorEnv", 200),
    "metarl/AntGoal-v0": ("envs.ant", "AntGoalEnv", "AntGoalVectorEnv", 200),
    "metarl/AntVel-rllab-v0": ("envs.ant_rllab", "AntVelRllabEnv", "AntVelRllabVectorEnv", 200),
    "metarl/AntDir-rllab-v0": ("envs.ant_rllab", "AntDirRllabEnv", "AntDirRllabVectorEnv", 200),
}

for _env_id, (_module, _single, _vector, _horizon) in ENV_IDS.items():
    if _env_id not in gymnasium.registry:
        gymnasium.register(
            _env_id,
            entry_point=f"{_module}:{_single}",
            vector_entry_point=f"{_module}:{_vector}",
            max_episode_steps=_horizon,
        )

__all__ = ["ENV_IDS", "Task", "TaskDistribution", "TaskVectorEnv", "make_task_vector_env", "registry_id"]
