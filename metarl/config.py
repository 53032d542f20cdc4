"""Typed run configuration: dataclasses loaded from YAML, overridden by ``--set key=value``, validated.

Every problem is reported as a ``ConfigError`` whose message names the bad key or value and the fix,
so a launcher can print it as one line and exit without touching any run directory.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import inspect
import itertools
import math
import os
import re
import sys
import textwrap
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration problem a user can fix; the message says how."""


ALIASES = {"num_batches": "num_iterations", "fast_batch_size": "episodes_per_task", "fast_lr": "inner_lr"}
"""Earlier names of config keys (the paper's code's and pytorch-maml-rl's), read as today's wherever a config is
read: config files, --set, and the config.yaml and checkpoints of runs saved before one quantity got one name
(issue 29)."""
EVALUATION_ALIASES = {
    "episodes_per_step": "episodes_per_task",
    "step_size": "inner_lr",
    "later_step_size": "later_inner_lr",
}
"""Earlier names of the evaluation settings, as evaluation.json files written before the rename record them."""


def current_name(key: str, aliases: dict[str, str] = ALIASES) -> str:
    """Today's name of ``key``: itself unless it is an earlier name."""
    return aliases.get(key, key)


def current_names(
    data: dict[str, Any], source: str, aliases: dict[str, str] = ALIASES, renamed: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """``data`` with each key's earlier name replaced by today's, the keys' order kept; a key given under both
    names is a ConfigError naming both. ``renamed`` hears each earlier name met (for a new run's note)."""
    result: dict[str, Any] = {}
    for key, value in data.items():
        name = current_name(key, aliases)
        if name != key:
            if name in data:
                raise ConfigError(f"{source} gives both {key} and {name}, two names of one key; keep {name}")
            if renamed is not None:
                renamed(key)
        result[name] = value
    return result


def renamed_note(old: str) -> str:
    """The one line a new run whose config or --set used the earlier name ``old`` prints."""
    new = current_name(old)
    return f"note: {old} is now called {new} (read as {new}; the run's config.yaml says {new})"


def print_note(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


DEVICE_NAMES = "'cpu', 'cuda' or 'cuda:N'"


FLOAT32_MAX = 3.4028234663852886e38
"""The largest float32: Adam's step size must convert to it (torch raises a RuntimeError past it)."""
WORKERS_PER_CPU = 4


def max_workers() -> int:
    """The most sampler workers this machine takes (``SamplerConfig.num_workers``): 4 per CPU."""
    return WORKERS_PER_CPU * (os.cpu_count() or 1)


def is_device_name(name: object) -> bool:
    """Whether ``name`` is a device this package runs on; checked up front, as torch's own refusal is a traceback."""
    return isinstance(name, str) and re.fullmatch(r"cpu|cuda(:\d+)?", name) is not None


@dataclass
class SamplerConfig:
    backend: str = "vectorized"
    """Where rollouts run: 'vectorized' (in-process), 'process' (worker processes) or 'ray'."""
    num_workers: int = 1
    """Worker processes or Ray actors; ignored by the in-process backend. At most 4 × this machine's CPUs with
    'process', or 'ray' without ray_address (a local Ray instance): more only share the cores, and a typo like
    1000000 would fork until the process limit. Unbounded with a ray_address, whose cluster may be larger."""
    ray_address: str | None = None
    """Ray cluster to join ('auto' or host:port); None starts a local Ray instance."""
    worker_timeout_s: float = 1200.0
    """Seconds a worker (process or Ray actor) may take for its share of one sampling call, counted once it is up,
    before it is killed and replaced and its share re-run (same episodes); generous, as a loaded machine's Ant share
    takes minutes."""


@dataclass
class TRPOSettings:
    """The TRPO meta-step (a config section, ``trpo:``, and what the learner takes)."""

    max_kl: float = 1e-2
    """Trust-region size of the TRPO meta-step."""
    cg_iters: int = 10
    """Conjugate-gradient iterations."""
    cg_damping: float = 1e-5
    """Damping added to the curvature matrix in conjugate gradient."""
    ls_max_steps: int = 15
    """Backtracking line-search steps before the update is rejected."""
    ls_backtrack_ratio: float = 0.8
    """Step shrink factor per line-search step."""
    curvature: str = "r_operator"
    """KL-Hessian-vector products, both exact (see metarl/algos/trpo_curvature.py): 'r_operator' (written out for
    the MLP policy, task by task: the fastest on the CPU; 'gauss_newton' where it does not apply) or 'gauss_newton'
    (autograd, batched over tasks; the default of runs saved before 'r_operator' was, which keep it)."""
    curvature_subsample: float = 1.0
    """Fraction of each task's episodes the curvature products use: 1.0 exact; less is faster, approximate."""


@dataclass
class PPOSettings:
    """MAML-PPO's meta-step (a config section, ``ppo:``): Adam steps on PPO's clipped surrogate of the adapted
    policies, all on one meta-batch. Defaults: garage's MAMLPPO (src/garage/torch/algos/maml_ppo.py, maml.py)."""

    lr: float = 1e-3
    """Adam's step size for θ; garage MAMLPPO outer_lr = 1e-3."""
    adam_steps: int = 5
    """Adam steps per meta-iteration, each on the whole meta-batch; garage takes 1 (where the clip never acts:
    the ratio is 1 at the first step), ProMP's scripts 5 (num_promp_steps)."""
    clip_eps: float = 0.5
    """Likelihood-ratio clip range ε: the ratio counts within [1 − ε, 1 + ε]; garage MAMLPPO lr_clip_range = 0.5."""


@dataclass
class ProMPSettings:
    """ProMP's meta-step (a config section, ``promp:``): Adam steps on the clipped surrogate of the adapted
    policies plus a KL penalty between the pre-update policies before and after. Defaults: ProMP's run scripts
    (jonasrothfuss/ProMP run_scripts/pro-mp_run_mujoco.py and pro-mp_run_point_mass.py, identical here)."""

    lr: float = 1e-3
    """Adam's step size for θ; ProMP learning_rate = 1e-3."""
    adam_steps: int = 5
    """Adam steps per meta-iteration, each on the whole meta-batch; ProMP num_promp_steps = 5."""
    clip_eps: float = 0.3
    """Likelihood-ratio clip range ε; ProMP clip_eps = 0.3."""
    inner_kl_penalty: float = 5e-4
    """Initial coefficient η of the KL penalty, one per inner step; ProMP init_inner_kl_penalty = 5e-4."""
    adaptive_inner_kl_penalty: bool = False
    """Halve η where the inner step's KL fell below inner_kl_target / 1.5, double it above 1.5 × inner_kl_target,
    after each meta-iteration; ProMP adaptive_inner_kl_penalty = False."""
    inner_kl_target: float = 1e-2
    """The KL the adaptive penalty aims at; ProMP target_inner_step = 0.01."""


BATCH_UNITS = ("episodes", "transitions")
INNER_OBJECTIVES = ("pg", "lvc")
ALGORITHMS = ("maml_trpo", "maml_ppo", "promp")
CURVATURE_METHODS = ("r_operator", "gauss_newton")
TRPO_KEYS = tuple(f.name for f in dataclasses.fields(TRPOSettings))


@dataclass
class TrainConfig:
    """A run's settings. The defaults are one set, the MAML paper's 2D navigation (launchers/configs/2d-navigation.yaml
    is them with their sources), and what ``--list-keys`` shows: a config file or ``--set`` says what differs."""

    env_id: str = "metarl/Navigation2D-v0"
    """Gymnasium id of a task-distributed env (see `envs.ENV_IDS`), or `module:EnvId` for one a module registers."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for the env constructor."""
    horizon: int | None = None
    """Maximum episode length; None takes the env's registered max_episode_steps (2D navigation's: 100)."""
    meta_batch_size: int = 20
    """Tasks per meta-iteration."""
    episodes_per_task: int = 20
    """Episodes per task for each inner step and for the query set (K in the paper)."""
    batch_unit: str = "episodes"
    """'episodes': K episodes per task; 'transitions': whole episodes until K × horizon env steps (at most
    2K episodes), as the paper's code sampled (differs only where episodes end early, e.g. Ant)."""
    num_steps: int = 1
    """Inner gradient steps per task."""
    inner_lr: float = 0.5
    """Inner step size α (2D navigation's, as the paper's code took it; its MuJoCo tasks took 0.1)."""
    num_iterations: int = 100
    """Meta-iterations to train."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 1.0
    """GAE λ (1.0: Monte-Carlo returns minus the baseline)."""
    first_order: bool = False
    """Drop the second-order terms of the meta-gradient (first-order MAML)."""
    inner_objective: str = "pg"
    """Inner loss: 'pg' (the paper's −E[log π · A]) or 'lvc' (ProMP's −E[π/⊥π · A]: the same inner step, a
    second-order meta-gradient and curvature with the ∇log π ∇log πᵀ term the paper's estimator drops)."""
    hidden_sizes: list[int] = field(default_factory=lambda: [100, 100])
    """Policy MLP hidden layer sizes."""
    nonlinearity: str = "relu"
    """Policy MLP nonlinearity: relu or tanh."""
    init_std: float = 1.0
    """Initial standard deviation of the Gaussian policy."""
    seed: int = 1
    """Seeds tasks, episodes and the policy initialisation."""
    device: str = "cpu"
    """Where the inner steps and meta-update run: cpu or cuda (sampling always runs on the CPU)."""
    num_threads: int = 1
    """Torch CPU threads for the inner steps and meta-update, fixed by the run rather than the machine's cores:
    a float sum's order, so its last bits, depends on it. Same seed, num_threads, torch build and CPU instruction
    set (AVX2, AVX-512: MKL picks kernels by it), same numbers. More threads are faster on many cores; sampling
    always takes one."""
    checkpoint_every: int = 50
    """Keep a numbered checkpoint every N iterations (checkpoints/latest.pt is written every iteration)."""
    algo: str = "maml_trpo"
    """Meta-learner: 'maml_trpo' (TRPO meta-step, settings in trpo:), 'maml_ppo' (Adam on PPO's clipped
    surrogate, ppo:) or 'promp' (ProMP: clipped surrogate and a KL penalty, promp:; needs inner_objective: lvc)."""
    trpo: TRPOSettings = field(default_factory=TRPOSettings)
    ppo: PPOSettings = field(default_factory=PPOSettings)
    promp: ProMPSettings = field(default_factory=ProMPSettings)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)

    def validate(self) -> TrainConfig:
        """Reject values no run can use; the message names the key, the value and the fix."""
        require_finite(self)
        for name in [
            "meta_batch_size",
            "episodes_per_task",
            "num_steps",
            "inner_lr",
            "num_iterations",
            "trpo.max_kl",
            "trpo.cg_iters",
            "trpo.ls_max_steps",
            "ppo.lr",
            "ppo.adam_steps",
            "promp.lr",
            "promp.adam_steps",
            "promp.inner_kl_target",
            "init_std",
            "checkpoint_every",
            "num_threads",
            "sampler.num_workers",
            "sampler.worker_timeout_s",
        ]:
            require(self, name, lambda v: v > 0, "must be positive")
        require(self, "horizon", lambda v: v is None or v > 0, "must be positive (or null for the env default)")
        require(self, "gamma", lambda v: 0 < v <= 1, "must be in (0, 1]")
        require(self, "gae_lambda", lambda v: 0 <= v <= 1, "must be in [0, 1]")
        require(self, "trpo.cg_damping", lambda v: v >= 0, "must be non-negative")
        require(self, "trpo.ls_backtrack_ratio", lambda v: 0 < v < 1, "must be in (0, 1)")
        require(self, "trpo.curvature_subsample", lambda v: 0 < v <= 1, "must be in (0, 1] (1.0: exact curvature)")
        require(self, "hidden_sizes", lambda v: all(size > 0 for size in v), "must be positive layer sizes")
        require(self, "nonlinearity", lambda v: v in ("relu", "tanh"), "must be 'relu' or 'tanh'")
        require(
            self,
            "trpo.curvature",
            lambda v: v in CURVATURE_METHODS,
            "must be one of " + ", ".join(repr(method) for method in CURVATURE_METHODS),
        )
        require(self, "batch_unit", lambda v: v in BATCH_UNITS, "must be 'episodes' or 'transitions'")
        require(self, "inner_objective", lambda v: v in INNER_OBJECTIVES, "must be 'pg' or 'lvc'")
        require(
            self, "algo", lambda v: v in ALGORITHMS, "must be one of " + ", ".join(repr(name) for name in ALGORITHMS)
        )
        for section in ("ppo", "promp"):
            require(self, f"{section}.clip_eps", lambda v: 0 < v < 1, "must be in (0, 1)")
            require(self, f"{section}.lr", lambda v: v <= FLOAT32_MAX, f"must be at most {FLOAT32_MAX:.3g} (float32)")
        require(self, "promp.inner_kl_penalty", lambda v: v >= 0, "must be non-negative")
        if self.algo == "promp":
            require(
                self,
                "inner_objective",
                lambda v: v == "lvc",
                "must be 'lvc' with algo: promp (ProMP's inner step is the LVC objective's)",
            )
        if self.batch_unit == "transitions":
            require(
                self,
                "trpo.curvature_subsample",
                lambda v: v == 1,
                "must be 1.0 with batch_unit: transitions (tasks then hold different numbers of episodes)",
            )
        require(self, "seed", lambda v: v >= 0, "must be non-negative")
        require(self, "device", is_device_name, f"must be {DEVICE_NAMES}")
        require(
            self,
            "sampler.backend",
            lambda v: v in ("vectorized", "process", "ray"),
            "must be 'vectorized', 'process' or 'ray'",
        )
        if self.sampler.backend == "process" or (self.sampler.backend == "ray" and self.sampler.ray_address is None):
            require(
                self,
                "sampler.num_workers",
                lambda v: v <= max_workers(),
                f"must be at most {max_workers()} ({WORKERS_PER_CPU} × the {os.cpu_count() or 1} CPUs of this "
                f"machine) with sampler.backend: {self.sampler.backend}"
                + ("" if self.sampler.backend == "process" else " and no ray_address"),
            )
        return self


SAVED_CURVATURE = "gauss_newton"
"""The curvature product of saved runs whose config does not name one: the default until 'r_operator' became it.
They resume with it, so that their numbers stay theirs."""


def upgrade_saved_config(data: dict[str, Any]) -> dict[str, Any]:
    """A saved run config in today's layout, with the settings it ran with: runs (and checkpoints) from before the
    TRPO settings moved under ``trpo:`` had them as top-level keys of the same names, and runs that name no
    ``trpo.curvature`` took ``SAVED_CURVATURE``. (Earlier key names, ``ALIASES``, ``load_yaml`` has read already.)"""
    trpo = data.get("trpo") or {}
    if not isinstance(trpo, dict):
        return data  # from_dict names the damaged section
    flat = {name: data[name] for name in TRPO_KEYS if name in data}
    upgraded = {key: value for key, value in data.items() if key not in flat}
    upgraded["trpo"] = {"curvature": SAVED_CURVATURE, **flat, **trpo}
    return upgraded


def require(config: Any, key: str, predicate: typing.Callable[[Any], bool], message: str) -> None:
    """Raise a ConfigError naming the dotted ``key``, its value and the fix unless ``predicate(value)``."""
    value = config
    for part in key.split("."):
        value = getattr(value, part)
    if not predicate(value):
        raise ConfigError(f"{key} {message}, got {shown(value)}; fix it in the config file or with --set {key}=...")


def require_finite(config: Any) -> None:
    """Refuse inf and nan in every float key (nested sections and lists included): they pass range
    checks such as ``max_kl > 0`` and then stall or wreck a run long after it started."""
    for key in _dotted_keys(config):
        require(config, key, _is_finite, "must be a finite number (not inf or nan)")


def _dotted_keys(config: Any, prefix: str = "") -> Iterator[str]:
    for config_field in dataclasses.fields(config):
        value = getattr(config, config_field.name)
        if dataclasses.is_dataclass(value):
            yield from _dotted_keys(value, f"{prefix}{config_field.name}.")
        else:
            yield prefix + config_field.name


def _is_finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(_is_finite(item) for item in value)
    return True


def _closest(key: str, valid: list[str], prefix: str) -> str:
    earlier = [old for old, new in ALIASES.items() if new in valid]  # 'fast_lrr' is closest to fast_lr: inner_lr
    match = difflib.get_close_matches(key, valid + earlier, n=1, cutoff=0.5)
    if match:
        return f"did you mean '{prefix}{current_name(match[0])}'?"
    return f"valid keys: {', '.join(prefix + v for v in valid)}"


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Check ``value`` against a field's type annotation, converting only int→float."""
    origin = typing.get_origin(annotation)
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a mapping of {annotation.__name__} keys, got {shown(value)}")
        return from_dict(annotation, value, prefix=f"{key}.")
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        return _coerce(value, next(o for o in options if o is not type(None)), key)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} must be a list, got {shown(value)}")
        (item,) = typing.get_args(annotation)
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a mapping, got {shown(value)}")
        return dict(value)
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is Any or (isinstance(value, annotation) and not (annotation is int and isinstance(value, bool))):
        return value
    suggestion = _yaml_float(value) if annotation is float and isinstance(value, str) else None
    if suggestion is not None:
        raise ConfigError(
            f"{key} must be a number, got the text {shown(value)}: YAML reads exponent notation as a number only "
            f"with a decimal point and a signed exponent; write {suggestion}"
        )
    raise ConfigError(f"{key} must be of type {annotation.__name__}, got {shown(value)}")


def _yaml_float(text: str) -> str | None:
    """``text`` (e.g. '1e-5', '2.5E3') as YAML reads it as a float ('1.0e-5', '2.5e+3'); None if not such a number."""
    match = re.fullmatch(r"([+-]?\d+)(\.\d*)?[eE]([+-]?)(\d+)", text.strip())
    if match is None:
        return None
    return f"{match[1]}{match[2] or '.0'}e{match[3] or '+'}{match[4]}"


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build a config dataclass from a mapping, its keys' earlier names (``ALIASES``) read as today's; unknown keys
    and wrong types are errors."""
    if not prefix:
        data = current_names(data, "the config")
    hints = typing.get_type_hints(cls)
    valid = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]  # T: a config dataclass
    for key in data:
        if key not in valid:
            raise ConfigError(f"unknown config key '{prefix}{key}': {_closest(key, valid, prefix)}")
    return cls(**{key: _coerce(value, hints[key], f"{prefix}{key}") for key, value in data.items()})


def apply_overrides(
    data: dict[str, Any], overrides: list[str], renamed: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Apply ``key=value`` overrides (dotted keys reach nested sections; values are parsed as YAML). A key's earlier
    name (``ALIASES``) sets today's, and ``renamed`` hears it; both names of one key are an error."""
    data = yaml.safe_load(yaml.safe_dump(data))  # deep copy
    for override in overrides:
        if "=" not in override:
            raise ConfigError(f"--set expects key=value, got '{shortened(override)}'")
    current_names({override.split("=", 1)[0].strip(): None for override in overrides}, "--set", renamed=renamed)
    for override in overrides:
        dotted, raw = override.split("=", 1)
        *parents, leaf = current_name(dotted.strip()).split(".")
        section = data
        for parent in parents:
            section = section.setdefault(parent, {})
            if not isinstance(section, dict):
                raise ConfigError(f"'{parent}' in '{dotted}' is not a config section")
        try:
            section[leaf] = safe_load_config(raw, f"--set {dotted}")
        except yaml.YAMLError as error:
            problem = " ".join(str(getattr(error, "problem", None) or type(error).__name__).split())
            raise ConfigError(
                f"--set {shortened(override)} is not valid YAML ({problem}); write the value as in a config "
                "file, e.g. --set hidden_sizes=[64,64] or --set env_id=metarl/Navigation2D-v0"
            ) from None
    return data


def find_config(path: Path | None, default: Path) -> Path:
    """The file ``--config`` names: ``default`` when absent, a path as given, or else a config of that name
    beside ``default``, so ``--config halfcheetah-vel.yaml`` (or ``halfcheetah-vel``) works from any directory."""
    if path is None:
        return default
    path = Path(path)
    if path.exists():
        return path  # load_yaml says what is wrong with a directory or an unreadable file
    configs = default.parent
    if len(path.parts) == 1:
        for candidate in (configs / path.name, configs / f"{path.name}.yaml"):
            if candidate.is_file():
                return candidate
    available = ", ".join(sorted(p.name for p in configs.glob("*.yaml")))
    raise ConfigError(
        f"config file {path} does not exist; pass a path to --config or one of the configs in {configs}: {available}"
    )


MAX_YAML_VALUES = 100_000
"""The most values a config may stand for once its YAML aliases are expanded. An alias shares one object, so a
few hundred bytes of nested aliases (an "alias bomb") stand for billions of values as soon as the config is
copied, printed or saved; no real config comes near this."""


class _ConfigLoader(yaml.SafeLoader):
    """``yaml.safe_load`` that refuses a key given twice in one mapping, which YAML resolves silently to the
    second value, so one of the two settings a user wrote would be dropped without a word."""

    def __init__(self, text: str, source: str):
        super().__init__(text)
        self.source = source
        self.name = source  # what PyYAML's error marks name, instead of "<unicode string>"

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        lines: dict[str, int] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                line = key_node.start_mark.line + 1
                if key_node.value in lines:
                    raise ConfigError(
                        f"{self.source} gives key '{shortened(key_node.value)}' twice (lines {lines[key_node.value]} "
                        f"and {line}); keep one"
                    )
                lines[key_node.value] = line
        return super().construct_mapping(node, deep)


def safe_load_config(text: str, source: str) -> Any:
    """``yaml.safe_load(text)`` for config files and ``--set`` values, with a ConfigError for a key given twice,
    for aliases that expand past MAX_YAML_VALUES (before any of it is built) and for nesting too deep to parse."""
    loader = _ConfigLoader(text, source)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, {})
        if size > MAX_YAML_VALUES:
            raise ConfigError(
                f"{source} expands to {size:,} values through its YAML aliases (*name), more than the "
                f"{MAX_YAML_VALUES:,} a config may hold; write the values out instead of nesting aliases"
            )
        return loader.construct_document(node)
    except RecursionError:  # PyYAML composes recursively: "[[[[…" thousands deep
        raise ConfigError(f"{source} nests lists or mappings too deeply to read; flatten it") from None
    finally:
        loader.dispose()


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Values under ``node`` with every alias expanded, each shared node counted once per use (memoised)."""
    if id(node) not in sizes:
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        else:
            children = []
        sizes[id(node)] = 1 + sum(_expanded_size(child, sizes) for child in children)
    return sizes[id(node)]


def shortened(text: str, limit: int = 80) -> str:
    """``text`` cut to ``limit`` characters, for echoing a user's input in a one-line error."""
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def shown(value: Any) -> str:
    """A bad value as a one-line error echoes it: its repr, shortened."""
    return shortened(repr(value))


EXTENDS = "extends"
"""The config-file key naming a base file (relative to the file itself) whose keys this file's override, section
by section: a family's configs state only what differs from their base."""


def load_yaml(
    path: Path, extending: tuple[Path, ...] = (), renamed: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """A config file's keys, with those of the file it ``extends:`` (and so on) beneath them; each file's earlier
    key names (``ALIASES``) are read as today's before they are merged, and ``renamed`` hears them."""
    data = current_names(read_config_file(path), f"config file {path}", renamed=renamed)
    base = data.pop(EXTENDS, None)
    if base is None:
        return data
    if not isinstance(base, str) or not base:
        raise ConfigError(f"config file {path}: {EXTENDS} must name a config file, got {shown(base)}")
    chain = (*extending, Path(path).resolve())
    base_path = (Path(path).parent / base).resolve()
    if base_path in chain:
        cycle = " -> ".join(p.name for p in (*chain[chain.index(base_path) :], base_path))
        raise ConfigError(f"config files extend each other in a cycle ({cycle}); remove one {EXTENDS}")
    if not base_path.is_file():
        raise ConfigError(
            f"config file {path} extends {base}, which does not exist; name a file relative to {Path(path).parent}"
        )
    return merged(load_yaml(base_path, chain, renamed), data)


def merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` on top; a mapping present in both (a section, env_kwargs) is merged key by key."""
    result = dict(base)
    for key, value in overrides.items():
        both_mappings = isinstance(value, dict) and isinstance(result.get(key), dict)
        result[key] = merged(result[key], value) if both_mappings else value
    return result


def read_config_file(path: Path) -> dict[str, Any]:
    """The keys a config file states itself (its ``extends:`` unresolved)."""
    try:
        data = safe_load_config(Path(path).read_text(), f"config file {path}")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist; pass an existing file to --config") from None
    except (OSError, UnicodeDecodeError) as error:  # a directory, no permission, binary content
        raise ConfigError(
            f"config file {path} cannot be read ({type(error).__name__}); pass a readable YAML file to --config"
        ) from None
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML: {error}".replace("\n", " ")) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys to values")
    return data


def load_config(
    cls: type[T],
    path: Path | None,
    overrides: Sequence[str] = (),
    note: Callable[[str], None] = print_note,
    settings: dict[str, Any] | None = None,
) -> T:
    """A new run's config: the one from ``path`` (defaults where absent) with ``key=value`` ``overrides`` and
    ``settings`` (Python values, sections as dicts: ``metarl.api``'s) on top, type-checked. ``note`` gets one line
    for each earlier key name (``ALIASES``) they used."""
    renamed: list[str] = []
    data = load_yaml(path, renamed=renamed.append) if path is not None else {}
    data = apply_overrides(data, list(overrides), renamed.append)
    config = from_dict(cls, merged(data, current_names(settings or {}, "the settings", renamed=renamed.append)))
    for old in dict.fromkeys(renamed):
        note(renamed_note(old))
    return config


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def dump_yaml(config: Any) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False)


def field_docs(cls: type) -> dict[str, str]:
    """Each field's docstring (the string under it in the class body), read from the source: Python keeps
    no attribute docstrings at run time, and these lines are the one place every key is explained."""
    class_def = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0]
    assert isinstance(class_def, ast.ClassDef)
    body = class_def.body
    return {
        statement.target.id: " ".join(following.value.value.split())
        for statement, following in itertools.pairwise(body)
        if isinstance(statement, ast.AnnAssign)
        and isinstance(statement.target, ast.Name)
        and isinstance(following, ast.Expr)
        and isinstance(following.value, ast.Constant)
        and isinstance(following.value.value, str)
    }


def describe_keys(cls: type, prefix: str = "") -> Iterator[tuple[str, Any, str]]:
    """``(dotted key, default, one-line explanation)`` for every key of the config class ``cls``."""
    docs, defaults = field_docs(cls), cls()
    for config_field in dataclasses.fields(cls):
        default = getattr(defaults, config_field.name)
        if dataclasses.is_dataclass(default):
            yield from describe_keys(type(default), f"{prefix}{config_field.name}.")
        else:
            yield prefix + config_field.name, default, docs.get(config_field.name, "")


def keys_text(cls: type) -> str:
    """The keys of ``cls`` as aligned ``key  default  explanation`` lines, defaults written as in YAML."""
    rows = [
        (key, yaml.safe_dump(default, default_flow_style=True).removesuffix("...\n").strip(), doc)
        for key, default, doc in describe_keys(cls)
    ]
    key_width, default_width = (max(len(row[i]) for row in rows) for i in (0, 1))
    return "\n".join(f"{key:<{key_width}}  {default:<{default_width}}  {doc}" for key, default, doc in rows)
