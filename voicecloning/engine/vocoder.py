"""The HiFiGAN waveform decoder as 2-D channels-last convolutions: the layout oneDNN computes fastest on CPU.

A 1-D convolution on CPU goes through oneDNN as a 2-D one over a plain
``[B, C, T]`` tensor; oneDNN computes in a channels-last layout, so every
one of the decoder's ~80 convolutions reorders its input and output around
the arithmetic. In bf16 those copies took as long as the convolutions
themselves (``aten::copy_`` 48 % of the decoder's time, measured). Here each
convolution is the same kernel as a ``(1, K)`` 2-D convolution and the
activations stay ``[B, C, 1, T]`` in channels-last memory from the first
layer to the last, so nothing is reordered: 1.7-9x faster per convolution
in bf16, with identical bf16 results (see docs/PERFORMANCE.md).

Same arithmetic as coqui's ``HifiganGenerator.forward`` (weight norm already
folded): ``conv_pre`` (+ speaker conditioning), then per upsampling stage
leaky ReLU, transposed convolution, (+ conditioning), the mean of the
residual blocks; then leaky ReLU, ``conv_post``, tanh.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

LRELU_SLOPE = 0.1  # coqui's hifigan_generator.LRELU_SLOPE
CHANNELS_LAST = torch.channels_last


def conv2d(conv: nn.Conv1d | nn.ConvTranspose1d, dtype: torch.dtype) -> nn.Module:
    """The same convolution as a ``(1, K)`` 2-D one, weights in ``dtype`` and channels-last memory."""
    transposed = isinstance(conv, nn.ConvTranspose1d)
    kind = nn.ConvTranspose2d if transposed else nn.Conv2d
    extra = {"output_padding": (0, conv.output_padding[0])} if transposed else {}
    out = kind(
        conv.in_channels,
        conv.out_channels,
        (1, conv.kernel_size[0]),
        stride=(1, conv.stride[0]),
        padding=(0, conv.padding[0]),  # type: ignore[index]
        dilation=(1, conv.dilation[0]),
        groups=conv.groups,
        bias=conv.bias is not None,
        device="meta",
        **extra,
    )
    out.weight = nn.Parameter(conv.weight.detach()[:, :, None, :].to(dtype), requires_grad=False)
    if conv.bias is not None:
        out.bias = nn.Parameter(conv.bias.detach().to(dtype), requires_grad=False)
    return out.to(memory_format=CHANNELS_LAST)


def convs2d(convs: nn.ModuleList, dtype: torch.dtype) -> nn.ModuleList:
    return nn.ModuleList(conv2d(conv, dtype) for conv in convs)


class ResBlock(nn.Module):
    """coqui's ResBlock1 (``convs1`` and ``convs2`` pairs) or ResBlock2 (``convs`` alone), channels-last."""

    def __init__(self, block: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        pairs = hasattr(block, "convs1")
        self.first = convs2d(block.convs1 if pairs else block.convs, dtype)
        self.second = convs2d(block.convs2, dtype) if pairs else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for index, conv in enumerate(self.first):
            xt = conv(F.leaky_relu(x, LRELU_SLOPE))
            if self.second is not None:
                xt = self.second[index](F.leaky_relu(xt, LRELU_SLOPE))
            x = xt + x
        return x


WINDOW = 256
CONTEXT = 16


def windows(length: int, window: int = WINDOW, context: int = CONTEXT) -> list[tuple[int, int, int, int]]:
    """(lo, hi, start, end): input ``[lo, hi)`` is decoded and its part for ``[start, end)`` kept."""
    out = []
    for start in range(0, length, window):
        end = min(start + window, length)
        if start == 0:
            lo, hi = 0, window + context
        elif end == length:
            lo, hi = length - window - context, length
        else:
            lo, hi = start - context, start + window + context
            if hi > length:
                lo, hi = length - window - 2 * context, length
        out.append((lo, hi, start, end))
    return out


class ChannelsLastGenerator(nn.Module):
    """A drop-in ``waveform_decoder``: ``forward(x [B, C, T], g [B, G, 1]) -> [B, 1, T']`` float32."""

    def __init__(self, generator: Any, dtype: torch.dtype) -> None:
        super().__init__()
        if hasattr(generator, "lin_pre"):
            raise ValueError("a HiFiGAN with a linear pre-layer is not supported in channels-last form")
        self.dtype = dtype
        self.num_kernels = generator.num_kernels
        self.conv_pre = conv2d(generator.conv_pre, dtype)
        self.cond_layer = conv2d(generator.cond_layer, dtype) if hasattr(generator, "cond_layer") else None
        self.ups = convs2d(generator.ups, dtype)
        self.conds = convs2d(generator.conds, dtype) if generator.cond_in_each_up_layer else None
        self.resblocks = nn.ModuleList(ResBlock(block, dtype) for block in generator.resblocks)
        self.conv_post = conv2d(generator.conv_post, dtype)
        self.hop = 1
        for up in generator.ups:
            self.hop *= up.stride[0]

    def forward(self, x: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        if x.dim() == 2:  # coqui's HifiDecoder squeezes a batch of one after resampling
            x = x.unsqueeze(0)
        rows = [self.row(x[i : i + 1], None if g is None else g[i : i + 1]) for i in range(x.shape[0])]
        return torch.cat(rows)

    def row(self, x: torch.Tensor, g: torch.Tensor | None) -> torch.Tensor:
        """One row in windows of fixed shapes (see ``windows``), joined."""
        length = x.shape[-1]
        if length < WINDOW + CONTEXT:
            padded = F.pad(x, (0, WINDOW + CONTEXT - length))
            return self.window(padded, g)[..., : length * self.hop]
        pieces = []
        for lo, hi, start, end in windows(length):
            pieces.append(self.window(x[..., lo:hi], g)[..., (start - lo) * self.hop : (end - lo) * self.hop])
        return torch.cat(pieces, dim=-1)

    def window(self, x: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        o = self.conv_pre(x.unsqueeze(2).to(self.dtype).contiguous(memory_format=CHANNELS_LAST))
        g4 = None if g is None else g.unsqueeze(2).to(self.dtype)
        if self.cond_layer is not None and g4 is not None:
            o = o + self.cond_layer(g4)
        for stage, up in enumerate(self.ups):
            o = up(F.leaky_relu(o, LRELU_SLOPE))
            if self.conds is not None and g4 is not None:
                o = o + self.conds[stage](g4)
            blocks = self.resblocks[stage * self.num_kernels : (stage + 1) * self.num_kernels]
            z_sum = blocks[0](o)
            for block in blocks[1:]:
                z_sum = z_sum + block(o)
            o = z_sum / self.num_kernels
        o = torch.tanh(self.conv_post(F.leaky_relu(o)))  # coqui: the default slope (0.01) here
        return o.squeeze(2).float()
