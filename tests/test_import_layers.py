"""The package's import graph: every module sits in one layer and imports only from its own layer or those
below, so that a change to how runs are kept never reaches the maths, and the run loop stays one."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "metarl"

LAYERS = [
    (
        "foundation",
        "version config seeding checkpoint heartbeat logger cli memory user_env supervised.config "
        "reporting reporting.statistics reporting.reference reporting.machine reporting.plots "
        "reporting.comparison reporting.evaluation_output reporting.report",
    ),
    (
        "maths",
        "episodes policies returns optim baseline advantages adaptation mlp_curvature "
        "supervised supervised.models supervised.tasks supervised.meta_learning supervised.evaluation",
    ),
    (
        "sampling",
        "samplers samplers.base samplers.budget samplers.rollout samplers.worker samplers.process "
        "samplers.ray_backend samplers.vectorized meta_batch "
        "supervised.image_classes supervised.omniglot supervised.miniimagenet supervised.few_shot_memory",
    ),
    (
        "meta-learners",
        "algos algos.base algos.maml_trpo algos.trpo_curvature algos.maml_ppo algos.promp parts experiment",
    ),
    ("run layer", "run run_loop checkpoint_check"),
    (
        "runs",
        "experiment_run trainer pretraining evaluation evaluation_run env_check supervised.training "
        "supervised.launch supervised.sinusoid supervised.few_shot_run supervised.few_shot_launcher",
    ),
    ("entry points", "__init__ api"),
]
LAYER_OF = {module: index for index, (_, modules) in enumerate(LAYERS) for module in modules.split()}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1]) if parts[-1] == "__init__" and len(parts) > 1 else ".".join(parts)


def imported(path: Path, known: set[str]) -> set[str]:
    """The package's modules ``path`` imports (``from metarl.x import y`` counts y where y is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "metarl":
            base = node.module.removeprefix("metarl").lstrip(".")
            names = [f"{base}.{alias.name}".lstrip(".") for alias in node.names] + [base]
        elif isinstance(node, ast.Import):
            names = [
                alias.name.removeprefix("metarl").lstrip(".") for alias in node.names if alias.name.startswith("metarl")
            ]
        found.update(name for name in names if name in known)
    return found


def test_every_module_has_a_layer():
    modules = {module_name(path) for path in PACKAGE.rglob("*.py")}
    assert modules - set(LAYER_OF) == set(), "place these modules in a layer of LAYERS"
    assert set(LAYER_OF) - modules == set(), "these modules in LAYERS no longer exist"


def test_no_module_imports_from_a_higher_layer():
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    upward = [
        f"{name} ({LAYERS[LAYER_OF[name]][0]}) imports {target} ({LAYERS[LAYER_OF[target]][0]})"
        for name, path in modules.items()
        for target in imported(path, set(modules))
        if name in LAYER_OF and target in LAYER_OF and LAYER_OF[target] > LAYER_OF[name]
    ]
    assert upward == []


def test_the_run_loop_is_the_only_loop_over_iterations_that_saves_checkpoints():
    """Every kind of run trains in run_loop: no other module calls save_checkpoints."""
    callers = sorted(module_name(path) for path in PACKAGE.rglob("*.py") if "save_checkpoints(" in path.read_text())
    assert callers == ["run", "run_loop"]  # run defines it
