"""What an accelerator is, and the one reading of it every cost path takes.

Start with `types` (the frozen `Hardware`: PE array, memory levels, links, special-function units, host CPU, cost
options) and `design.design_of` (roles, link bandwidths, capacities; nothing else reads the raw levels). Designs are
built from YAML by `tstack.spec.hardware.load_hardware`. `dma_model` predicts a DMA's sustained bandwidth from its
design (Little's law).
"""

from tstack.hardware.design import Design, design_of
from tstack.hardware.types import (
    ARRAY,
    ActivationUnits,
    CostOptions,
    Dataflow,
    FillDrain,
    Hardware,
    HostCPU,
    L2Tiling,
    Link,
    MemoryLevel,
    NormalizationUnit,
    PartialSums,
    PEArray,
    Tensor,
)

__all__ = [
    "ARRAY",
    "ActivationUnits",
    "CostOptions",
    "Dataflow",
    "Design",
    "FillDrain",
    "Hardware",
    "HostCPU",
    "L2Tiling",
    "Link",
    "MemoryLevel",
    "NormalizationUnit",
    "PEArray",
    "PartialSums",
    "Tensor",
    "design_of",
]
