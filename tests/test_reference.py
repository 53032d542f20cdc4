import math

import envs
from metarl.reporting.reference import load_references, reference_for


def test_every_family_has_four_steps_per_method_and_an_oracle():
    references = load_references()
    assert set(references) == {
        "2D navigation",
        "HalfCheetah velocity",
        "HalfCheetah direction",
        "Ant velocity",
        "Ant direction",
    }
    for reference in references.values():
        for returns in reference.returns.values():
            assert len(returns) == 4 and all(math.isfinite(v) for v in returns)
        assert reference.oracle is not None


def test_paper_numbers_as_published():
    navigation = reference_for("metarl/Navigation2D-v0")
    assert navigation.returns["maml"] == (-40.41, -11.68, -3.33, -3.23)
    assert navigation.oracle == -2.29
    ant_direction = reference_for("metarl/AntDir-v0")
    assert ant_direction.episodes_per_task == 40
    assert ant_direction.returns["random_init"] == (3.11, 9.25, 15.96, 26.11)


def test_test_scripts_step_sizes_and_episodes():
    """maml_rl's test_maml_*.py: step_sizes per method (maml, pretrain, random) and batch_size / horizon."""
    expected = {
        "metarl/Navigation2D-v0": ((0.5, 0.5, 0.5), 40),  # test_maml_point.py: 4,000 steps of horizon 100
        "metarl/HalfCheetahVel-v0": ((0.1, 0.02, 0.1), 20),  # test_maml_cheetah.py
        "metarl/HalfCheetahDir-v0": ((0.1, 0.2, 1.0), 20),  # test_maml_cheetah_direc.py
        "metarl/AntVel-v0": ((0.1, 0.2, 1.0), 20),  # test_maml_ant.py
        "metarl/AntDir-v0": ((0.1, 0.2, 1.0), 40),  # test_maml_ant_direc.py: 8,000 steps
    }
    for env_id, (sizes, episodes) in expected.items():
        reference = reference_for(env_id)
        assert tuple(reference.first_step_sizes[m] for m in ("maml", "pretrained", "random_init")) == sizes
        assert reference.episodes_per_task == episodes


def test_registered_envs_map_to_families_or_none():
    for env_id in envs.ENV_IDS:
        reference = reference_for(env_id)
        assert reference is None or env_id in reference.env_ids
    assert reference_for("metarl/NoSuchEnv-v0") is None
