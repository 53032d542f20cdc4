"""Typed configs of the supervised launchers, loaded and checked with ``metarl.config``'s functions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from metarl.config import DEVICE_NAMES, is_device_name, require, require_finite

ALGORITHMS = ("maml", "reptile")


@dataclass
class MetaLearningConfig:
    """Keys shared by every supervised meta-learning run."""

    algorithm: str = "maml"
    """'maml' (second order unless first_order) or 'reptile'."""
    first_order: bool = False
    """MAML only: drop the second-order terms of the meta-gradient (first-order MAML)."""
    num_shots: int = 5
    """K: support examples per task (per class for classification) for the inner steps."""
    num_query: int = 5
    """Query examples per task (per class for classification) for the meta-loss."""
    num_steps: int = 1
    """Inner SGD steps per task during meta-training."""
    inner_lr: float = 0.01
    """Inner step size α."""
    meta_batch_size: int = 25
    """Tasks per meta-update."""
    meta_lr: float = 0.001
    """MAML: Adam step size β of the meta-update."""
    reptile_step_size: float = 0.1
    """Reptile: ε in θ ← θ + ε(θ' − θ)."""
    num_iterations: int = 70000
    """Meta-iterations to train."""
    eval_tasks: int = 600
    """Fresh tasks for the final evaluation."""
    seed: int = 1
    """Seeds tasks, examples and the initialisation; same seed, same numbers."""
    log_every: int = 100
    """Write TensorBoard scalars and a progress line every N iterations."""
    checkpoint_every: int = 10000
    """Keep a numbered checkpoint every N iterations (checkpoints/latest.pt too, and at the end)."""
    num_threads: int = 1
    """torch CPU threads (1 is fastest for these small networks and leaves the other cores alone)."""

    def validate(self) -> MetaLearningConfig:
        require_finite(self)
        for name in [
            "num_shots",
            "num_query",
            "num_steps",
            "inner_lr",
            "meta_batch_size",
            "meta_lr",
            "reptile_step_size",
            "num_iterations",
            "eval_tasks",
            "log_every",
            "checkpoint_every",
            "num_threads",
        ]:
            require(self, name, lambda v: v > 0, "must be positive")
        require(self, "seed", lambda v: v >= 0, "must be non-negative")
        require(self, "algorithm", lambda v: v in ALGORITHMS, f"must be one of {', '.join(ALGORITHMS)}")
        require(
            self,
            "first_order",
            lambda v: not (v and self.algorithm == "reptile"),
            "applies to algorithm=maml only (Reptile is first order already)",
        )
        return self


@dataclass
class SinusoidConfig(MetaLearningConfig):
    """Sinusoid regression, Finn et al. (2017) section 5.1."""

    amplitude_range: list[float] = field(default_factory=lambda: [0.1, 5.0])
    """Amplitude ~ U[low, high]."""
    phase_range: list[float] = field(default_factory=lambda: [0.0, 3.141592653589793])
    """Phase ~ U[low, high]."""
    input_range: list[float] = field(default_factory=lambda: [-5.0, 5.0])
    """x ~ U[low, high]."""
    hidden_sizes: list[int] = field(default_factory=lambda: [40, 40])
    """Regressor MLP hidden layer sizes (ReLU)."""
    eval_steps: list[int] = field(default_factory=lambda: [1, 5, 10])
    """Inner steps after which the evaluation reports the MSE."""
    eval_query: int = 100
    """Query points per evaluation task (more points, a tighter estimate of each task's MSE)."""
    baseline_iterations: int = 70000
    """Iterations of the pretrained baseline (regression on all tasks jointly, Adam with meta_lr); 0 skips it."""
    plot_tasks: int = 3
    """Tasks shown in the Figure-2-style plot."""

    def validate(self) -> SinusoidConfig:
        super().validate()
        for name in ["amplitude_range", "phase_range", "input_range"]:
            require(self, name, lambda v: len(v) == 2 and v[0] <= v[1], "must be [low, high] with low <= high")
        require(self, "hidden_sizes", lambda v: len(v) > 0 and all(s > 0 for s in v), "must be positive layer sizes")
        require(self, "eval_steps", lambda v: len(v) > 0 and all(s >= 0 for s in v), "must be non-negative steps")
        require(self, "eval_query", lambda v: v > 0, "must be positive")
        require(self, "baseline_iterations", lambda v: v >= 0, "must be non-negative")
        require(self, "plot_tasks", lambda v: v >= 0, "must be non-negative")
        return self


@dataclass
class FewShotConfig(MetaLearningConfig):
    """N-way K-shot image classification with the paper's conv net (section 5.2): what every image benchmark has."""

    num_ways: int = 5
    """N: classes per task."""
    image_size: int = 28
    """Images are resized to image_size × image_size."""
    num_filters: int = 64
    """Filters per conv layer."""
    eval_steps: int = 3
    """Inner steps at evaluation."""
    eval_every: int = 500
    """Evaluate accuracy on eval_every_tasks tasks every N iterations, a multiple of log_every (0: only at the
    end); on the validation classes where the dataset has them, and the best such checkpoint is the one tested."""
    eval_every_tasks: int = 100
    """Tasks of the periodic evaluation."""
    device: str = "cpu"
    """Where the network runs: cpu, cuda or cuda:N."""

    channels: ClassVar[int] = 1
    """Colour channels of the benchmark's images."""

    def validate(self) -> FewShotConfig:
        super().validate()
        for name in ["num_ways", "image_size", "num_filters", "eval_steps", "eval_every_tasks"]:
            require(self, name, lambda v: v > 0, "must be positive")
        require(self, "eval_every", lambda v: v >= 0, "must be non-negative")
        require(
            self,
            "eval_every",
            lambda v: v % self.log_every == 0,
            f"must be a multiple of log_every ({self.log_every}): evaluations happen when a progress line is logged",
        )
        require(self, "image_size", lambda v: v >= 16, "must be at least 16 (four 2×2 poolings)")
        require(self, "device", is_device_name, f"must be {DEVICE_NAMES}")
        return self


@dataclass
class OmniglotConfig(FewShotConfig):
    """N-way K-shot Omniglot classification, Finn et al. (2017) section 5.2 and appendix A.1."""

    num_train_characters: int = 1200
    """Characters for meta-training; the rest are meta-test (MAML's code: 1200 of 1623)."""
    split_seed: int = 1
    """Seeds the shuffle of characters into meta-train and meta-test (separate from seed, like MAML's code)."""
    rotations: bool = True
    """Each character at 0°, 90°, 180° and 270° is its own class (4× the classes)."""

    def validate(self) -> OmniglotConfig:
        super().validate()
        require(self, "num_train_characters", lambda v: v > 0, "must be positive")
        require(self, "split_seed", lambda v: v >= 0, "must be non-negative")
        return self


@dataclass
class MiniImagenetConfig(FewShotConfig):
    """N-way K-shot MiniImagenet classification, Finn et al. (2017) section 5.2 and appendix A.1."""

    image_size: int = 84
    """Images are resized to image_size × image_size (the split's 84 × 84)."""
    num_filters: int = 32
    """Filters per conv layer (the paper's 32 for MiniImagenet, against overfitting)."""
    eval_steps: int = 10
    """Inner steps at evaluation (paper: 10 for MiniImagenet)."""

    channels: ClassVar[int] = 3
