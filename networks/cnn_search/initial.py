"""Initial genomes of a CNN search space: random architectures and He/Glorot-initialised weight slabs."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from networks.activations import ACTIVATIONS

if TYPE_CHECKING:
    from networks.cnn_search.space import CNNSearchSpace


def _std(space: CNNSearchSpace, fan_in: int, fan_out: int) -> float:
    """He's std for rectifiers, Glorot's for the saturating ones (the activation table's ``he_init``, as networks.cnn)."""
    return math.sqrt(2.0 / fan_in) if ACTIVATIONS[space.activation].he_init else math.sqrt(2.0 / (fan_in + fan_out))


def reinit_block(space: CNNSearchSpace, genome: np.ndarray, slot: int, rng: np.random.Generator) -> None:
    """Fresh weights (He/Glorot for the fan-in it has in ``genome``'s architecture) and zero biases in a block slot's slab, in place.

    A slot that is not active gets the fan-in it would have if activated.
    """
    arch = space.architecture(genome[: space.n_arch_genes])
    channels = space.input_shape[0]
    for s, filters, _, _ in arch.blocks:
        if s >= slot:
            break
        channels = filters
    genes = genome[: space.n_arch_genes]
    n_f, n_k = len(space.filter_choices), len(space.kernel_choices)
    kernel = space.kernel_choices[int(np.clip(np.rint(genes[space.block_gene(slot, "kernel")]), 0, n_k - 1))]
    filters = space.filter_choices[int(np.clip(np.rint(genes[space.block_gene(slot, "filters")]), 0, n_f - 1))]
    w_off, shape, b_off, b_size = space.block_region(slot)
    std = _std(space, channels * kernel * kernel, filters * kernel * kernel)
    genome[w_off : w_off + math.prod(shape)] = rng.normal(0.0, std, size=math.prod(shape))
    genome[b_off : b_off + b_size] = 0.0


def reinit_dense(space: CNNSearchSpace, genome: np.ndarray, position: int, rng: np.random.Generator) -> None:
    """Fresh weights and zero biases in dense position ``position``'s slab (fan-in from ``genome``'s architecture), in place."""
    cnn = space.decoded(space.architecture(genome[: space.n_arch_genes])).cnn
    if position < len(cnn.dense_shapes):
        fan_in, fan_out = cnn.dense_shapes[position]
    else:
        fan_in, fan_out = (math.prod(cnn.feature_shape) if position == 0 else space.u_max), space.u_max
    w_off, shape, b_off, b_size = space.dense_region(position)
    genome[w_off : w_off + math.prod(shape)] = rng.normal(0.0, _std(space, fan_in, fan_out), size=math.prod(shape))
    genome[b_off : b_off + b_size] = 0.0


def random_architecture_genes(space: CNNSearchSpace, rng: np.random.Generator) -> np.ndarray:
    """Architecture genes ``(n_arch_genes,)`` of a random architecture within the limits (>= 1 block)."""
    genes = np.zeros(space.n_arch_genes)
    n_blocks = int(rng.integers(1, space.max_blocks + 1))
    active = np.sort(rng.choice(space.max_blocks, size=n_blocks, replace=False))
    for s in range(space.max_blocks):
        genes[space.block_gene(s, "active")] = 1.0 if s in active else 0.0
        genes[space.block_gene(s, "filters")] = rng.integers(len(space.filter_choices))
        genes[space.block_gene(s, "kernel")] = rng.integers(len(space.kernel_choices))
        genes[space.block_gene(s, "pool")] = rng.integers(2)
    genes[space.dense_count_gene] = rng.integers(space.max_dense + 1)
    for p in range(space.max_dense):
        genes[space.dense_width_gene(p)] = rng.integers(len(space.dense_choices))
    return genes


def init_params(space: CNNSearchSpace, rng: np.random.Generator, n: int = 1) -> np.ndarray:
    """``n`` genomes ``(n, n_params)``: random architectures and a He/Glorot-initialised slab, zero biases.

    Every slab region gets the scale its layer's fan-in calls for in that
    genome's architecture (or would, if it were activated).
    """
    out = np.zeros((n, space.n_params))
    for genome in out:
        genome[: space.n_arch_genes] = random_architecture_genes(space, rng)
        for slot in range(space.max_blocks):
            reinit_block(space, genome, slot, rng)
        for position in range(space.max_dense + 1):
            reinit_dense(space, genome, position, rng)
    return out
