"""Task-distributed environments, registered as Gymnasium ids on import."""

import gymnasium

from envs.base import Task, TaskDistribution, TaskEnv, TaskVectorEnv, make_task_vector_env

ENV_IDS = {
    "metarl/Navigation2D-v0": ("envs.navigation:Navigation2DEnv", "envs.navigation:Navigation2DVectorEnv", 100),
    "metarl/HalfCheetahVel-v0": ("envs.half_cheetah:HalfCheetahVelEnv", "envs.half_cheetah:HalfCheetahVelVectorEnv", 200),
    "metarl/HalfCheetahDir-v0": ("envs.half_cheetah:HalfCheetahDirEnv", "envs.half_cheetah:HalfCheetahDirVectorEnv", 200),
    "metarl/AntVel-v0": ("envs.ant:AntVelEnv", "envs.ant:AntVelVectorEnv", 200),
    "metarl/AntDir-v0": ("envs.ant:AntDirEnv", "envs.ant:AntDirVectorEnv", 200),
    "metarl/AntGoal-v0": ("envs.ant:AntGoalEnv", "envs.ant:AntGoalVectorEnv", 200),
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
