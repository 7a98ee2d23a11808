"""Timeloop's formats and the real binary: tstack designs and nests written as Timeloop reads them, Timeloop's files
read back, `timeloop-model` run and parsed, and Timeloop's random mapper reproduced.

Entry points:

* `read_timeloop_arch` (`arch`): a Timeloop v0.3 architecture laid over a tstack design.
* `read_nest_constraints` (`constraints`): a Timeloop mapspace-constraints file as `NestConstraints`.
* `to_timeloop`, `from_timeloop`, `nest_to_timeloop`, `nest_from_timeloop` (`mapping_io`): mappings in and out.
* `run_model`, `locate_timeloop` (`run`): run `timeloop-model` on a nest and read its statistics.
* `crosscheck` module: tstack's nest models against the real Timeloop, count for count.
* `sample_ids`, `timeloop_energies` (`sampler`): Timeloop's random mapper as a sampler of nests.
* `TimeloopFiles` (`files`): Gemmini's published Timeloop files as values.
"""

from tstack.mapping.timeloop.arch import TimeloopArch, read_timeloop_arch
from tstack.mapping.timeloop.constraints import read_nest_constraints
from tstack.mapping.timeloop.files import TimeloopFiles
from tstack.mapping.timeloop.mapping_io import from_timeloop, nest_from_timeloop, nest_to_timeloop, to_timeloop
from tstack.mapping.timeloop.run import TimeloopUnavailableError, locate_timeloop, run_model
from tstack.mapping.timeloop.sampler import sample_ids, timeloop_energies

__all__ = [
    "TimeloopArch",
    "TimeloopFiles",
    "TimeloopUnavailableError",
    "from_timeloop",
    "locate_timeloop",
    "nest_from_timeloop",
    "nest_to_timeloop",
    "read_nest_constraints",
    "read_timeloop_arch",
    "run_model",
    "sample_ids",
    "timeloop_energies",
    "to_timeloop",
]
