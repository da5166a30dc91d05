"""A CNN search space: the architecture *and* the weights of a CNN in one fixed-length flat genome.

Architecture search (which conv blocks, how many filters, which kernel size,
pooling or not, which dense widths) normally means genomes of varying length.
Here, as for :mod:`networks.neat`, every genome has the *same* length, so it
travels like any other genome of the project: chunked by the evaluators,
shipped by Ray, saved in ``.npz`` checkpoints, scored by tasks through
``forward(genomes, X)``. This follows the "weight slab of the largest
architecture" idea of weight-sharing NAS (ENAS: Pham et al., 2018, "Efficient
Neural Architecture Search via Parameter Sharing", ICML): every possible layer
reads its weights from the corner of a slab sized for the largest choice, so
changing a layer's size keeps the weights the two sizes share (network
morphism-like inheritance, Wei et al., 2016; Elsken et al., 2019, "Efficient
Multi-objective Neural Architecture Search via Lamarckian Evolution", ICLR).

Flat genome layout, ``n_params`` values::

    architecture genes (n_arch_genes = 4 * max_blocks + 1 + max_dense):
        per block slot s (max_blocks):  [active, filters index, kernel index, pool]
        dense count                     (0 .. max_dense hidden layers)
        per dense position p (max_dense): [width index]
    weight slab:
        per block slot s:       W (F_max, C_s, k_max, k_max) row-major, then b (F_max)
                                (C_0 = C input channels, C_s = max(C, F_max) for s >= 1)
        dense position 0:       W (F_max, H, W, U) row-major, then b (U)   (reads the flattened maps)
        dense positions 1..max_dense: W (U, U), then b (U)
    with F_max = max(filter_choices), k_max = max(kernel_choices),
    U = max(max(dense_choices), n_outputs), (C, H, W) = input_shape.

Decoding (a pure function of the genome; any finite float vector decodes):

* Genes are read robustly: a flag is on when ``> 0.5``; an index is rounded
  and clipped into its range. Non-finite architecture genes raise ValueError.
* Conv blocks are the *active slots in slot order* (at least one: when no
  slot is active, slot 0 is used). Removing a block deactivates its slot and
  leaves its weights in place; the other blocks keep theirs. Every block is
  ``conv k x k, stride 1, padding "same" -> activation -> 2 x 2 max pool``;
  the pool is skipped (deterministically) when the map it would pool is
  smaller than 2 x 2, so every architecture fits any input size.
* Dense layers are positional: hidden layer ``p`` (``p < dense count``) and
  then the output layer at position ``dense count``. Position 0 reads the
  flattened maps ``(F, H', W')`` of the last block; its weights are the
  corner ``[:F, :H', :W', :n_out]`` of that slab, so a change of the last
  block's filters or of a dense width keeps every shared weight.
* Conv weights are the corner ``[:F, :C_in, o:o+k, o:o+k]`` of the slot's
  slab with ``o = (k_max - k) // 2``: the first filters, the first input
  channels and the *centre* k x k of the kernel (a 3 x 3 kernel grown to
  5 x 5 keeps its 9 taps at the centre).

A decoded network's flat parameters (layout of :class:`networks.cnn.CNN`) are
one gather ``genome[gather_indices]`` with an index array cached per
architecture; :meth:`CNNSearchSpace.forward` groups a population by
architecture and runs each group through one batched CNN forward.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import ClassVar, NamedTuple

import numpy as np

from networks.activations import ACTIVATIONS, OUTPUT_ACTIVATIONS
from networks.cnn import CNN, ConvBlock
from networks.cnn_search.encoding import encode
from networks.cnn_search.initial import (
    init_params,
    random_architecture_genes,
    reinit_block,
    reinit_dense,
)
from networks.cnn_search.layout import (
    ACTIVE,
    BLOCK_FIELDS,
    FILTERS,
    KERNEL,
    POOL,
    POOL_SIZE,
    Architecture,
    is_int,
)
from networks.spec import CountsParameters, Decodable, HasComplexity, check_dtype, dtype_description


class DecodedArchitecture(NamedTuple):
    """What one architecture costs to build once: the CNN spec and its gather indices into the genome."""

    cnn: CNN
    gather: np.ndarray  # (cnn.n_params,) int64: cnn params = genome[gather]


@dataclass(frozen=True)
class CNNSearchSpace(Decodable, HasComplexity, CountsParameters):
    """Search space of CNN architectures with a weight slab; a network spec over fixed-length genomes.

    The interface matches the other specs (``n_params``, ``n_inputs``,
    ``n_outputs``, ``init_params``, ``forward``, ``predict``, ``describe``), so
    tasks and evaluators use it unchanged. ``n_params`` is the genome length,
    not the size of a decoded network (that is :meth:`complexity`).
    """

    input_shape: tuple[int, int, int]
    n_outputs: int
    max_blocks: int = 3
    filter_choices: tuple[int, ...] = (4, 8, 16, 32)
    kernel_choices: tuple[int, ...] = (3, 5)
    max_dense: int = 2
    dense_choices: tuple[int, ...] = (16, 32, 64)
    activation: str = "relu"
    output_activation: str = "softmax"
    #: what the decoded CNNs compute in (``"float32"``: each group's genomes and the inputs cast once per call)
    dtype: str = "float64"
    # Per-architecture cache of decoded specs and gather indices (not part of the identity).
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)
    _regions: tuple = field(default=(), init=False, repr=False, compare=False, hash=False)
    _length: int = field(default=0, init=False, repr=False, compare=False, hash=False)
    structural_genome: ClassVar[bool] = True  # architecture genes besides the weight slab

    def __post_init__(self) -> None:
        shape = tuple(self.input_shape) if isinstance(self.input_shape, (tuple, list)) else None
        if shape is None or len(shape) != 3 or not all(is_int(v) and v >= 1 for v in shape):
            raise ValueError(f"cnn_search: input_shape = {self.input_shape!r}; must be (channels, height, width), integers >= 1")
        object.__setattr__(self, "input_shape", tuple(int(v) for v in shape))
        if not is_int(self.n_outputs) or self.n_outputs < 1:
            raise ValueError(f"cnn_search: n_outputs = {self.n_outputs!r}; must be an integer >= 1")
        object.__setattr__(self, "n_outputs", int(self.n_outputs))
        if not is_int(self.max_blocks) or self.max_blocks < 1:
            raise ValueError(f"cnn_search: max_blocks = {self.max_blocks!r}; must be an integer >= 1")
        if not is_int(self.max_dense) or self.max_dense < 0:
            raise ValueError(f"cnn_search: max_dense = {self.max_dense!r}; must be an integer >= 0")
        object.__setattr__(self, "max_blocks", int(self.max_blocks))
        object.__setattr__(self, "max_dense", int(self.max_dense))
        for name in ("filter_choices", "kernel_choices", "dense_choices"):
            values = getattr(self, name)
            ok = isinstance(values, (tuple, list)) and len(values) > 0 and all(is_int(v) and v >= 1 for v in values)
            if not ok or len(set(values)) != len(values):
                raise ValueError(f"cnn_search: {name} = {values!r}; must be a non-empty list of distinct integers >= 1")
            object.__setattr__(self, name, tuple(int(v) for v in values))
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"cnn_search: activation = {self.activation!r} is not known; allowed: {sorted(ACTIVATIONS)}")
        if self.output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(
                f"cnn_search: output_activation = {self.output_activation!r} is not known; allowed: {sorted(OUTPUT_ACTIVATIONS)}"
            )
        check_dtype(self.dtype)
        # Checks the activation can sit before a pool (the CNN's own rule), with a clear message now.
        ConvBlock(1, 1, padding="same", activation=self.activation, pool=POOL_SIZE).validate("cnn_search: conv blocks")
        object.__setattr__(self, "_regions", self._build_regions())

    # ------------------------------------------------------------------ layout
    @property
    def n_arch_genes(self) -> int:
        """Architecture genes at the front of the genome."""
        return len(BLOCK_FIELDS) * self.max_blocks + 1 + self.max_dense

    @property
    def f_max(self) -> int:
        return max(self.filter_choices)

    @property
    def k_max(self) -> int:
        return max(self.kernel_choices)

    @property
    def u_max(self) -> int:
        """Width of the dense slabs: the largest hidden width or the output width."""
        return max(max(self.dense_choices), self.n_outputs)

    def block_gene(self, slot: int, name: str) -> int:
        """Index in the genome of a block slot's gene ``name`` (one of :data:`BLOCK_FIELDS`)."""
        return len(BLOCK_FIELDS) * slot + BLOCK_FIELDS.index(name)

    @property
    def dense_count_gene(self) -> int:
        """Index in the genome of the dense-count gene."""
        return len(BLOCK_FIELDS) * self.max_blocks

    def dense_width_gene(self, position: int) -> int:
        """Index in the genome of hidden dense position ``position``'s width gene."""
        return self.dense_count_gene + 1 + position

    def _build_regions(self) -> tuple:
        """Slab regions: per block slot, then per dense position, ``(W offset, W shape, b offset, b size)``."""
        C, H, W = self.input_shape
        F, K, U = self.f_max, self.k_max, self.u_max
        offset = self.n_arch_genes
        regions: list[tuple[int, tuple[int, ...], int, int]] = []
        shape: tuple[int, ...]
        for s in range(self.max_blocks):
            shape = (F, C if s == 0 else max(C, F), K, K)
            regions.append((offset, shape, offset + math.prod(shape), F))
            offset += math.prod(shape) + F
        for p in range(self.max_dense + 1):
            shape = (F, H, W, U) if p == 0 else (U, U)
            regions.append((offset, shape, offset + math.prod(shape), U))
            offset += math.prod(shape) + U
        object.__setattr__(self, "_length", offset)
        return tuple(regions)

    def block_region(self, slot: int) -> tuple[int, tuple[int, ...], int, int]:
        """``(W offset, W slab shape, b offset, b size)`` of block slot ``slot`` in the genome."""
        return self._regions[slot]

    def dense_region(self, position: int) -> tuple[int, tuple[int, ...], int, int]:
        """``(W offset, W slab shape, b offset, b size)`` of dense position ``position`` in the genome."""
        return self._regions[self.max_blocks + position]

    @property
    def n_params(self) -> int:
        """Genome length (architecture genes + the whole weight slab)."""
        return self._length

    @property
    def n_inputs(self) -> int:
        """Input width when flattened: C * H * W."""
        return math.prod(self.input_shape)

    # ------------------------------------------------------------------ decode
    def architecture(self, genome: np.ndarray) -> Architecture:
        """The architecture a genome's genes encode (pooling already resolved against the map sizes)."""
        genes = np.asarray(genome, dtype=np.float64)
        if genes.ndim != 1 or genes.shape[0] not in (self.n_arch_genes, self.n_params):
            raise ValueError(f"cnn_search: expected a genome of shape ({self.n_params},), got {genes.shape}")
        genes = genes[: self.n_arch_genes]
        if not np.all(np.isfinite(genes)):
            raise ValueError("cnn_search: the genome's architecture genes are not finite")
        n_f, n_k, n_d = len(self.filter_choices), len(self.kernel_choices), len(self.dense_choices)
        slots = genes[: len(BLOCK_FIELDS) * self.max_blocks].reshape(self.max_blocks, len(BLOCK_FIELDS))
        active = [s for s in range(self.max_blocks) if slots[s, ACTIVE] > 0.5] or [0]
        _, height, width = self.input_shape
        blocks = []
        for s in active:
            filters = self.filter_choices[int(np.clip(np.rint(slots[s, FILTERS]), 0, n_f - 1))]
            kernel = self.kernel_choices[int(np.clip(np.rint(slots[s, KERNEL]), 0, n_k - 1))]
            pool = POOL_SIZE if slots[s, POOL] > 0.5 and height >= POOL_SIZE and width >= POOL_SIZE else 0
            if pool:
                height, width = height // pool, width // pool
            blocks.append((s, filters, kernel, pool))
        n_hidden = int(np.clip(np.rint(genes[self.dense_count_gene]), 0, self.max_dense))
        hidden = tuple(self.dense_choices[int(np.clip(np.rint(genes[self.dense_width_gene(p)]), 0, n_d - 1))] for p in range(n_hidden))
        return Architecture(tuple(blocks), hidden)

    def decoded(self, arch: Architecture) -> DecodedArchitecture:
        """The CNN spec and gather indices of an architecture (built once, then cached)."""
        hit = self._cache.get(arch)
        if hit is not None:
            return hit
        cnn = CNN(
            input_shape=self.input_shape,
            conv_blocks=tuple(ConvBlock(filters, kernel, 1, "same", self.activation, pool) for _, filters, kernel, pool in arch.blocks),
            output_size=self.n_outputs,
            hidden=arch.hidden,
            activation=self.activation,
            output_activation=self.output_activation,
            dtype=self.dtype,
        )
        parts = []
        channels = self.input_shape[0]
        for (slot, filters, kernel, _), geo in zip(arch.blocks, cnn.geometry):
            w_off, shape, b_off, _ = self.block_region(slot)
            o = (self.k_max - kernel) // 2
            index = np.arange(math.prod(shape), dtype=np.int64).reshape(shape)
            parts.append(w_off + index[:filters, :channels, o : o + kernel, o : o + kernel].ravel())
            parts.append(b_off + np.arange(filters, dtype=np.int64))
            channels = geo.filters
        f_last, h_last, w_last = cnn.feature_shape
        for p, (n_in, n_out) in enumerate(cnn.dense_shapes):
            w_off, shape, b_off, _ = self.dense_region(p)
            index = np.arange(math.prod(shape), dtype=np.int64).reshape(shape)
            corner = index[:f_last, :h_last, :w_last, :n_out] if p == 0 else index[:n_in, :n_out]
            parts.append(w_off + corner.ravel())
            parts.append(b_off + np.arange(n_out, dtype=np.int64))
        gather = np.concatenate(parts)
        assert gather.shape == (cnn.n_params,)
        gather.setflags(write=False)
        decoded = DecodedArchitecture(cnn, gather)
        self._cache[arch] = decoded
        return decoded

    def decode(self, genome: np.ndarray) -> tuple[CNN, np.ndarray]:
        """The CNN spec a genome encodes and its parameters ``(cnn.n_params,)`` (a copy, taken from the slab)."""
        genome = self._genome(genome)
        decoded = self.decoded(self.architecture(genome))
        return decoded.cnn, genome[decoded.gather]

    def gather_indices(self, genome: np.ndarray) -> np.ndarray:
        """Read-only int64 indices ``(cnn.n_params,)`` of the genome entries the decoded CNN uses, in its layout."""
        return self.decoded(self.architecture(self._genome(genome))).gather

    def decode_description(self, genome: np.ndarray) -> dict:
        """JSON-able description of the decoded CNN (its :meth:`CNN.describe`), e.g. for the winner of a run."""
        return self.decoded(self.architecture(self._genome(genome))).cnn.describe()

    def _genome(self, genome: np.ndarray) -> np.ndarray:
        genome = np.asarray(genome, dtype=np.float64)
        if genome.shape != (self.n_params,):
            raise ValueError(f"cnn_search: expected a genome of shape ({self.n_params},), got {genome.shape}")
        return genome

    def _genomes(self, genomes: np.ndarray) -> np.ndarray:
        genomes = np.asarray(genomes)
        if genomes.ndim != 2 or genomes.shape[1] != self.n_params:
            raise ValueError(f"cnn_search: expected genomes of shape (P, {self.n_params}), got {genomes.shape}")
        return genomes

    def group_by_architecture(self, genomes: np.ndarray) -> dict[Architecture, np.ndarray]:
        """Row indices of ``genomes (P, n_params)`` per decoded architecture (first appearance order)."""
        groups: dict[Architecture, list[int]] = {}
        for i, genome in enumerate(self._genomes(genomes)):
            groups.setdefault(self.architecture(genome[: self.n_arch_genes]), []).append(i)
        return {arch: np.asarray(rows, dtype=np.intp) for arch, rows in groups.items()}

    # ------------------------------------------------------------------ encode    # ------------------------------------------------------------------ encode
    def encode(self, spec: CNN, params: np.ndarray, slots: tuple[int, ...] | None = None) -> np.ndarray:
        """The genome of a CNN of this space with parameters ``params`` (see :func:`networks.cnn_search.encoding.encode`)."""
        return encode(self, spec, params, slots)

    # ------------------------------------------------------------ init / run
    def reinit_block(self, genome: np.ndarray, slot: int, rng: np.random.Generator) -> None:
        """Fresh weights and zero biases in a block slot's slab, in place (see :mod:`networks.cnn_search.initial`)."""
        reinit_block(self, genome, slot, rng)

    def reinit_dense(self, genome: np.ndarray, position: int, rng: np.random.Generator) -> None:
        """Fresh weights and zero biases in dense position ``position``'s slab, in place."""
        reinit_dense(self, genome, position, rng)

    def random_architecture_genes(self, rng: np.random.Generator) -> np.ndarray:
        """Architecture genes ``(n_arch_genes,)`` of a random architecture within the limits (>= 1 block)."""
        return random_architecture_genes(self, rng)

    def init_params(self, rng: np.random.Generator, n: int = 1) -> np.ndarray:
        """``n`` genomes ``(n, n_params)``: random architectures and a He/Glorot-initialised slab, zero biases."""
        return init_params(self, rng, n)

    def forward(self, genomes: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Outputs ``(P, B, n_outputs)`` for genomes ``(P, n_params)`` and inputs ``(B, C, H, W)`` or ``(B, C*H*W)``.

        Genomes are grouped by decoded architecture; each group goes through
        its CNN's batched forward in one call. Per-genome inputs
        ``(P, B, ...)`` are accepted too.
        """
        genomes = self._genomes(genomes)
        x = np.asarray(x)
        if self.dtype != "float64":  # cast once here, not once per architecture group
            x = x.astype(self.dtype, copy=False)
        per_genome = x.ndim in (3, 5)
        if per_genome and x.shape[0] != len(genomes):
            raise ValueError(f"cnn_search: per-genome inputs have {x.shape[0]} genomes, there are {len(genomes)}")
        batch = x.shape[1] if per_genome else x.shape[0]
        out = None
        for arch, rows in self.group_by_architecture(genomes).items():
            decoded = self.decoded(arch)
            params = genomes[rows][:, decoded.gather]
            result = decoded.cnn.forward(params, x[rows] if per_genome else x)
            if out is None:
                out = np.empty((len(genomes), batch, self.n_outputs), dtype=result.dtype)
            out[rows] = result
        if out is None:
            out = np.empty((0, batch, self.n_outputs), dtype=self.dtype)
        return out

    def predict(self, genome: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Outputs ``(B, n_outputs)`` of one genome ``(n_params,)``."""
        return self.forward(np.asarray(genome)[None, :], x)[0]

    def used_params(self, params: np.ndarray) -> int:
        """Parameters of the CNN the genome decodes to."""
        return int(self.complexity(np.asarray(params)[None])[0])

    def complexity(self, genomes: np.ndarray) -> np.ndarray:
        """Parameter count ``(P,)`` (int64) of each genome's decoded CNN."""
        genomes = self._genomes(genomes)
        out = np.empty(len(genomes), dtype=np.int64)
        for arch, rows in self.group_by_architecture(genomes).items():
            out[rows] = self.decoded(arch).cnn.n_params
        return out

    # ----------------------------------------------------------- description
    def describe(self) -> dict:
        """JSON-able description, enough to rebuild the space: its settings (the dataclass fields), size and layout."""
        settings = {f.name: getattr(self, f.name) for f in fields(self) if f.init and f.name != "dtype"}
        return {
            "type": "cnn_search",
            **{name: list(value) if isinstance(value, tuple) else value for name, value in settings.items()},
            **dtype_description(self.dtype),
            "n_params": self.n_params,
            "n_arch_genes": self.n_arch_genes,
            "layout": (
                "architecture genes: per block slot [active, filters index, kernel index, pool], dense count, "
                "per dense position [width index]; then the weight slab: per block slot W (F_max, C_s, k_max, k_max), "
                "b (F_max); dense position 0 W (F_max, H, W, U), b (U); dense positions 1.. W (U, U), b (U); "
                "a layer uses the corner of its slab (centre k x k of the kernel)"
            ),
        }

    @classmethod
    def from_description(cls, description: dict) -> CNNSearchSpace:
        """Rebuild from :meth:`describe` output (a setting it lacks takes its default)."""
        return cls(**{f.name: description[f.name] for f in fields(cls) if f.init and f.name in description})
