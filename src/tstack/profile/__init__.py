"""Real measurement: build a model in PyTorch, time it, and break its profiled time into tstack's op classes."""

from tstack.profile.build import Arch, Scope, TorchModel, build_torch_model, pick_arch
from tstack.profile.calibrate import Calibration, calibrate, write_device
from tstack.profile.classify import MATMUL_CLASSES, MEASURED_CLASSES, OpTiming, classify_op
from tstack.profile.compare import ClassComparison, Comparison, compare
from tstack.profile.measure import (
    DeviceUnavailableError,
    ProfileResult,
    WallTime,
    preflight,
    profile,
    profile_model,
)

__all__ = [
    "MATMUL_CLASSES",
    "MEASURED_CLASSES",
    "Arch",
    "Calibration",
    "ClassComparison",
    "Comparison",
    "DeviceUnavailableError",
    "OpTiming",
    "ProfileResult",
    "Scope",
    "TorchModel",
    "WallTime",
    "build_torch_model",
    "calibrate",
    "classify_op",
    "compare",
    "pick_arch",
    "preflight",
    "profile",
    "profile_model",
    "write_device",
]
