"""The MAML paper's supervised networks, as plain ``nn.Module``s usable through ``functional_call``.

Both are initialised from an explicit ``torch.Generator`` so a seed fixes the initial θ.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class MLPRegressor(nn.Module):
    """Section 5.1: two hidden layers of 40 units with ReLU, for sinusoid regression."""

    def __init__(
        self,
        input_dim: int = 1,
        output_dim: int = 1,
        hidden_sizes: Sequence[int] = (40, 40),
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        sizes = [input_dim, *hidden_sizes]
        layers: list[nn.Module] = []
        for fan_in, fan_out in itertools.pairwise(sizes):
            layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], output_dim))
        self.net = nn.Sequential(*layers)
        for layer in self.net:
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight, generator=generator)
                nn.init.zeros_(layer.bias)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.net(inputs)


class ConvBlock(nn.Module):
    """3×3 convolution → batch norm → ReLU → 2×2 max-pooling (Vinyals et al., 2016, as used by MAML).

    Batch norm always uses the statistics of the batch it sees and keeps no running averages, as in
    MAML's code: a running average across tasks would leak one task's statistics into another, and
    the scale and shift stay ordinary parameters that the inner step adapts.
    """

    def __init__(self, in_channels: int, out_channels: int, generator: torch.Generator | None = None):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.bn_weight = nn.Parameter(torch.ones(out_channels))
        self.bn_bias = nn.Parameter(torch.zeros(out_channels))
        nn.init.xavier_uniform_(self.conv.weight, generator=generator)
        nn.init.zeros_(self.conv.bias)  # type: ignore[arg-type]  # Conv2d(bias=True) has one

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        x = F.batch_norm(x, None, None, self.bn_weight, self.bn_bias, training=True)
        return F.max_pool2d(F.relu(x), 2)


class ConvClassifier(nn.Module):
    """Section 5.2: four conv blocks of 64 filters; 28×28 inputs leave a 64-dim feature, then a linear layer."""

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 1,
        num_filters: int = 64,
        num_blocks: int = 4,
        image_size: int = 28,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        channels = [in_channels] + [num_filters] * num_blocks
        self.blocks = nn.Sequential(
            *(ConvBlock(c_in, c_out, generator) for c_in, c_out in itertools.pairwise(channels))
        )
        side = feature_side(image_size, num_blocks)
        self.head = nn.Linear(num_filters * side * side, num_classes)
        nn.init.xavier_uniform_(self.head.weight, generator=generator)
        nn.init.zeros_(self.head.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """[B, C, H, W] images → [B, num_classes] logits."""
        return self.head(self.blocks(images).flatten(1))


def feature_side(image_size: int, num_blocks: int) -> int:
    """The side of the feature map after ``num_blocks`` 2×2 poolings (each floors an odd side)."""
    for _ in range(num_blocks):
        image_size //= 2
    return image_size


def conv_classifier_size(
    num_classes: int, in_channels: int, num_filters: int, image_size: int, num_blocks: int = 4
) -> tuple[int, int]:
    """(parameters, floats kept per image for the backward pass) of a ``ConvClassifier``, without building it:
    a memory check must refuse ``num_filters=10**6`` before allocating it. Per image each block keeps its
    convolution's, batch norm's and ReLU's outputs and the pooled map; the input image too."""
    channels = [in_channels] + [num_filters] * num_blocks
    parameters = sum(c_in * c_out * 9 + 3 * c_out for c_in, c_out in itertools.pairwise(channels))
    parameters += num_filters * feature_side(image_size, num_blocks) ** 2 * num_classes + num_classes
    activations, side = in_channels * image_size**2, image_size
    for _ in range(num_blocks):
        activations += 3 * num_filters * side**2 + num_filters * (side // 2) ** 2
        side //= 2
    return parameters, activations
