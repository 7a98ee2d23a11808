"""7-loop convolutions (N, K, C, P, Q, R, S) on a weight-stationary array with one on-chip tile level: the shapes
and mappings, their cost (the matmul model's hardware reading and options), and the mappers.

Entry points:

* `ConvShape`, `ConvMapping` (`loopnest`): a convolution and a one-tile mapping of it.
* `evaluate_conv`, `conv_costs` (`cost`): the cost of one mapping, or of an array of them at once.
* `exhaustive_conv`, `random_conv`, `conv_mapspace` (`mappers`): search the mapspace.
"""

from tstack.mapping.conv.cost import conv_costs, evaluate_conv
from tstack.mapping.conv.loopnest import ConvMapping, ConvShape
from tstack.mapping.conv.mappers import ConvMapperResult, conv_mapspace, exhaustive_conv, random_conv

__all__ = [
    "ConvMapperResult",
    "ConvMapping",
    "ConvShape",
    "conv_costs",
    "conv_mapspace",
    "evaluate_conv",
    "exhaustive_conv",
    "random_conv",
]
