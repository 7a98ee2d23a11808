"""Co-design search: accelerator parameters x each op's best mapping x model shape, under an area budget.

The entry points::

    from tstack.codesign import (CodesignConfig, CodesignProblem, Strategy, load_hardware_space, run_codesign)
    from tstack.nas import ProxyPerplexity, load_space

    shapes = load_space("cpu")
    problem = CodesignProblem(shapes, load_hardware_space("gemmini"), area_mm2=my_area_model,
                              perplexity=ProxyPerplexity(shapes), area_budget_mm2=1.5, perplexity_limit=23.0)
    result = run_codesign(problem, CodesignConfig(strategy=Strategy.JOINT, evaluations=60),
                          storage="codesign-run/study.journal")
    front = result.front()  # feasible and Pareto-optimal in (EDP, area, perplexity)

`space` (the hardware parameters and the design each choice is), `pricing` (every op of a workload on a design,
each distinct op context once), `evaluate` (one candidate: area, latency, energy, perplexity), `executors`
(in-process or Ray), `search` (the sequential and joint strategies on Optuna storage), `front` (Pareto fronts and
hypervolumes in three objectives).
"""

from tstack.codesign.evaluate import Candidate, CodesignProblem, Evaluation, Evaluator, Metric
from tstack.codesign.front import hypervolume, pareto_mask_nd
from tstack.codesign.pricing import DesignPricer, PricingStats
from tstack.codesign.search import CodesignConfig, CodesignResult, Sampler, Strategy, check_problem, run_codesign
from tstack.codesign.space import (
    HardwareParams,
    HardwareSpace,
    NonlinearUnits,
    build_design,
    load_hardware_space,
    space_from_dict,
)

__all__ = [
    "Candidate",
    "CodesignConfig",
    "CodesignProblem",
    "CodesignResult",
    "DesignPricer",
    "Evaluation",
    "Evaluator",
    "HardwareParams",
    "HardwareSpace",
    "Metric",
    "NonlinearUnits",
    "PricingStats",
    "Sampler",
    "Strategy",
    "build_design",
    "check_problem",
    "hypervolume",
    "load_hardware_space",
    "pareto_mask_nd",
    "run_codesign",
    "space_from_dict",
]
