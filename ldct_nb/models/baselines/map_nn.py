"""MAP-NN (Shan et al., Nature Machine Intelligence 2019): modularised adaptive processing.

``modules`` identical-in-design conveying-path encoder-decoders (CPCE-2D,
each with its own weights) in series; each module refines the previous
output, ``x_t = ReLU(x_{t-1} + f_t(x_{t-1}))``, so every intermediate
``x_t`` is a denoised image (the radiologist picks the depth). LIDnet uses 3
modules; that is our default. Critic: WGAN-VGG's
(:class:`~ldct_nb.models.baselines.common.WGANCritic`). Presets ``paper``
(MAP-NN's composite loss) and ``lidnet`` (LIDnet appendix A) share the
networks: :mod:`ldct_nb.train.methods.map_nn`.
"""
from __future__ import annotations

import torch
from torch import nn

from ldct_nb.models.baselines.common import check_image, check_preset
from ldct_nb.models.baselines.cpce import CPCE

PRESETS = ("paper", "lidnet")


class MAPNN(nn.Module):
    """``modules`` CPCE-2D modules in series; :meth:`stages` returns every module's output."""

    def __init__(self, modules: int = 3, width: int = 32):
        super().__init__()
        self.stages_ = nn.ModuleList(CPCE(width, residual=True) for _ in range(modules))

    def stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        check_image(x, "MAPNN")
        outs = []
        for m in self.stages_:
            x = m(x)
            outs.append(x)
        return outs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(x)[-1]


def build_generator(preset: str = "paper", **kwargs) -> MAPNN:
    check_preset("map_nn", preset, PRESETS)
    return MAPNN(**kwargs)
