"""End-to-end evaluation of a workload on a hardware design."""

from tstack.simulate.engine import CATEGORIES, ModelResult, OpResult, simulate_workload

__all__ = ["CATEGORIES", "ModelResult", "OpResult", "simulate_workload"]
