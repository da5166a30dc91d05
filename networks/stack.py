"""A genome stack bound to its network, for the many forward passes of a rollout.

A control task steps P x E episodes in lockstep: one forward pass of the same
P genomes per step, on per-genome inputs ``(P, E, n_in)``, and the stack
narrows to the genomes with an episode still running. :func:`bind_genomes`
gives the network's own :class:`GenomeStack` when it declares
:class:`~networks.spec.Bindable` (the MLP prepares its weights and buffers
once), else, for a :class:`~networks.spec.Recurrent` network, a
:class:`RecurrentStack` that carries the state from step to step (one episode
per slot for the whole rollout, so the state starts at rest when the stack is
bound), else the generic one, which calls the network's ``forward`` each step.
Either way the outputs are the network's own forward's (or ``step``'s), bit for bit.
"""

from __future__ import annotations

import numpy as np

from networks.spec import Bindable, NetworkSpec, Recurrent, compute_dtype


class GenomeStack:
    """Genomes ``(P, n_params)`` bound to their network: ``forward`` on per-genome inputs, ``keep`` to drop rows."""

    def __init__(self, network: NetworkSpec, genomes: np.ndarray) -> None:
        self.network = network
        self.genomes = genomes

    def __len__(self) -> int:
        return len(self.genomes)

    def forward(self, inputs: np.ndarray) -> np.ndarray:
        """Outputs ``(P, E, n_out)`` for inputs ``(P, E, n_in)``; may be a buffer reused by the next call."""
        return np.asarray(self.network.forward(self.genomes, inputs))

    def keep(self, rows: np.ndarray) -> None:
        """Drop every genome but ``rows`` (indices into the current stack)."""
        self.genomes = self.genomes[rows]


class RecurrentStack(GenomeStack):
    """Genomes of a :class:`~networks.spec.Recurrent` network: each ``forward`` is one time step, the state carried over."""

    def __init__(self, network: NetworkSpec, genomes: np.ndarray) -> None:
        super().__init__(network, genomes)
        self.state: np.ndarray | None = None

    def forward(self, inputs: np.ndarray) -> np.ndarray:
        """Outputs ``(P, E, n_out)`` of the next step on inputs ``(P, E, n_in)``; the first call starts from rest."""
        network: Recurrent = self.network  # type: ignore[assignment]
        if self.state is None:
            self.state = network.initial_state(len(self.genomes), inputs.shape[-2])
        self.state, outputs = network.step(self.genomes, self.state, inputs)
        return outputs

    def keep(self, rows: np.ndarray) -> None:
        """Drop every genome but ``rows``, with its state."""
        super().keep(rows)
        if self.state is not None:
            self.state = self.state[rows]


def bind_genomes(network: NetworkSpec, genomes: np.ndarray) -> GenomeStack:
    """The network's own bound stack when it declares :class:`~networks.spec.Bindable`; a stateful one for a
    :class:`~networks.spec.Recurrent` network; else the generic one."""
    if isinstance(network, Bindable):
        return network.bind(genomes)
    dtype = compute_dtype(network)
    if dtype != "float64":
        genomes = np.asarray(genomes, dtype=dtype)  # cast once per rollout, not once per step
    if isinstance(network, Recurrent):
        return RecurrentStack(network, genomes)
    return GenomeStack(network, genomes)
