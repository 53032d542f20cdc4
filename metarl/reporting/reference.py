"""The MAML paper's published test returns, from the data file shipped with the package."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

DATA_FILE = "maml_paper_returns.json"
METHODS = ("maml", "pretrained", "random_init")
"""The methods an evaluation compares, in the order the paper's tables (and ours) list them."""


@dataclass(frozen=True)
class PaperReference:
    """One task family's row of the paper's table: mean return over 40 test tasks after 0..3 steps."""

    family: str
    env_ids: tuple[str, ...]
    episodes_per_task: int
    returns: dict[str, tuple[float, ...]]
    """Method name ('maml', 'pretrained', 'random_init') → return after 0, 1, 2, 3 gradient steps."""
    oracle: float | None
    first_step_sizes: dict[str, float]
    """Method name → the first test-time step size the paper's test script used (later steps: half)."""


@cache
def load_references() -> dict[str, PaperReference]:
    """Every task family in the data file, by family name."""
    data = json.loads(resources.files("metarl").joinpath("data", DATA_FILE).read_text())
    return {
        family: PaperReference(
            family=family,
            env_ids=tuple(row["env_ids"]),
            episodes_per_task=int(row["episodes_per_task"]),
            returns={method: tuple(float(v) for v in row[method]) for method in METHODS},
            oracle=None if row.get("oracle") is None else float(row["oracle"]),
            first_step_sizes={method: float(size) for method, size in row["first_step_sizes"].items()},
        )
        for family, row in data["families"].items()
    }


def reference_for(env_id: str) -> PaperReference | None:
    """The paper's row for the family ``env_id`` belongs to, or None where the paper has none."""
    for reference in load_references().values():
        if env_id in reference.env_ids:
            return reference
    return None


def family_name(env_id: str) -> str:
    """The task family's name as the paper writes it, or the env id where the paper has none."""
    reference = reference_for(env_id)
    return reference.family if reference else env_id
