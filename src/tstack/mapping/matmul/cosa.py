"""A constrained-optimization mapper in the spirit of CoSA (Huang et al., ISCA 2021), on OR-Tools CP-SAT.

Instead of enumerating the mapspace, the mapper states it as a constraint program and lets the solver search it:
one integer decision per dimension (which divisor is the on-chip tile) and one for the DRAM loop order; tile-derived
quantities (trip counts, array folds) are table lookups; the cost model's compute cycles, DRAM traffic under
loop-nest reuse (refetch and partial-sum spills chosen by the order), capacity limits of the double-buffered
buffers, latency = max(compute, traffic / bandwidth) and energy are integer expressions of those decisions; the
objective is their product, the EDP. Intermediate-level (L2) reuse and the bias matrix are left out of the program
(they do not depend on the on-chip mapping); the chosen mapping is then priced by the full cost model.

The program restates the cost model as Gemmini's presets configure it (every loop of the written nest counts,
`skip_one_trip_loops` off; weights preloaded per tile, `weights_stay_in_array` off) with the accumulator charged a
read-modify-write per pass; where a design's options differ (Timeloop's defaults) or its links are more than one
shared DMA, the program's objective is an approximation and only the final price is the model's. Generating these
coefficients from the cost model itself is still to do.
"""

from __future__ import annotations

from tstack.errors import InfeasibleError, SpecError
from tstack.hardware.design import design_of
from tstack.hardware.types import CostOptions, FillDrain, Hardware, PartialSums
from tstack.mapping.matmul.cost import OperandBits, evaluate
from tstack.mapping.matmul.loopnest import ORDERS, Mapping, MatmulShape
from tstack.mapping.matmul.mappers import MapperResult, divisors

_ENERGY_SCALE = 100  # energies in hundredths of a pJ, so per-byte energies are integers


def _folds(bound: int, tile: int, width: int) -> int:
    full = bound // tile
    return full * -(-tile // width) + -(-(bound - full * tile) // width)


def cosa(
    shape: MatmulShape,
    hw: Hardware,
    bits: OperandBits | None = None,
    options: CostOptions | None = None,
    time_limit_s: float = 10.0,
) -> MapperResult:
    """The least-EDP mapping found by CP-SAT (optimal within the program's model unless the time limit hits)."""
    try:
        from ortools.sat.python import cp_model
    except ImportError:
        raise SpecError("the cosa mapper needs OR-Tools: pip install ortools") from None
    bits, options = bits or OperandBits(), options or hw.cost_options
    if options.partial_sums is PartialSums.SPILL or bits.a % 8 or bits.b % 8 or bits.out % 8 or bits.acc % 8:
        raise SpecError("the cosa mapper models on-chip accumulation and whole-byte operands only")
    m, n, k = shape.m, shape.n, shape.k
    rows, cols = hw.pe.rows, hw.pe.cols
    design = design_of(hw)
    array_links = (design.scratchpad_array_bytes_per_cycle, design.accumulator_array_bytes_per_cycle)
    if not design.fill_shared or any(bw is not None for bw in array_links):
        raise SpecError(
            f"the cosa mapper models one link filling both on-chip memories and unlimited array links; "
            f"{hw.name!r} has more: use --mapper exhaustive"
        )
    ab, c_level, dram = design.scratchpad, design.accumulator, design.dram
    bw = design.scratchpad_fill_bytes_per_cycle
    a_b, b_b, out_b, acc_b = bits.a // 8, bits.b // 8, bits.out // 8, bits.acc // 8
    skew = rows + cols - 2

    model = cp_model.CpModel()
    dm, dn, dk = (list(divisors(x)) for x in (m, n, k))
    im, in_, ik = (model.new_int_var(0, len(d) - 1, f"i{name}") for d, name in ((dm, "m"), (dn, "n"), (dk, "k")))
    order = model.new_int_var(0, len(ORDERS) - 1, "order")

    highs: dict[str, int] = {}

    def lookup(table: list[int], index: cp_model.IntVar, name: str) -> cp_model.IntVar:
        var = model.new_int_var(min(table), max(table), name)
        model.add_element(index, table, var)
        highs[name] = max(table)
        return var

    def upper(v: cp_model.IntVar) -> int:
        return highs[v.name]

    def product(a: cp_model.IntVar, b: cp_model.IntVar, name: str) -> cp_model.IntVar:
        hi = upper(a) * upper(b)
        var = model.new_int_var(0, hi, name)
        model.add_multiplication_equality(var, [a, b])
        highs[name] = hi
        return var

    def constant(value: int, name: str) -> cp_model.IntVar:
        highs[name] = value
        return model.new_int_var(value, value, name)

    # loose but finite bounds of the linear quantities, from the extreme mappings
    folds_max = _folds(n, 1, cols) * _folds(k, 1, rows)
    compute_hi = m * folds_max * (1 + rows) + m * n * k * (skew + 1)
    traffic_hi = m * k * a_b * n + k * n * b_b * m + m * n * (out_b + 2 * acc_b * k)
    big = max(compute_hi, traffic_hi) * 10
    tm, tn, tk = lookup(dm, im, "tm"), lookup(dn, in_, "tn"), lookup(dk, ik, "tk")
    trips_m, trips_n, trips_k = (
        lookup([x // t for t in d], i, f"trips_{nm}")
        for x, d, i, nm in ((m, dm, im, "m"), (n, dn, in_, "n"), (k, dk, ik, "k"))
    )
    folds_n = lookup([_folds(n, t, cols) for t in dn], in_, "folds_n")
    folds_k = lookup([_folds(k, t, rows) for t in dk], ik, "folds_k")
    folds = product(folds_n, folds_k, "folds")
    tiles_mn = product(trips_m, trips_n, "tiles_mn")
    tiles = product(tiles_mn, trips_k, "tiles")
    weight_loads = product(trips_m, folds, "weight_loads")
    compute = model.new_int_var(0, big, "compute")
    overhead = 0 if options.preload_hidden else rows  # weight preload cycles per weight block
    if options.fill_drain is FillDrain.PER_FOLD:
        model.add(compute == m * folds + (overhead + skew) * weight_loads)
    elif options.fill_drain is FillDrain.PER_TILE:
        model.add(compute == m * folds + overhead * weight_loads + skew * tiles)
    else:
        model.add(compute == m * folds + overhead * weight_loads)

    # refetch / spill decisions of each loop order (loop-nest reuse, as in the cost model)
    pos = [{d: o.index(d) for d in "mnk"} for o in ORDERS]
    a_re = lookup([int(p["n"] < max(p["m"], p["k"])) for p in pos], order, "a_refetch")
    b_re = lookup([int(p["m"] < max(p["k"], p["n"])) for p in pos], order, "b_refetch")
    c_sp = lookup([int(p["k"] < max(p["m"], p["n"])) for p in pos], order, "c_spill")
    a_extra = product(a_re, trips_n, "a_extra")
    b_extra = product(b_re, trips_m, "b_extra")
    c_extra = product(c_sp, trips_k, "c_extra")
    # A: M*K once, times trips_n when refetched (a_extra = trips_n or 0)
    a_bytes = model.new_int_var(0, big, "a_bytes")
    model.add(a_bytes == m * k * a_b * (1 - a_re) + m * k * a_b * a_extra)
    b_bytes = model.new_int_var(0, big, "b_bytes")
    model.add(b_bytes == k * n * b_b * (1 - b_re) + k * n * b_b * b_extra)
    c_bytes = model.new_int_var(0, big, "c_bytes")  # spills: (trips_k - 1) write+read at accumulator width
    model.add(c_bytes == m * n * out_b + m * n * 2 * acc_b * (c_extra - c_sp))
    traffic = model.new_int_var(0, big, "traffic")
    model.add(traffic == a_bytes + b_bytes + c_bytes)

    # capacity of the double-buffered buffers
    a_tile, b_tile, c_tile = product(tm, tk, "a_tile"), product(tk, tn, "b_tile"), product(tm, tn, "c")
    if design.shared_buffer:
        model.add(a_tile * a_b + b_tile * b_b + c_tile * acc_b <= ab.usable_bytes)
    else:
        model.add(a_tile * a_b + b_tile * b_b <= ab.usable_bytes)
        model.add(c_tile * acc_b <= c_level.usable_bytes)

    # latency = max(compute, traffic / bandwidth) + the first tile's load (double-buffered), in 1/1000 cycles
    core_hi = max(compute_hi, int(traffic_hi / bw) + 1)
    core = model.new_int_var(0, core_hi, "core")
    model.add(core >= compute)
    model.add(core * round(bw * 1000) >= traffic * 1000)
    first_load_hi = int((upper(a_tile) * a_b + upper(b_tile) * b_b) * 1000 / bw) + 1
    latency = model.new_int_var(0, core_hi * 1000 + first_load_hi, "latency")
    highs["latency"] = core_hi * 1000 + first_load_hi
    bw_milli = round(bw * 1000)
    model.add(latency * bw_milli >= core * 1000 * bw_milli + (a_tile * a_b + b_tile * b_b) * 1000 * 1000)

    def e(pj: float) -> int:
        return round(pj * _ENERGY_SCALE)

    a_reads = product(folds_n, constant(m * k * a_b, "mk"), "a_reads")
    b_reads = product(trips_m, constant(k * n * b_b, "kn"), "b_reads")
    rmw = product(folds_k, constant(m * n * acc_b, "mn"), "rmw")
    energy_hi = (
        e(hw.pe.mac_energy_pj) * m * n * k
        + e(max(ab.read_energy_pj_per_byte, ab.write_energy_pj_per_byte))
        * (2 * traffic_hi + upper(a_reads) + upper(b_reads))
        + e(c_level.read_energy_pj_per_byte + c_level.write_energy_pj_per_byte) * (upper(rmw) + traffic_hi)
        + e(max(dram.read_energy_pj_per_byte, dram.write_energy_pj_per_byte)) * traffic_hi
    )
    energy = model.new_int_var(0, energy_hi, "energy")
    model.add(
        energy
        == e(hw.pe.mac_energy_pj) * shape.macs // shape.batch
        + e(ab.write_energy_pj_per_byte) * (a_bytes + b_bytes)
        + e(ab.read_energy_pj_per_byte) * (a_reads + b_reads)
        + e(c_level.read_energy_pj_per_byte + c_level.write_energy_pj_per_byte) * rmw
        + e(c_level.read_energy_pj_per_byte) * c_bytes
        + e((dram.read_energy_pj_per_byte + dram.write_energy_pj_per_byte) / 2) * traffic
    )
    # EDP in scaled units; divide energy down so the product stays within 64 bits
    latency_hi = upper(latency)
    divisor = max(1, -(-latency_hi * energy_hi // 2**60))
    energy_coarse = model.new_int_var(0, energy_hi // divisor, "energy_coarse")
    model.add_division_equality(energy_coarse, energy, divisor)
    edp = model.new_int_var(0, latency_hi * (energy_hi // divisor), "edp")
    model.add_multiplication_equality(edp, [latency, energy_coarse])
    model.minimize(edp)

    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit_s
    solver.parameters.num_workers = 1
    status = solver.solve(model)
    if status == cp_model.MODEL_INVALID:  # a bug in the program, not the user's input
        raise RuntimeError(f"cosa: invalid CP-SAT model: {model.validate()}")
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        raise InfeasibleError("no valid mapping: no tile of this matmul fits the design's on-chip memories")
    mapping = Mapping(dm[solver.value(im)], dn[solver.value(in_)], dk[solver.value(ik)], ORDERS[solver.value(order)])
    cost = evaluate(shape, mapping, hw, bits, options)
    return MapperResult(mapping, cost.latency_cycles, cost.energy_pj, cost.edp, int(solver.num_branches))
