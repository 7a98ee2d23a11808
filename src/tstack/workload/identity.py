"""What an op and its operands are in the model, as data: the block and role of an op, the tensor of an operand.

An op's `name` (``layer3.attn.qk``) is a label for people: tables, JSON documents, ``--op`` on the command line. Code
that needs to know where an op sits or what it computes reads these fields instead (`Op.layer`, `Op.block`,
`Op.role`; `Operand.tensor`), so no part of tstack parses a label and a label can be reworded without breaking a
decision somewhere else. Each builder sets them and derives its labels from them.
"""

from __future__ import annotations

from enum import StrEnum


class Block(StrEnum):
    """The part of a model an op belongs to."""

    EMBEDDING = "embedding"  # token / patch embeddings, their type and position adds, their norm, OPT's project_in
    ATTENTION = "attention"  # one layer's attention sub-block: its norm, Q/K/V, RoPE, Q x K^T, softmax, ..., residual
    FFN = "ffn"  # one layer's feed-forward sub-block: its norm, projections, activation, residual
    HEAD = "head"  # after the last layer: final norm, project_out, pooler, LM head; a CNN's pool and classifier
    STEM = "stem"  # a CNN's input stem: the first conv (+ BatchNorm, ReLU) and max-pool
    BOTTLENECK = "bottleneck"  # one ResNet bottleneck block of a conv stage


#: blocks that repeat, one per layer index: an op in one of these has `Op.layer` set, every other op has none
LAYER_BLOCKS = frozenset({Block.ATTENTION, Block.FFN, Block.BOTTLENECK})
#: the blocks of a Transformer layer (the paper's per-layer op tables count these)
TRANSFORMER_LAYER_BLOCKS = frozenset({Block.ATTENTION, Block.FFN})


class OpRole(StrEnum):
    """What an op computes within its block; (layer, block, role) names one op of a workload."""

    # embeddings
    TOKENS = "tokens"  # gather token embedding rows
    PATCHES = "patches"  # ViT's patch-embedding conv
    ADD_TYPES = "add_types"  # BERT's token-type embeddings added
    ADD_POSITIONS = "add_positions"  # learned position embeddings added
    PROJECT_IN = "project_in"  # OPT-350m: embeddings projected up to d_model
    # shared by several blocks
    NORM = "norm"  # LayerNorm / RMSNorm: the embeddings', a sub-block's, or the final one
    RESIDUAL = "residual"  # the residual add closing a sub-block or bottleneck
    # attention
    Q = "q"
    K = "k"
    V = "v"
    ROPE = "rope"
    QK = "qk"  # Q x K^T
    SOFTMAX = "softmax"
    SV = "sv"  # scores x V
    OUT = "out"  # output projection
    # feed-forward
    GATE = "gate"  # SwiGLU's gate projection
    UP = "up"
    ACTIVATION = "activation"  # GELU / ReLU / SwiGLU between up and down
    DOWN = "down"
    # head
    PROJECT_OUT = "project_out"  # OPT-350m: d_model projected back to the embedding width
    POOLER = "pooler"  # BERT / ViT pooler dense layer
    POOLER_ACTIVATION = "pooler_activation"  # its tanh
    LM_HEAD = "lm_head"
    AVGPOOL = "avgpool"
    CLASSIFIER = "classifier"  # a CNN's final fully connected layer
    # CNN stem and bottleneck (the stem uses CONV, BATCHNORM, RELU, MAXPOOL)
    CONV = "conv"
    BATCHNORM = "batchnorm"
    RELU = "relu"
    MAXPOOL = "maxpool"
    CONV1 = "conv1"
    BN1 = "bn1"
    RELU1 = "relu1"
    CONV2 = "conv2"
    BN2 = "bn2"
    RELU2 = "relu2"
    CONV3 = "conv3"
    BN3 = "bn3"
    DOWNSAMPLE = "downsample"  # the projection shortcut of a stage's first block
    DOWNSAMPLE_BN = "downsample_bn"
    RELU3 = "relu3"  # after the residual add


class Tensor(StrEnum):
    """What an operand holds; `Operand.role` says how it is accessed (input, weight, cache, output)."""

    ACTIVATION = "activation"  # the activation an op transforms: a projection's, conv's, pool's or elementwise input
    WEIGHT = "weight"
    BIAS = "bias"
    PARAMETER = "parameter"  # a per-channel parameter vector (LayerNorm gamma / beta, BatchNorm scale / shift)
    QUERY = "query"
    KEY = "key"
    VALUE = "value"
    SCORES = "scores"  # Q x K^T before the softmax
    PROBABILITIES = "probabilities"  # the softmax's output, scores x V's input
    CONTEXT = "context"  # scores x V's output
    OUTPUT = "output"  # every other op's result
