"""tstack: full-stack optimization of Transformer inference.

The public API: load a model, build its workload, analyze it.
"""

from tstack.api import PAPER_SEQ_LENS, Analysis, analyze, simulate
from tstack.errors import InfeasibleError, SpecError, TstackError, UnsupportedModelError, WorkloadError
from tstack.spec import load_device, load_model, preset_names
from tstack.spec.hardware import load_hardware
from tstack.workload import (
    Convention,
    ModelSpec,
    Op,
    OpClass,
    Phase,
    ResNetSpec,
    Workload,
    WorkloadAnalysis,
    analyze_workload,
    build_workload,
    count_params,
)

__version__ = "0.1.0"

__all__ = [
    "PAPER_SEQ_LENS",
    "Analysis",
    "Convention",
    "InfeasibleError",
    "ModelSpec",
    "Op",
    "OpClass",
    "Phase",
    "ResNetSpec",
    "SpecError",
    "TstackError",
    "UnsupportedModelError",
    "Workload",
    "WorkloadAnalysis",
    "WorkloadError",
    "__version__",
    "analyze",
    "analyze_workload",
    "build_workload",
    "count_params",
    "load_device",
    "load_hardware",
    "load_model",
    "preset_names",
    "simulate",
]
