"""The two network shapes of the papers and their batched building blocks (per-individual weights).

* quadruped (vector observation): MLP ``obs -> 128 -> 64 -> act``, tanh everywhere, no bias;
* car (96x96x3 image): 84x84 resize, conv(3->6, k3) tanh, maxpool 2, conv(6->8, k5, s2) tanh,
  maxpool 2, flatten (648), then dense ``648 -> 128 -> 64 -> out`` (tanh hidden, linear output
  mapped to the action space: steer tanh, gas sigmoid, brake sigmoid; Discrete: argmax).

The dense layers run batched over ``(P, E)`` (P individuals, each with its own weights, times E
environments) with :func:`row_dot` and :func:`activation_buffer`, which make an individual's numbers
independent, bit for bit, of how many others share its batch; the convolutions run per individual.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "CAR_IMAGE_SIZE",
    "HIDDEN",
    "ActionHead",
    "NetSpec",
    "activation_buffer",
    "conv_features",
    "max_pool2",
    "preprocess_images",
    "row_dot",
    "spec_from_spaces",
]

#: Size the car frames are resized to before the convolutions (as in the original code).
CAR_IMAGE_SIZE = 84
#: Hidden widths of the dense part of both networks.
HIDDEN = (128, 64)


@dataclass(frozen=True)
class NetSpec:
    """Shapes of one network: the static conv stack (car only) and the dense layers ``(out, in)``."""

    kind: str  # "mlp" or "cnn"
    obs_shape: tuple[int, ...]
    n_features: int  # input width of the first dense layer
    n_out: int
    conv_shapes: tuple[tuple[int, ...], ...]  # torch conv weight shapes (out_ch, in_ch, kh, kw)
    conv_strides: tuple[int, ...]
    dense_shapes: tuple[tuple[int, int], ...]  # (out, in) per dense layer
    output_tanh: bool  # tanh on the last dense layer (MLP) or raw (car: mapped by the action head)
    pixel_range: tuple[float, float] = (0.0, 255.0)  # images: the pixel values mapped to [0, 1]

    @property
    def num_synapses(self) -> int:
        """Number of dense-layer synapses (the plastic ones in a Hebbian network)."""
        return sum(o * i for o, i in self.dense_shapes)

    @property
    def num_conv_params(self) -> int:
        """Number of static convolution weights (0 for the MLP)."""
        return sum(math.prod(s) for s in self.conv_shapes)


def _conv_out(size: int, k: int, s: int) -> int:
    return (size - k) // s + 1


def spec_from_spaces(observation_space: gym.Space, action_space: gym.Space) -> NetSpec:
    """The network for a pair of spaces: a 1-D Box observation gives the MLP, an HxWx3 image the CNN."""
    if not isinstance(observation_space, gym.spaces.Box):
        raise TypeError(
            f"observation_space={observation_space!r} is not supported; accepted: a 1-D Box (vector) "
            "or an (H, W, C) Box image"
        )
    if isinstance(action_space, gym.spaces.Discrete):
        n_out = int(action_space.n)
    elif isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
        n_out = int(action_space.shape[0])
    else:
        raise TypeError(f"action_space={action_space!r} is not supported; accepted: a 1-D Box or Discrete")
    shape = tuple(int(s) for s in observation_space.shape)
    if len(shape) == 1:
        h1, h2 = HIDDEN
        return NetSpec("mlp", shape, shape[0], n_out, (), (), ((h1, shape[0]), (h2, h1), (n_out, h2)), True)
    if len(shape) == 3 and shape[2] in (1, 3, 4):
        channels = shape[2]
        size = CAR_IMAGE_SIZE
        s = _conv_out(size, 3, 1) // 2
        s = _conv_out(s, 5, 2) // 2
        n_feat = 8 * s * s
        h1, h2 = HIDDEN
        return NetSpec(
            "cnn",
            shape,
            n_feat,
            n_out,
            ((6, channels, 3, 3), (8, 6, 5, 5)),
            (1, 2),
            ((h1, n_feat), (h2, h1), (n_out, h2)),
            False,
            _pixel_range(observation_space),
        )
    raise TypeError(
        f"observation_space with shape {shape} is not supported; accepted: (n,) vectors or (H, W, C) images "
        "with C = 1, 3 or 4 channels"
    )


def _pixel_range(space: gym.spaces.Box) -> tuple[float, float]:
    """The range of an image space's pixels: its bounds where finite, else 0..255 (uint8) or 0..1."""
    low, high = float(np.min(space.low)), float(np.max(space.high))
    if np.isfinite(low) and np.isfinite(high) and high > low:
        return low, high
    return (0.0, 255.0) if space.dtype == np.uint8 else (0.0, 1.0)


def preprocess_images(obs: torch.Tensor, low: float = 0.0, high: float = 255.0) -> torch.Tensor:
    """``(B, H, W, C)`` frames with pixel values in [low, high] -> ``(B, C, 84, 84)`` float32 in [0, 1], bilinear."""
    x = obs.permute(0, 3, 1, 2).to(torch.float32, copy=True)  # a copy: the scaling below is in place
    x = x.div_(255.0) if (low, high) == (0.0, 255.0) else x.sub_(low).div_(high - low)
    if x.shape[-2:] != (CAR_IMAGE_SIZE, CAR_IMAGE_SIZE):
        x = F.interpolate(x, size=(CAR_IMAGE_SIZE, CAR_IMAGE_SIZE), mode="bilinear", align_corners=False)
    return x


def conv_features(
    images: torch.Tensor, conv_weights: list[torch.Tensor], strides: tuple[int, ...]
) -> torch.Tensor:
    """Static conv stack of one individual: images ``(E, 3, 84, 84)`` -> features ``(E, 648)``."""
    x = images
    for w, s in zip(conv_weights, strides):
        # tanh is monotonic, so pooling first gives the same result at a quarter of the tanh cost
        x = torch.tanh(max_pool2(F.conv2d(x, w, stride=s)))
    return x.reshape(x.shape[0], -1)


def max_pool2(x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """2x2 max pooling, stride 2, floor mode: equals ``F.max_pool2d(x, 2)``, several times faster on CPU.

    ``out``: a tensor (or view) of the pooled shape to write into; returned."""
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    top = torch.maximum(x[..., 0:h:2, 0:w:2], x[..., 0:h:2, 1:w:2])
    bottom = torch.maximum(x[..., 1:h:2, 0:w:2], x[..., 1:h:2, 1:w:2])
    return torch.maximum(top, bottom) if out is None else torch.maximum(top, bottom, out=out)


def row_dot(w: torch.Tensor, x: torch.Tensor, work: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out[..., o] = sum_i w[..., o, i] * x[..., i]``, batched over leading dims; returns ``out``.

    Computed as an exact element-wise product into ``work`` (shaped like the broadcast ``w``) and a
    sum along each row, not with BLAS: every row then gets the same bits whatever the batch size (BLAS
    kernels are chosen by shape, so a batched matmul is not invariant to how many individuals share it).
    """
    torch.mul(w, x.unsqueeze(-2), out=work)
    return torch.sum(work, dim=-1, out=out)


def activation_buffer(*shape: int) -> torch.Tensor:
    """An uninitialised float32 tensor ``shape`` whose rows (last dim) are not contiguous with each other.

    Element-wise kernels then loop row by row, so vectorised functions (tanh, sigmoid) treat every
    row alike whatever the number of rows; on a contiguous tensor the vector/scalar split of the flat
    array would move with the batch size and change the last bits.
    """
    return torch.empty(*shape[:-1], shape[-1] + 1)[..., : shape[-1]]


class ActionHead:
    """Maps raw outputs ``(P, E, n_out)`` to actions of the action space, row by row.

    Discrete: the argmax. Box: ``tanh`` squashed and scaled to the bounds, ``mid + half * tanh`` (exactly
    ``tanh`` for bounds -1..1; unbounded entries keep -1..1), then clamped into the space against rounding. The car's 3 outputs: steer tanh, gas and
    brake sigmoid, as in the original code.
    """

    def __init__(self, spec: NetSpec, action_space: gym.Space) -> None:
        self.action_space = action_space
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        self.car = spec.kind == "cnn" and not self.discrete and spec.n_out == 3
        self.tanh_out = not spec.output_tanh and not self.car and not self.discrete
        if not self.discrete:
            low = np.asarray(action_space.low, dtype=np.float64)
            high = np.asarray(action_space.high, dtype=np.float64)
            bounded = np.isfinite(low) & np.isfinite(high)
            self.low = torch.as_tensor(low.astype(np.float32))
            self.high = torch.as_tensor(high.astype(np.float32))
            self.mid = torch.as_tensor(np.where(bounded, (high + low) / 2, 0.0).astype(np.float32))
            self.half = torch.as_tensor(np.where(bounded, (high - low) / 2, 1.0).astype(np.float32))
            self.dtype = action_space.dtype

    def __call__(self, out: torch.Tensor) -> torch.Tensor:
        """Raw outputs -> actions (float, in the Box) or int64 indices (Discrete), as a tensor."""
        if self.discrete:
            return out.argmax(dim=-1) + int(self.action_space.start)
        if self.car:
            a = torch.cat([torch.tanh(out[..., :1]), torch.sigmoid(out[..., 1:])], dim=-1)
            return torch.clamp(a, self.low, self.high)  # one kernel; equals maximum(minimum(a, high), low)
        a = torch.tanh(out) if self.tanh_out else out  # the MLP's last layer is tanh already
        # clamped too: float32 rounding of mid + half can pass a bound by one step, and half-bounded entries
        # (low = 0, high = inf) keep -1..1 clipped into the space
        return torch.clamp(torch.addcmul(self.mid, a, self.half), self.low, self.high)

    def to_numpy(self, actions: torch.Tensor) -> np.ndarray:
        """Mapped actions as a numpy array of the action space's dtype."""
        dtype = self.action_space.dtype if self.discrete else self.dtype
        return actions.numpy().astype(dtype, copy=False)
