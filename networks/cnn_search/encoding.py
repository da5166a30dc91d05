"""Write a plain CNN of a search space into a genome: the inverse of :meth:`CNNSearchSpace.decode`."""

from __future__ import annotations

from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np

from networks.cnn import CNN
from networks.cnn_search.layout import POOL_SIZE

if TYPE_CHECKING:
    from networks.cnn_search.space import CNNSearchSpace


def encode(space: CNNSearchSpace, spec: CNN, params: np.ndarray, slots: tuple[int, ...] | None = None) -> np.ndarray:
    """The genome of a CNN of this space with parameters ``params`` (slab entries it does not use are 0).

    Blocks go to slots ``slots`` (default ``0, 1, ...``, increasing).
    ``decode(encode(spec, params))`` gives back ``spec`` and ``params``
    exactly. ValueError naming the field when the CNN is outside the space.
    """
    params = np.asarray(params, dtype=np.float64)
    if params.shape != (spec.n_params,):
        raise ValueError(f"cnn_search: encode: params must have shape ({spec.n_params},), got {params.shape}")
    for name, want in (
        ("input_shape", space.input_shape),
        ("output_size", space.n_outputs),
        ("activation", space.activation),
        ("output_activation", space.output_activation),
    ):
        if getattr(spec, name) != want:
            raise ValueError(f"cnn_search: encode: the CNN's {name} = {getattr(spec, name)!r}, the space has {want!r}")
    n_blocks = len(spec.conv_blocks)
    slots = tuple(range(n_blocks)) if slots is None else tuple(int(s) for s in slots)
    if len(slots) != n_blocks or any(b <= a for a, b in pairwise(slots)) or slots[0] < 0 or slots[-1] >= space.max_blocks:
        raise ValueError(
            f"cnn_search: encode: {n_blocks} conv block(s) need as many increasing slots in 0..{space.max_blocks - 1}, got {slots}"
        )
    if len(spec.hidden) > space.max_dense:
        raise ValueError(f"cnn_search: encode: {len(spec.hidden)} hidden dense layers; the space allows {space.max_dense}")
    genome = np.zeros(space.n_params)
    for i, (slot, block) in enumerate(zip(slots, spec.conv_blocks)):
        where = f"cnn_search: encode: conv block {i}"
        if block.filters not in space.filter_choices:
            raise ValueError(f"{where}: filters = {block.filters}; allowed {list(space.filter_choices)}")
        if block.kernel_size not in space.kernel_choices:
            raise ValueError(f"{where}: kernel_size = {block.kernel_size}; allowed {list(space.kernel_choices)}")
        if block.stride != 1 or block.padding != "same" or block.activation != space.activation:
            raise ValueError(f"{where}: needs stride 1, padding 'same' and activation {space.activation!r}, got {block.describe()}")
        if block.pool not in (0, POOL_SIZE):
            raise ValueError(f"{where}: pool = {block.pool}; allowed 0 or {POOL_SIZE}")
        genome[space.block_gene(slot, "active")] = 1.0
        genome[space.block_gene(slot, "filters")] = space.filter_choices.index(block.filters)
        genome[space.block_gene(slot, "kernel")] = space.kernel_choices.index(block.kernel_size)
        genome[space.block_gene(slot, "pool")] = 1.0 if block.pool else 0.0
    genome[space.dense_count_gene] = len(spec.hidden)
    for p, width in enumerate(spec.hidden):
        if width not in space.dense_choices:
            raise ValueError(f"cnn_search: encode: hidden layer {p} width {width}; allowed {list(space.dense_choices)}")
        genome[space.dense_width_gene(p)] = space.dense_choices.index(width)
    arch = space.architecture(genome)
    decoded = space.decoded(arch)
    if decoded.cnn != spec:
        # A pool the CNN has but the space would skip (map smaller than 2 x 2) lands here.
        raise ValueError(f"cnn_search: encode: the CNN does not round-trip through the space: {spec.describe()['conv_blocks']}")
    genome[decoded.gather] = params
    return genome
