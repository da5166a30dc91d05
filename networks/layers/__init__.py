"""Layers, each with its forward and its backward side by side: dense (:mod:`.dense`) and conv + max pool (:mod:`.conv`).

The network specs (:class:`~networks.mlp.MLP`, :class:`~networks.cnn.CNN`)
only lay out their flat genomes and chain these layers; the maths lives here,
short enough to check against the formulas, with finite-difference gradient
checks in the tests. Activations are in :mod:`networks.activations`.
"""

from networks.layers.conv import (
    ConvBlock,
    ConvGeometry,
    col2im_add,
    conv_pool_backward,
    conv_pool_forward,
    im2col,
    pad_input,
    unpad_gradient,
)
from networks.layers.dense import (
    DenseRecord,
    check_dropout,
    dense_backward,
    dense_forward,
    dense_stack_forward,
    dense_train_backward,
    dense_train_forward,
    dropout_mask,
)

__all__ = [
    "ConvBlock",
    "ConvGeometry",
    "DenseRecord",
    "check_dropout",
    "col2im_add",
    "conv_pool_backward",
    "conv_pool_forward",
    "dense_backward",
    "dense_forward",
    "dense_stack_forward",
    "dense_train_backward",
    "dense_train_forward",
    "dropout_mask",
    "im2col",
    "pad_input",
    "unpad_gradient",
]
