"""The CNN front end (resize, scale, the static conv stack) batched over every (individual, env) pair of a batch.

The plain path (:func:`agents.policies.networks.preprocess_images` and
:func:`agents.policies.networks.conv_features`, individual by individual) is the reference; this one computes
the same numbers to float32 rounding with a few kernel calls for the whole batch:

* one widening copy of all P x E frames into a float32 buffer that keeps their (H, W, C) layout, then
  torch's bilinear resize to 84x84 (``align_corners=False``) on all of them at once, channels-last;
* with numba installed (``pip install "hebb-gym[speed]"``) and the car's conv stack (k3 s1, k5 s2): the
  scaling to [0, 1], both convolutions, the poolings and ``tanh`` for all P x E frames in one compiled call,
  :func:`agents.policies.conv_kernel.conv_stack`, each frame with its individual's weights, written straight
  into the feature buffer;
* otherwise torch's kernels: the scaling after the resize (on 84x84 pixels instead of the frame's), then each
  individual's two convolutions over its E frames (its weights are its own), each pooled straight into a
  buffer of the whole batch, and ``tanh`` once per layer for all pairs.

Buffers are made once per (P, E). An individual's features stay bit for bit independent of its batch mates:
the copy and the resize (per frame) are element-wise; the compiled stack runs the same loops on every frame;
on torch's path the scaling and the pooling are element-wise, each individual's convolutions are calls of
the same shapes whatever P is, and ``tanh`` runs on row-padded buffers
(:func:`agents.policies.networks.activation_buffer`), so every row is vectorised alike.

``HEBB_GYM_FAST_CAR=0`` in the environment (read when a batch is made; :mod:`hebb_gym.fast_car`) selects the
plain path instead, and with it torch's plastic update instead of the fused one
(:mod:`agents.policies.fused_update`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from agents.policies import conv_kernel
from agents.policies.networks import CAR_IMAGE_SIZE, NetSpec, activation_buffer, max_pool2
from hebb_gym.fast_car import ENV_VAR, fast_path_enabled

__all__ = ["ENV_VAR", "ImageFeatures", "fast_path_enabled"]  # the switch is hebb_gym.fast_car's, re-exported


class ImageFeatures:
    """Frames ``(P, E, H, W, C)`` -> conv features ``(P, E, F)`` for P individuals' static conv weights.

    ``conv_weights[p]``: individual p's conv weight tensors (torch layout), as
    :meth:`agents.policies.batch.PolicyBatch._split_conv_weights` makes them. ``compiled``: run the conv stack
    with :mod:`agents.policies.conv_kernel` (True; ValueError where numba is missing or the stack is not the
    car's) or with torch's kernels (False); None (default): compiled wherever it can be. The returned features
    live in a buffer of this object, overwritten by the next call.
    """

    def __init__(
        self, spec: NetSpec, conv_weights: list[list[torch.Tensor]], n_envs: int, compiled: bool | None = None
    ) -> None:
        if spec.kind != "cnn":
            raise ValueError(f"spec.kind={spec.kind!r}; accepted: 'cnn' (an image policy)")
        if compiled is not None and not isinstance(compiled, bool):
            raise TypeError(f"compiled={compiled!r}; accepted: True, False or None")
        can = conv_kernel.AVAILABLE and conv_kernel.fits(spec.conv_shapes, spec.conv_strides)
        if compiled and not can:
            raise ValueError(
                "compiled=True needs numba (pip install \"hebb-gym[speed]\") and the car's conv stack "
                f"(k3 s1, k5 s2); numba {'is' if conv_kernel.AVAILABLE else 'is not'} installed, "
                f"conv shapes {spec.conv_shapes}, strides {spec.conv_strides}"
            )
        #: Whether the conv stack (scaling included) runs as :func:`agents.policies.conv_kernel.conv_stack`, one
        #: compiled call for all frames, instead of torch's kernels individual by individual.
        self.compiled = can if compiled is None else compiled
        self.spec = spec
        self.n_individuals = len(conv_weights)
        self.n_envs = int(n_envs)
        self.conv_weights = conv_weights
        h, w, c = spec.obs_shape
        n = self.n_individuals * self.n_envs
        size = CAR_IMAGE_SIZE
        self._low, high = spec.pixel_range
        self._span = high - self._low
        self._resize = (h, w) != (size, size)
        self._frames = torch.empty(n, h, w, c)  # float32 frames, (H, W, C): channels-last for the resize and convs
        ch1 = spec.conv_shapes[0][0]
        self._features = activation_buffer(self.n_individuals, self.n_envs, spec.n_features)
        if self.compiled:  # the static weights, stacked per layer (copies: nothing edits them after the split)
            self._w1 = np.stack([w[0].numpy() for w in conv_weights])
            self._w2 = np.stack([w[1].numpy() for w in conv_weights])
            self._work = conv_kernel.workspace(c, ch1)
            self._out = self._features.numpy()  # a view: the kernel writes the features in place
            self._checked = False
        else:  # pooled activations, rows padded so tanh treats every row alike whatever n is
            s1 = (size - spec.conv_shapes[0][-1]) // spec.conv_strides[0] + 1
            s1 //= 2
            self._pool1 = activation_buffer(n, ch1, s1, s1)
            side = math.isqrt(spec.n_features // spec.conv_shapes[-1][0])
            self._maps = _as_maps(self._features, spec.conv_shapes[-1][0], side)  # the features as the last maps

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``(P, E, F)`` float32 of frames ``x (P, E, H, W, C)`` (any real dtype)."""
        return self.conv_stack(self.resize(x))

    def resize(self, x: torch.Tensor) -> torch.Tensor:
        """Frames ``(P, E, H, W, C)`` -> ``(P * E, C, 84, 84)`` float32 pixel values, not scaled yet.

        One widening copy into a buffer of this object, then torch's bilinear resize (``align_corners=False``)
        of all frames at once; channels-last memory (the buffer itself where the frames are 84x84 already).
        """
        frames = self._frames
        frames.copy_(x.reshape(self.n_individuals * self.n_envs, *x.shape[2:]))  # one widening copy for all frames
        images = frames.permute(0, 3, 1, 2)  # NCHW view of channels-last memory
        if self._resize:  # scaling after the resize touches fewer pixels
            size = CAR_IMAGE_SIZE
            images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
        return images

    def conv_stack(self, images: torch.Tensor) -> torch.Tensor:
        """Resized frames (from :meth:`resize`) -> features ``(P, E, F)``: the scaling to [0, 1] (torch's path
        scales ``images`` in place), the convolutions, the poolings and ``tanh``."""
        if self.compiled:
            arr = images.numpy()
            if not self._checked:  # once: every later call gets arrays of the same shapes, dtypes and layouts
                conv_kernel.check_args(arr, self._w1, self._w2, self.n_envs, self._out, self._work)
                self._checked = True
            conv_kernel.conv_stack(arr, self._w1, self._w2, self.n_envs, self._low, self._span, self._out, self._work)
            return self._features
        if self._low:
            images.sub_(self._low)
        images.div_(self._span)
        p, e = self.n_individuals, self.n_envs
        (s_1, s_2) = self.spec.conv_strides
        w = self.conv_weights
        pooled, feats = self._pool1, self._features
        maps = self._maps
        # each individual's convolutions (its own weights), pooled straight into the batch's buffers
        for q in range(p):
            max_pool2(F.conv2d(images[q * e : (q + 1) * e], w[q][0], stride=s_1), out=pooled[q * e : (q + 1) * e])
        torch.tanh_(pooled)
        for q in range(p):
            max_pool2(F.conv2d(pooled[q * e : (q + 1) * e], w[q][1], stride=s_2), out=maps[q * e : (q + 1) * e])
        torch.tanh_(feats)
        return feats


def _as_maps(features: torch.Tensor, channels: int, side: int) -> torch.Tensor:
    """The (P, E, F) row-padded feature buffer seen as (P * E, channels, side, side) maps (a view)."""
    p, e, _ = features.shape
    s = features.stride()
    return features.as_strided((p * e, channels, side, side), (s[1], side * side, side, 1))

