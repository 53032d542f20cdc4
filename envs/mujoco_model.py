"""Compiling Gymnasium's MuJoCo models without MuJoCo writing a log file into the working directory.

MuJoCo 4 deprecates the ``settotalmass`` compiler attribute, which Gymnasium's ``half_cheetah.xml``
uses. Compiling such a model calls ``mju_warning``, whose default handler appends to
``MUJOCO_LOG.TXT`` in the current directory (and prints to stdout). We parse the XML into an
``MjSpec``, drop the attribute, compile, and then do what the compiler would have done: scale the
masses with ``mj_setTotalmass``, recompute the derived constants with ``mj_setConst`` and recompute the
two statistics (``meanmass``, ``meaninertia``) the compiler derives from the scaled masses. The
result equals Gymnasium's own compiled model array for array (a test checks this), so simulations
are bit-for-bit those of ``HalfCheetah-v5``.

One size differs: the arena each ``MjData`` reserves for contacts, constraints and the solver's stack.
Without ``<size memory>`` MuJoCo reserves 14 MiB per Ant and 6 MiB per HalfCheetah, of which a step
uses at most 23 KB (measured over falls, flips and violent controls). A task batch of 800 envs then
reserved 11 GiB, served from the heap once glibc's mmap threshold has risen past 14 MiB; rebuilding
the vector env for each extra sampling round (``batch_unit: transitions``) left the heap fragmented
and the resident set grew by ~0.5 GiB per iteration until the OOM killer stopped the run. The arena
size changes no number (it is capacity only); overflowing it raises ``mujoco.FatalError`` or drops
contacts, which ``BatchedMujoco`` turns into an error.
"""

from __future__ import annotations

import os

import mujoco

ARENA_BYTES = 1 << 20
"""Each ``MjData``'s arena where the XML does not set one: over 40× the most a step of our robots uses."""

GYMNASIUM_ASSETS = os.path.join(os.path.dirname(str(__import__("gymnasium").__file__)), "envs", "mujoco", "assets")


def model_path(xml_file: str) -> str:
    """The full path of one of Gymnasium's MuJoCo model files (an absolute path is kept)."""
    return xml_file if os.path.isabs(xml_file) else os.path.join(GYMNASIUM_ASSETS, xml_file)


def load_model(xml_file: str) -> mujoco.MjModel:
    """Compile a MuJoCo XML model the way MuJoCo's compiler would, minus the deprecated code path."""
    spec = mujoco.MjSpec.from_file(model_path(xml_file))
    if spec.memory < 0:
        spec.memory = ARENA_BYTES
    total_mass = spec.compiler.settotalmass
    spec.compiler.settotalmass = -1.0
    model = spec.compile()
    if total_mass > 0:
        data = mujoco.MjData(model)
        mujoco.mj_setTotalmass(model, total_mass)
        mujoco.mj_setConst(model, data)
        _recompute_statistics(model, data)
    return model


def _recompute_statistics(model: mujoco.MjModel, data: mujoco.MjData) -> None:
    """``stat.meanmass`` and ``stat.meaninertia`` as MuJoCo's compiler computes them (same summation order).

    ``meaninertia`` scales the constraint solver's tolerance, so it must match the scaled masses.
    """
    mujoco.mj_resetData(model, data)
    mujoco.mj_forward(model, data)
    if model.nbody > 1:
        mean_mass = 0.0
        for body in range(1, model.nbody):
            mean_mass += float(model.body_mass[body])
        model.stat.meanmass = mean_mass / (model.nbody - 1)
    if model.nv > 0:
        mean_inertia = 0.0
        for dof in range(model.nv):
            mean_inertia += float(data.M[model.M_rowadr[dof] + model.M_rownnz[dof] - 1])
        model.stat.meaninertia = mean_inertia / model.nv
