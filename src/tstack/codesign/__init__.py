"""Co-design search: accelerator parameters x each op's best mapping x model shape, under an area budget.

The entry points::

    from tstack.codesign import CodesignConfig, CodesignProblem, Strategy, run_codesign
    from tstack.hardware.area import design_area
    from tstack.nas.proxy import ProxyPerplexity
    from tstack.spec.area import load_tables
    from tstack.spec.codesign import load_hardware_space  # presets and files are read at the boundary
    from tstack.spec.nas_space import load_space

    def area_mm2(hw):  # module level, so that Ray can ship it
        return design_area(hw, tables=load_tables()).total_mm2

    shapes, space = load_space("cpu"), load_hardware_space("gemmini")
    problem = CodesignProblem(shapes, space, area_mm2, ProxyPerplexity(shapes),
                              area_budget_mm2=area_mm2(space.base), perplexity_limit=23.0)
    result = run_codesign(problem, CodesignConfig(strategy=Strategy.JOINT, evaluations=60),
                          storage="codesign-run/study.journal")
    front = result.front()  # feasible and Pareto-optimal in (EDP, area, perplexity)

The perplexity objective is the proxy surrogate above or a trained supernet's measured perplexity: pass
``tstack.nas.search.SupernetObjective(checkpoint)`` instead of ``ProxyPerplexity(shapes)`` (picklable; each shape
measured once per process).

`space` (the hardware parameters and the design each choice is), `pricing` (every op of a workload on a design,
each distinct op context once), `evaluate` (one candidate: area, latency, energy, perplexity), `executors`
(in-process or Ray), `phases` (one Optuna study: ask in batches, evaluate, tell, resume), `search` (the sequential,
joint and alternating strategies on Optuna storage), `alternating` (the rounds of the alternating strategy and their
warm starts), `front` (Pareto fronts and hypervolumes in three objectives), `compare` (the base design's point and
one hypervolume reference per problem).
"""

from tstack.codesign.evaluate import (
    Candidate,
    CodesignProblem,
    Energies,
    Evaluation,
    Evaluator,
    Metric,
    priced_design,
)
from tstack.codesign.front import hypervolume, pareto_mask_nd
from tstack.codesign.pricing import DesignPricer, PricingStats
from tstack.codesign.search import CodesignConfig, CodesignResult, Sampler, Strategy, check_problem, run_codesign
from tstack.codesign.space import (
    HardwareParams,
    HardwareSpace,
    NonlinearUnits,
    build_design,
    space_from_dict,
)

__all__ = [
    "Candidate",
    "CodesignConfig",
    "CodesignProblem",
    "CodesignResult",
    "DesignPricer",
    "Energies",
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
    "pareto_mask_nd",
    "priced_design",
    "run_codesign",
    "space_from_dict",
]
