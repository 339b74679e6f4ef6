"""RESULTS.md and the README's figures, written from results.json alone.

Every figure here, and every sentence that states one, is computed from the results that
run.py measured (``python benches/run.py --report-only`` rewrites both without measuring).
The targets are BENCHMARKS.md's: the training ratios from workloads.py, the others below.
The README's figures live between ``BEGIN`` and ``END``; the rest of its text is written by
hand and states no measured figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gemm_bench
import regularization
import sweep
import threads_bench
import workloads as wl
from timing import SETTLE

BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"

LATENCY_TARGETS_US = {
    "native predict": 6.0,
    "estimator predict": 20.0,
    "estimator predict_proba": 20.0,
}
SWEEP_TARGET = 1.10  # every elementwise activation's time / relu's at most this
WIDE_PEAK_TARGET = 0.80  # wide's training GFLOP/s / numpy's float32 GEMM peak at least this


def fmt(v: float | None, spec: str = ".3f") -> str:
    """A number for a table, or a dash."""
    return "-" if v is None else format(v, spec)


def paren(text: str | None) -> str:
    """' (text)', or nothing."""
    return "" if text is None else f" ({text})"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def bold(text: str) -> str:
    """Markdown bold, but not for a dash."""
    return text if text == "-" else f"**{text}**"


def yes_no(ok: bool | None) -> str:
    return "-" if ok is None else ("yes" if ok else "no")


def div(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a / b


DASH = "\u2013"  # the en dash of ranges, 1.2\u20133.4


def span(values: list[float], spec: str = ".2f") -> str:
    """The range of the values, as the tables print them ('a' when both ends round alike)."""
    lo, hi = format(min(values), spec), format(max(values), spec)
    return lo if lo == hi else f"{lo}{DASH}{hi}"


@dataclass
class Row:
    """One workload's figures, as the tables and the prose quote them."""

    w: wl.Workload
    r: dict
    peak: float  # numpy's GEMM peak of the workload's dtype, GFLOP/s

    def s(self, name: str) -> float | None:
        return self.r["seconds"].get(name)

    @property
    def flop(self) -> float:
        return self.w.flops_per_epoch() * self.w.epochs

    @property
    def numpy_ratio(self) -> float:
        return self.s("numpy") / self.s("mlpfast")

    @property
    def jax_best(self) -> float | None:
        times = [t for t in (self.s("jax_step"), self.s("jax_scan")) if t is not None]
        return min(times) if times else None

    @property
    def jax_ratio(self) -> float | None:
        return div(self.jax_best, self.s("mlpfast"))

    def gflops(self, contender: str = "mlpfast") -> float:
        return self.flop / self.s(contender) / 1e9

    def share(self, gflops: float) -> float:
        return gflops / self.peak

    @property
    def needs(self) -> float:
        """The GFLOP/s the numpy target asks of mlpfast: numpy's own, times the target."""
        return self.gflops("numpy") * self.w.target

    @property
    def jax_needs(self) -> float | None:
        best = self.jax_best
        return None if best is None else self.flop / best / 1e9 * self.w.jax_target

    @property
    def numpy_met(self) -> bool:
        return self.numpy_ratio >= self.w.target

    @property
    def jax_met(self) -> bool | None:
        return None if self.jax_ratio is None else self.jax_ratio >= self.w.jax_target

    def run_ratios(self) -> list[float]:
        """numpy / mlpfast of each interleaved run."""
        a = self.r.get("all_seconds", {})
        return [n / m for n, m in zip(a.get("numpy", []), a.get("mlpfast", []))]


def rows(results: dict) -> list[Row]:
    """The workloads results.json holds, in the table's order."""
    m = results.get("machine", {})
    done = results.get("workloads", {})
    out = []
    for w in wl.WORKLOADS:
        if w.name in done:
            r = done[w.name]
            peak = r.get("gemm_peak_gflops") or m["gemm_peak_gflops"][w.dtype]
            out.append(Row(w, r, peak))
    return out


def dates(results: dict) -> list[str]:
    """Every date a part of the results was measured on, sorted."""
    found = {r.get("date") for r in results.get("workloads", {}).values()}
    for key in (
        "predict",
        "memory",
        "latency",
        "sweep",
        "regularization",
        "contention",
        "gridsearch",
    ):
        found.add(results.get(key, {}).get("date"))
    found |= {r.get("date") for r in gemm_workloads(results).values()}
    found.add(results.get("machine", {}).get("date"))
    return sorted(d for d in found if d)


# ----------------------------------------------------------------------------- RESULTS.md


def results_md(results: dict) -> str:
    """RESULTS.md, from every section results.json holds."""
    lines = [
        "# mlpfast benchmark results",
        "",
        "Written by `python benches/run.py` from `benches/results.json` "
        "(`python benches/run.py --report-only` writes it again without measuring). "
        "Each section names the date it was measured on.",
        "",
    ]
    if "machine" in results:
        lines += machine_md(results["machine"])
    if results.get("workloads"):
        lines += training_md(results)
    if gemm_workloads(results):
        lines += kernel_md(results)
    if "sweep" in results:
        lines += sweep_md(results["sweep"])
    if "regularization" in results:
        lines += regularization_md(results["regularization"])
    lines += inference_md(results)
    if "memory" in results:
        lines += memory_md(results["memory"])
    if results.get("workloads") or gemm_workloads(results):
        lines += notes_md(results)
    if "contention" in results:
        lines += threads_bench.report_contention(results["contention"])
    if "gridsearch" in results:
        lines += threads_bench.report_gridsearch(results["gridsearch"])
    return "\n".join(lines)


def software(m: dict) -> str:
    """The libraries of the run, in one line."""
    parts = [f"mlpfast {m['mlpfast']} with {m['threads']} threads", f"numpy {m['numpy']}"]
    parts.append(f"Python {m['python']}")
    if m.get("sklearn"):
        parts.append(f"scikit-learn {m['sklearn']}")
    if m.get("torch"):
        blas = f", BLAS {m['torch_blas']} (linked in)" if m.get("torch_blas") else ""
        cap = f", CPU capability {m['torch_cpu_capability']}" if "torch_cpu_capability" in m else ""
        parts.append(f"PyTorch {m['torch']} ({m['torch_threads']} threads{blas}{cap})")
    if m.get("jax"):
        parts.append(f"JAX {m['jax']}")
    if m.get("onnxruntime"):
        parts.append(f"onnxruntime {m['onnxruntime']}")
    return ", ".join(parts)


def blas_env_md(env: dict | None) -> str:
    """What the run did with the OpenBLAS pins."""
    if env is None:
        return "OpenBLAS environment: not recorded."
    removed = ", ".join(f"`{k}={v}`" for k, v in env.get("removed", {}).items())
    still = ", ".join(f"`{k}={v}`" for k, v in env.get("set", {}).items())
    if still:
        return f"OpenBLAS environment: {still} still set (numpy's kernel may be pinned)."
    if removed:
        return (
            f"OpenBLAS environment: started with {removed}; run.py restarted itself without them."
        )
    return "OpenBLAS environment: neither `OPENBLAS_CORETYPE` nor `OPENBLAS_L2_SIZE` was set."


def machine_md(m: dict) -> list[str]:
    """The machine, its libraries, thread pools and GEMM peak."""
    simd = f", {m['simd']}" if "simd" in m else ""
    lines = [
        "## Machine",
        "",
        f"Recorded on {m['date']}: {m['cpu']}, {m['cores']} cores{simd}; {software(m)}.",
        "",
        blas_env_md(m.get("blas_environment")),
        "",
    ]
    if m.get("threadpools"):
        lines += [
            "Thread pools loaded, as threadpoolctl reports them:",
            "",
            "| package | library | API | version | kernel (architecture) | threads |",
            "|---|---|---|---|---|---|",
        ]
        for p in m["threadpools"]:
            lines.append(
                f"| {p.get('package') or '-'} | {p['library']} | {p['internal_api']} "
                f"| {p.get('version') or '-'} "
                f"| {p.get('architecture') or '-'} | {p['num_threads']} |"
            )
        lines.append("")
    if "gemm_peak_gflops" in m:
        lines += [gemm_md(m), ""]
    return lines


def gemm_md(m: dict) -> str:
    """numpy's GEMM peak, with every run when recorded."""
    peaks = m["gemm_peak_gflops"]
    gemm = m.get("gemm")
    if gemm is None:
        return (
            f"numpy's GEMM peak (4096³): {peaks['float32']:.0f} GFLOP/s float32, "
            f"{peaks['float64']:.0f} GFLOP/s float64."
        )
    runs = {d: ", ".join(f"{g:.0f}" for g in gemm[d]["all_gflops"]) for d in ("float32", "float64")}
    return (
        f"numpy's GEMM peak on {gemm['date']} (best of {len(gemm['float32']['all_gflops'])} "
        f"products at {gemm['float32']['n']}³): **{peaks['float32']:.0f} GFLOP/s float32** "
        f"(runs: {runs['float32']}), **{peaks['float64']:.0f} GFLOP/s float64** "
        f"(runs: {runs['float64']})."
    )


def training_md(results: dict) -> list[str]:
    """The two training tables and the wide-at-peak line."""
    rs = rows(results)
    when = {measured(r, results) for r in rs}
    lines = [
        "## Training",
        "",
        f"Measured on {when.pop() if len(when) == 1 else 'the dates in the table'}: medians, "
        f"contenders interleaved in one process, each run started after a {SETTLE} s pause "
        "(so that the previous contender's threads are idle); every library with its default "
        "threads (PyTorch set to mlpfast's count). "
        "*JAX best* is the faster of `jax.jit` of the step in a Python loop and the epoch "
        "as one compiled `lax.scan` (compile time excluded). numpy's BLAS: "
        f"{numpy_kernel(rs) or 'not recorded for every workload'}.",
        "",
        *speed_table(rs, results),
        "",
        "GFLOP/s counts the training GEMMs (6·B·in·out per layer and step, 4·B·in·out for the "
        "first layer); the share is of numpy's GEMM peak for the workload's dtype, measured "
        "in the same run. *target needs* is the training throughput a target ratio asks of "
        "mlpfast: the contender's own throughput times the target.",
        "",
        *throughput_table(rs),
        "",
    ]
    wide = next((r for r in rs if r.w.name == "wide"), None)
    if wide is not None:
        share = wide.share(wide.gflops())
        lines += [
            f"`wide` runs at **{100 * share:.0f}%** of numpy's float32 GEMM peak "
            f"(target ≥ {100 * WIDE_PEAK_TARGET:.0f}%): "
            f"{'met' if share >= WIDE_PEAK_TARGET else 'not met'}.",
            "",
        ]
    return lines


def measured(r: Row, results: dict) -> str:
    """'2026-11-25, 5 runs': when a workload was measured, and how many runs its medians take
    (results from before workloads kept their own date have the machine's)."""
    runs = r.r.get("runs", results.get("runs"))
    return f"{r.r.get('date', results['machine']['date'])}, {plural(runs, 'run')}"


def speed_table(rs: list[Row], results: dict) -> list[str]:
    """Seconds and ratios against every contender, with the targets; a column of dates and
    run counts when the workloads were not all measured in one run."""
    multiple_dates = len({measured(r, results) for r in rs}) > 1
    head = "| workload | " + ("measured | " if multiple_dates else "")
    lines = [
        head + "numpy s | mlpfast s | numpy / mlpfast | target | met | JAX step s "
        "| JAX scan s | JAX best / mlpfast | target | met | sklearn s | sklearn / mlpfast "
        "| torch s | torch / mlpfast |",
        "|---" * (15 + multiple_dates) + "|",
    ]
    for r in rs:
        sk, to = r.s("sklearn"), r.s("torch")
        date = f"{measured(r, results)} | " if multiple_dates else ""
        lines.append(
            f"| {r.w.name} | {date}{r.s('numpy'):.3f} | {r.s('mlpfast'):.3f} "
            f"| **{r.numpy_ratio:.2f}** | ≥ {r.w.target:g} | {yes_no(r.numpy_met)} "
            f"| {fmt(r.s('jax_step'))} | {fmt(r.s('jax_scan'))} | {bold(fmt(r.jax_ratio, '.2f'))} "
            f"| ≥ {r.w.jax_target:g} | {yes_no(r.jax_met)} "
            f"| {fmt(sk)} | {fmt(div(sk, r.s('mlpfast')), '.2f')} "
            f"| {fmt(to)} | {fmt(div(to, r.s('mlpfast')), '.2f')} |"
        )
    return lines


def throughput_table(rs: list[Row]) -> list[str]:
    """Throughput against the GEMM peak, threads, and what the targets need."""
    lines = [
        "| workload | dtype | MFLOP per step | mlpfast GFLOP/s | % of GEMM peak "
        "| mlpfast 1 thread s | default / 1 thread | numpy / mlpfast per run "
        "| numpy target needs (% of peak) | JAX target needs (% of peak) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rs:
        one = r.s("mlpfast_1t")
        jn = r.jax_needs
        per_run = r.run_ratios()
        lines.append(
            f"| {r.w.name} | {r.w.dtype} | {r.w.flops_per_step() / 1e6:,.1f} "
            f"| {r.gflops():.0f} | {100 * r.share(r.gflops()):.0f}% | {fmt(one)} "
            f"| {fmt(div(r.s('mlpfast'), one), '.2f')} "
            f"| {span(per_run) if per_run else '-'} "
            f"| {r.needs:.0f} GFLOP/s ({100 * r.share(r.needs):.0f}%) "
            f"| {'-' if jn is None else f'{jn:.0f} GFLOP/s ({100 * r.share(jn):.0f}%)'} |"
        )
    return lines


def sweep_ratios(section: dict) -> dict[str, float]:
    """Each activation's mlpfast time / relu's."""
    s = section["seconds"]
    return {act: s[act]["mlpfast"] / s["relu"]["mlpfast"] for act in s}


def sweep_md(section: dict) -> list[str]:
    """The activation sweep's table, and maxout apart."""
    s, rel = section["seconds"], sweep_ratios(section)
    lines = [
        "## Activation sweep",
        "",
        f"`python benches/run.py --sweep` on {section['date']}: the `{section['workload']}` "
        "workload (784-256-128-10, batch 128, 60,000 rows, float32) with each hidden "
        f"activation, mlpfast and numpy interleaved; medians of {plural(section['runs'], 'run')}.",
        "",
        "| activation | mlpfast s | / relu's time | target | met | numpy s | numpy / mlpfast |",
        "|---|---|---|---|---|---|---|",
    ]
    for act in sweep.ELEMENTWISE:
        if act in s:
            lines.append(
                f"| {act} | {s[act]['mlpfast']:.3f} | **{rel[act]:.2f}** | ≤ {SWEEP_TARGET:.2f} "
                f"| {yes_no(rel[act] <= SWEEP_TARGET)} | {s[act]['numpy']:.3f} "
                f"| **{s[act]['numpy'] / s[act]['mlpfast']:.2f}** |"
            )
    if "maxout" in s:
        gf = section["gflop_per_epoch"]
        rate = {a: gf[a] / s[a]["mlpfast"] for a in ("maxout", "relu")}
        lines += [
            "",
            f"maxout (two pieces per unit: {gf['maxout']:.1f} GFLOP per epoch against relu's "
            f"{gf['relu']:.1f}) is held to no target: mlpfast {s['maxout']['mlpfast']:.3f} s, "
            f"{rel['maxout']:.2f}× relu's time, {rate['maxout']:.0f} GFLOP/s against relu's "
            f"{rate['relu']:.0f}; numpy {s['maxout']['numpy']:.3f} s, numpy / mlpfast "
            f"**{s['maxout']['numpy'] / s['maxout']['mlpfast']:.2f}**.",
        ]
    return [*lines, ""]


def regularization_md(section: dict) -> list[str]:
    """The cost of dropout and batch normalization: the fit's time with each against without."""
    s = section["seconds"]
    plain = s["plain"]
    lines = [
        "## Regularization's cost",
        "",
        f"`python benches/run.py --regularization` on {section['date']}: the "
        f"`{section['workload']}` workload (784-256-128-10, relu, batch 128, 60,000 rows, "
        "float32, one epoch of SGD) as it is and with each regularization, interleaved; "
        f"medians of {plural(section['runs'], 'run')}.",
        "",
        "| fit | mlpfast s | / plain time | target | met |",
        "|---|---|---|---|---|",
        f"| plain | {plain:.3f} | 1.00 | - | - |",
    ]
    for name, t in s.items():
        if name != "plain":
            ratio = t / plain
            lines.append(
                f"| {name} | {t:.3f} | **{ratio:.2f}** | ≤ {regularization.TARGET:.2f} "
                f"| {yes_no(ratio <= regularization.TARGET)} |"
            )
    return [*lines, ""]


def one_row_us(results: dict) -> dict[str, float]:
    """One-row latencies in µs (older results held only the native one, under predict)."""
    if "latency" in results:
        return results["latency"]["us"]
    old = results.get("predict", {})
    return {"native predict": old["one_row_us"]} if "one_row_us" in old else {}


def onnx_best(us: dict[str, float]) -> tuple[str, float] | None:
    """The faster onnxruntime session: (its name, µs)."""
    found = [(k, v) for k, v in us.items() if k.startswith("onnxruntime")]
    return min(found, key=lambda kv: kv[1]) if found else None


def inference_md(results: dict) -> list[str]:
    """predict on 60,000 rows, and one-row latencies."""
    lines = []
    p = results.get("predict")
    if p is not None:
        lines += [
            "## Inference",
            "",
            f"**predict** on the mnist model ({p['rows']:,} rows, {p.get('date', '-')}): "
            f"mlpfast {p['mlpfast_seconds'] * 1e3:.1f} ms, numpy's forward pass "
            f"{p['numpy_seconds'] * 1e3:.1f} ms; numpy / mlpfast "
            f"**{p['numpy_seconds'] / p['mlpfast_seconds']:.2f}**.",
            "",
        ]
    if "latency" in results:
        lines += latency_md(results["latency"])
    return lines


def latency_md(section: dict) -> list[str]:
    """The one-row latency table."""
    us = section["us"]
    lines = [
        f"**One-row latency** (`python benches/run.py --latency`, {section.get('date', '-')}): "
        f"the mnist model on one row; medians over {plural(section['rounds'], 'round')} of "
        f"{section['calls_per_round']} calls per contender, the contenders taking turns, "
        "after a warm-up.",
        "",
        "| call | median µs | target | met |",
        "|---|---|---|---|",
    ]
    for name, v in us.items():
        target = LATENCY_TARGETS_US.get(name)
        lines.append(
            f"| {name} | **{v:.1f}** | {'-' if target is None else f'≤ {target:g}'} "
            f"| {yes_no(None if target is None else v <= target)} |"
        )
    best = onnx_best(us)
    if best is not None:
        lines += ["", f"onnxruntime's better session: {best[0]}, **{best[1]:.1f} µs**."]
    for name, check in section.get("onnx_check", {}).items():
        lines += [
            "",
            f"{name}: the model's export by `mlpfast.to_onnx` (its `label` output is timed) gives "
            f"mlpfast's scores to within {check['max_abs_diff']:.1e} on {check['rows']} rows "
            f"and the same class on {100 * check['argmax_agree']:.0f}% of them.",
        ]
        break  # both sessions run the same graph
    return [*lines, ""]


def memory_md(section: dict) -> list[str]:
    """Peak memory during the mnist fit."""
    contenders = section.get("contenders", {k: v for k, v in section.items() if k != "date"})
    lines = [
        f"**Peak memory during the mnist fit** ({section.get('date', '-')}; a fresh process "
        "each; peak resident set during fit minus resident set before it, X already loaded):",
        "",
    ]
    for name, mem in contenders.items():
        if "error" in mem:
            lines.append(f"- {name}: failed ({mem['error']})")
            continue
        extra = mem["peak_mib"] - mem["before_mib"]
        lines.append(
            f"- {name}: X is {mem['x_mib']:.0f} MiB; fit added {extra:.0f} MiB at its peak"
            + (" (limit: 64 MiB)" if name == "mlpfast" else "")
        )
    return [*lines, ""]


# --------------------------------------------------------------------- where the time goes


def notes_md(results: dict) -> list[str]:
    """What the tables say, sentence by sentence from their figures."""
    rs = rows(results)
    lines = [
        "## Where the time goes",
        "",
        "Written from the figures above.",
        "",
        *targets_met(rs),
        *[note for r in rs for note in miss_note(r)],
        *floor_notes(results),
        *threads_note(rs),
        *sweep_note(results.get("sweep")),
        *latency_note(one_row_us(results)),
        "- Every ratio comes from runs interleaved in one process, so that the contenders "
        "meet the same conditions; the per-run ratios above show how far single runs spread.",
        "",
    ]
    return lines


def targets_met(rs: list[Row]) -> list[str]:
    """How many targets are met, and which."""

    def names(ok) -> str:
        return ", ".join(f"`{r.w.name}`" for r in rs if ok(r)) or "none"

    if not rs:
        return []
    lines = [
        f"- numpy targets met: {sum(r.numpy_met for r in rs)} of {len(rs)} "
        f"({names(lambda r: r.numpy_met)})."
    ]
    with_jax = [r for r in rs if r.jax_met is not None]
    if with_jax:
        lines.append(
            f"- JAX targets met: {sum(bool(r.jax_met) for r in with_jax)} of {len(with_jax)} "
            f"({names(lambda r: bool(r.jax_met))})."
        )
    return lines


def miss_note(r: Row) -> list[str]:
    """One workload's missed targets, with its ratio, throughput and what the target needs."""
    misses = []
    if not r.numpy_met:
        misses.append(f"numpy / mlpfast **{r.numpy_ratio:.2f}** (target ≥ {r.w.target:g})")
    if r.jax_met is False:
        misses.append(f"JAX best / mlpfast **{r.jax_ratio:.2f}** (target ≥ {r.w.jax_target:g})")
    if not misses:
        return []
    share = 100 * r.share(r.gflops())
    text = (
        f"- `{r.w.name}` misses {' and '.join(misses)}. mlpfast trains at {r.gflops():.0f} "
        f"GFLOP/s, {share:.0f}% of numpy's {r.w.dtype} GEMM peak, in steps of "
        f"{r.w.flops_per_step() / 1e6:,.1f} MFLOP."
    )
    needs = [("numpy", r.needs)] if not r.numpy_met else []
    if r.jax_met is False:
        needs.append(("JAX", r.jax_needs))
    for who, gf in needs:
        pct = 100 * r.share(gf)
        beyond = " — more than the GEMM peak" if pct > 100 else ""
        text += f" The {who} target needs {gf:.0f} GFLOP/s, {pct:.0f}% of the peak{beyond}."
    return [text]


def threads_note(rs: list[Row]) -> list[str]:
    """How much the default threads gain over one, from the main table."""
    pairs = [(r.w.name, r.s("mlpfast") / r.s("mlpfast_1t")) for r in rs if r.s("mlpfast_1t")]
    if not pairs:
        return []
    listed = ", ".join(f"`{n}` {v:.2f}" for n, v in pairs)
    return [f"- mlpfast's default threads / one thread (time): {listed}."]


def sweep_note(section: dict | None) -> list[str]:
    """Activations slower than the sweep's target allows."""
    if section is None:
        return []
    rel = sweep_ratios(section)
    over = [a for a in sweep.ELEMENTWISE if a in rel and rel[a] > SWEEP_TARGET]
    if not over:
        return [f"- Every elementwise activation trains within {SWEEP_TARGET:.2f}× relu's time."]
    listed = ", ".join(f"{a} {rel[a]:.2f}×" for a in over)
    return [f"- Activations over {SWEEP_TARGET:.2f}× relu's time: {listed}."]


def latency_note(us: dict[str, float]) -> list[str]:
    """One-row latencies over their targets."""
    over = [(k, v) for k, v in us.items() if k in LATENCY_TARGETS_US and v > LATENCY_TARGETS_US[k]]
    if not over:
        return ["- Every one-row latency meets its target."] if us else []
    listed = ", ".join(f"{k} {v:.1f} µs (target ≤ {LATENCY_TARGETS_US[k]:g})" for k, v in over)
    return [f"- One-row latencies over target: {listed}."]


# --------------------------------------------------------------------------- GEMM kernel


def gemm_workloads(results: dict) -> dict[str, dict]:
    """The workloads of the GEMM section, in the table's order."""
    done = results.get("gemm", {}).get("workloads", {})
    return {w.name: done[w.name] for w in wl.WORKLOADS if w.name in done}


def other_dtypes(r: dict) -> list[str]:
    """The workload's own dtype first, then the others measured."""
    return [r["dtype"], *(d for d in r["dtypes"] if d != r["dtype"])]


def us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f}"


def kernel_totals(entry: dict) -> dict:
    """A step's products in one dtype: µs per contender, GFLOP/s, and numpy 1 thread / faer."""
    flop = gemm_bench.step_flop(entry)
    sec = {c: gemm_bench.step_seconds(entry, c) for c in gemm_bench.CONTENDERS}
    return {
        "flop": flop,
        "seconds": sec,
        "gflops": {c: flop / s / 1e9 for c, s in sec.items()},
        "numpy_over_faer": sec["numpy_1t"] / sec["faer"],
    }


def step_count(r: dict) -> str:
    """'469 (468 + 1 of 96 rows) × 1 epoch'."""
    total = r["full_steps"] + bool(r["last_rows"])
    part = f" ({r['full_steps']} + 1 of {r['last_rows']} rows)" if r["last_rows"] else ""
    return f"{total:,}{part} × {plural(r['epochs'], 'epoch')}"


@dataclass
class Floor:
    """One workload's GEMM floor beside its training time and the targets' times."""

    name: str
    dtype: str
    seconds: float  # the products of the whole run spread over mlpfast's threads
    threads: int
    mlpfast: float | None  # measured training time (main section), when present
    numpy_asks: float | None  # numpy's time / the numpy target
    jax_asks: float | None  # JAX best's time / the JAX target
    last_rows: int

    @property
    def share(self) -> float | None:
        return div(self.seconds, self.mlpfast)


def floors(results: dict) -> list[Floor]:
    """Every workload of the GEMM section, with the main section's figures when it has them."""
    main = {r.w.name: r for r in rows(results)}
    out = []
    for name, g in gemm_workloads(results).items():
        if g["dtype"] not in g["dtypes"]:
            continue
        r = main.get(name)
        jax = None if r is None or r.jax_best is None else r.jax_best / r.w.jax_target
        out.append(
            Floor(
                name,
                g["dtype"],
                gemm_bench.floor_seconds(g),
                g["threads"],
                None if r is None else r.s("mlpfast"),
                None if r is None else r.s("numpy") / r.w.target,
                jax,
                g["last_rows"],
            )
        )
    return out


def below(asks: float | None, floor: float) -> str:
    """Whether a target's time is below the products' floor."""
    return "-" if asks is None else ("**yes**" if asks < floor else "no")


def kernel_md(results: dict) -> list[str]:
    """The GEMM section: step totals per workload and dtype, the floor, the per-product detail."""
    section = results["gemm"]
    gw = gemm_workloads(results)
    days = sorted({r["date"] for r in gw.values()})
    first = next(iter(gw.values()))
    p0 = next(iter(first["dtypes"].values()))["products"][0]
    lines = [
        "## GEMM kernel: faer against numpy, product by product",
        "",
        f"`python benches/run.py --gemm` on {', '.join(days)}: every GEMM of one training step "
        "timed alone. *faer* is the kernel mlpfast runs, always on one thread per product "
        "(`mlpfast._core._gemm_seconds`); numpy is `np.matmul(A, B, out=out)` with transposed "
        "views where the step reads an operand transposed (as the numpy contender's `.T @` "
        f"does), with 1 and with 2 BLAS threads ({section.get('numpy_blas') or 'BLAS'}). Each "
        f"figure is the best of {gemm_bench.SMALL_REPS} runs ({gemm_bench.LARGE_REPS} for "
        f"products over {gemm_bench.LARGE_FLOP / 1e6:.0f} MFLOP), the three taking turns "
        f"shape by shape over {plural(p0['rounds'], 'round')}, each batch of runs after a "
        f"{SETTLE} s pause; numpy's times include the Python call of `np.matmul`. A layer "
        "in → out on B rows does x·W (B × in · in × out), xᵀ·dy (in × B · B × out) and dy·Wᵀ "
        "(B × out · out × in); the first layer has no dy·Wᵀ. Each workload's own dtype is in "
        "bold; the other is extra information.",
        "",
        "| workload | dtype | products | MFLOP per step | faer µs (1 thread) "
        "| numpy µs, 1 thread | numpy µs, 2 threads | faer GFLOP/s | numpy GFLOP/s, 1 thread "
        "| numpy 1 thread / faer (time) | numpy GFLOP/s, 2 threads |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in gw.items():
        for dtype in other_dtypes(r):
            entry = r["dtypes"].get(dtype)
            if entry is None:
                continue
            t = kernel_totals(entry)
            sec, gf = t["seconds"], t["gflops"]
            own = dtype == r["dtype"]
            ratio = f"{t['numpy_over_faer']:.2f}"
            lines.append(
                f"| {name} | {bold(dtype) if own else dtype} | {len(entry['products'])} "
                f"| {t['flop'] / 1e6:,.1f} | {us(sec['faer'])} | {us(sec['numpy_1t'])} "
                f"| {us(sec['numpy_2t'])} | {gf['faer']:.0f} | {gf['numpy_1t']:.0f} "
                f"| {bold(ratio) if own else ratio} "
                f"| {gf['numpy_2t']:.0f} |"
            )
    lines += ["", *floor_md(results, gw), ""]
    for own in (True, False):
        lines += product_detail_md(gw, own)
    return lines


def floor_md(results: dict, gw: dict[str, dict]) -> list[str]:
    """The GEMM floor of each workload beside mlpfast's time and the targets' times."""
    fs = floors(results)
    if not fs:
        return []
    threads = sorted({f.threads for f in fs})
    caveat = ""
    timed = {f.name for f in fs if f.mlpfast is not None}
    main_days = sorted(
        {r.r.get("date", results["machine"]["date"]) for r in rows(results) if r.w.name in timed}
    )
    gemm_days = sorted({r["date"] for r in gw.values()})
    if timed and main_days != gemm_days:
        caveat = (
            f" The products were timed on {', '.join(gemm_days)}, the training on "
            f"{', '.join(main_days)}: shares across two runs on a shared machine are "
            "approximate."
        )
    lines = [
        "**GEMM floor**: the faer products of every step of the training run (steps per epoch "
        "= ceil(samples / batch), the last partial batch's smaller products timed as such) × "
        f"epochs, divided by mlpfast's {' or '.join(map(str, threads))} threads: the time the "
        "products alone would take with both cores perfectly used, in the workload's own "
        "dtype. Beside it mlpfast's training time from the table above, and the time each "
        "target asks for (numpy's or JAX best's time / the target ratio); *below the floor* "
        f"means no engine using this kernel can meet that target on this machine.{caveat}",
        "",
        "| workload | dtype | steps | faer µs per step | GEMM floor s | mlpfast s "
        "| floor / mlpfast | numpy target asks s | below the floor | JAX target asks s "
        "| below the floor |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in fs:
        r = gw[f.name]
        per_step = gemm_bench.step_seconds(r["dtypes"][f.dtype], "faer")
        share = f.share
        lines.append(
            f"| {f.name} | {f.dtype} | {step_count(r)} | {us(per_step)} | {f.seconds:.3f} "
            f"| {fmt(f.mlpfast)} | {'-' if share is None else f'{100 * share:.0f}%'} "
            f"| {fmt(f.numpy_asks)} | {below(f.numpy_asks, f.seconds)} "
            f"| {fmt(f.jax_asks)} | {below(f.jax_asks, f.seconds)} |"
        )
    return lines


def product_detail_md(gw: dict[str, dict], own: bool) -> list[str]:
    """Every product's figures, in each workload's own dtype (own) or in the others."""
    body = []
    for name, r in gw.items():
        for dtype in other_dtypes(r):
            if (dtype == r["dtype"]) != own:
                continue
            entry = r["dtypes"][dtype]
            for key, rows_ in (("products", r["batch"]), ("last_products", r["last_rows"])):
                for p in entry.get(key, []):
                    body.append(
                        f"| {name} | {dtype} | {rows_} | {p['layer'] + 1} | {p['product']} "
                        f"| {p['m']} × {p['k']} × {p['n']} | {p['flop'] / 1e6:,.2f} "
                        f"| {us(p['faer_s'])} | {us(p['numpy_1t_s'])} | {us(p['numpy_2t_s'])} "
                        f"| {p['faer_gflops']:.0f} | {p['numpy_1t_gflops']:.0f} "
                        f"| {p['numpy_2t_gflops']:.0f} | {p['numpy_1t_s'] / p['faer_s']:.2f} |"
                    )
    if not body:
        return []
    which = "each workload's own dtype" if own else "the other dtype"
    return [
        "<details>",
        f"<summary>Per product, {which} (rows: of the batch; layer: 1 is the first)</summary>",
        "",
        "| workload | dtype | rows | layer | product | m × k × n | MFLOP | faer µs "
        "| numpy µs, 1 thread | numpy µs, 2 threads | faer GFLOP/s | numpy GFLOP/s, 1 thread "
        "| numpy GFLOP/s, 2 threads | numpy 1 thread / faer |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *body,
        "",
        "</details>",
        "",
    ]


def floor_notes(results: dict) -> list[str]:
    """Per workload: the kernel against numpy's, the share of mlpfast's time the floor is,
    and whether each target's time lies below it."""
    gw = gemm_workloads(results)
    lines = []
    for f in floors(results):
        r = gw[f.name]
        t = kernel_totals(r["dtypes"][f.dtype])
        sec = t["seconds"]
        text = (
            f"- `{f.name}` ({f.dtype}): faer's kernel runs a step's products at "
            f"{t['gflops']['faer']:.0f} GFLOP/s on one thread, numpy's at "
            f"{t['gflops']['numpy_1t']:.0f} (numpy takes {t['numpy_over_faer']:.2f}× faer's "
            f"time); with two BLAS threads numpy takes {us(sec['numpy_2t'])} µs per step, "
            f"faer's products spread over {plural(f.threads, 'thread')} "
            f"{us(sec['faer'] / f.threads)} µs. The products of the whole run alone, spread "
            f"perfectly over {plural(f.threads, 'thread')}, take {f.seconds:.3f} s"
        )
        text += (
            f" (the last partial batch of {f.last_rows} rows counted with its own products)"
            if f.last_rows
            else ""
        )
        if f.mlpfast is None:
            lines.append(text + "; mlpfast's training time is not in the results.")
            continue
        text += (
            f": **{100 * f.share:.0f}%** of mlpfast's {f.mlpfast:.3f} s, leaving "
            f"{f.mlpfast - f.seconds:.3f} s to everything else."
        )
        for who, asks in (("numpy", f.numpy_asks), ("JAX", f.jax_asks)):
            if asks is None:
                continue
            if asks < f.seconds:
                text += (
                    f" The {who} target asks for {asks:.3f} s, **below the floor** "
                    f"({100 * asks / f.seconds:.0f}% of it): no engine using this kernel can "
                    "meet it on this machine."
                )
            else:
                text += (
                    f" The {who} target asks for {asks:.3f} s, above the floor: it leaves "
                    f"{asks - f.seconds:.3f} s ({100 * (asks - f.seconds) / asks:.0f}% of it) "
                    "to everything but the products."
                )
        lines.append(text)
    return lines


def gemm_sentence(results: dict) -> str | None:
    """The kernel against numpy's, and the floor's share of mlpfast's time, as ranges."""
    gw = gemm_workloads(results)
    ratios = [
        kernel_totals(r["dtypes"][r["dtype"]])["numpy_over_faer"]
        for r in gw.values()
        if r["dtype"] in r["dtypes"]
    ]
    if not ratios:
        return None
    text = (
        f"On the products of a training step, numpy's one-thread GEMM takes {span(ratios)}× "
        f"the time of faer's kernel (which mlpfast runs on one thread per product) in the "
        f"{len(ratios)} workloads' own dtypes"
    )
    shares = [f.share for f in floors(results) if f.share is not None]
    if shares:
        text += (
            "; those products alone, both cores perfectly used, account for "
            f"{span([100 * s for s in shares], '.0f')}% of mlpfast's training time"
        )
    return text + "."


# -------------------------------------------------------------------------------- README


def readme_block(results: dict) -> str:
    """The README's performance figures: ranges of the tables' ratios and the latencies."""
    rs = rows(results)
    if not rs:
        return "No benchmark results yet: run `python benches/run.py`."
    sentences = [training_sentence(results, rs), targets_sentence(results, rs)]
    sentences += [
        s
        for s in (
            gemm_sentence(results),
            latency_sentence(one_row_us(results)),
            threads_sentence(results),
        )
        if s
    ]
    return "\n".join(wrap(" ".join(sentences)))


def machine_phrase(results: dict) -> str:
    """'the 2-core AMD EPYC (AVX-512) of the last run (dates)'."""
    m = results["machine"]
    simd = f" ({m['simd']})" if "simd" in m else ""
    days = dates(results)
    when = days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}"
    return f"the {m['cores']}-core {m['cpu']}{simd} of the last run ({when})"


def numpy_kernel(rs: list[Row]) -> str | None:
    """numpy's BLAS and kernel when the workloads recorded one and the same (e.g. "OpenBLAS
    SkylakeX"), else None."""
    kernels = {r.r.get("numpy_blas") for r in rs}
    return kernels.pop() if len(kernels) == 1 else None


def training_sentence(results: dict, rs: list[Row]) -> str:
    """Ranges of every contender's time over mlpfast's."""
    text = (
        f"On {machine_phrase(results)}, numpy{paren(numpy_kernel(rs))} takes "
        f"{span([r.numpy_ratio for r in rs])}× mlpfast's time to train the {len(rs)} workloads"
    )
    others = [
        ("the faster of JAX's two compiled forms", [r.jax_ratio for r in rs]),
        ("scikit-learn", [div(r.s("sklearn"), r.s("mlpfast")) for r in rs]),
        ("PyTorch on the CPU", [div(r.s("torch"), r.s("mlpfast")) for r in rs]),
    ]
    found = [f"{who} {span(got)}×" for who, values in others if (got := present(values))]
    if found:
        text += ", " + ", ".join(found[:-1]) + (" and " if len(found) > 1 else "") + found[-1]
    return text + "."


def present(values: list[float | None]) -> list[float]:
    return [v for v in values if v is not None]


def targets_sentence(results: dict, rs: list[Row]) -> str:
    """How many targets are met."""
    text = f"Targets met: {sum(r.numpy_met for r in rs)} of {len(rs)} against numpy"
    with_jax = [r for r in rs if r.jax_met is not None]
    if with_jax:
        text += f", {sum(bool(r.jax_met) for r in with_jax)} of {len(with_jax)} against JAX"
    wide = next((r for r in rs if r.w.name == "wide"), None)
    if wide is not None:
        share = wide.share(wide.gflops())
        text += (
            f"; `wide` runs at {100 * share:.0f}% of numpy's float32 GEMM peak "
            f"(target ≥ {100 * WIDE_PEAK_TARGET:.0f}%)"
        )
    if "sweep" in results:
        rel = sweep_ratios(results["sweep"])
        text += (
            f"; the activations other than relu take "
            f"{span([rel[a] for a in sweep.ELEMENTWISE if a in rel and a != 'relu'])}× "
            f"relu's time (target ≤ {SWEEP_TARGET:.2f})"
        )
    return text + "."


def latency_sentence(us: dict[str, float]) -> str | None:
    """One-row latencies."""
    if "native predict" not in us:
        return None
    text = f"One-row `predict` takes {us['native predict']:.1f} µs natively (target ≤ 6)"
    if "estimator predict" in us:
        text += (
            f", {us['estimator predict']:.1f} µs through the scikit-learn estimator "
            f"(`predict_proba` {us['estimator predict_proba']:.1f} µs; target ≤ 20)"
        )
    best = onnx_best(us)
    if best is not None:
        text += (
            f"; onnxruntime runs the same network in {best[1]:.1f} µs (the better of its "
            "default and one-thread sessions)"
        )
    if "sklearn predict" in us:
        text += f", scikit-learn's own MLP in {us['sklearn predict']:.1f} µs"
    return text + "."


def threads_sentence(results: dict) -> str | None:
    """Default threads against one, quiet and with a busy core (the contention section)."""
    c = results.get("contention", {}).get("workloads")
    if not c:
        return None
    quiet = [r["quiet"]["one"] / r["quiet"]["default"] for r in c.values()]
    busy = [r["busy"]["default"] / r["busy"]["one"] for r in c.values()]
    return (
        f"The default threads train {span(quiet)}× as fast as one thread on a quiet machine, "
        f"and take {span(busy)}× one thread's time while another process keeps a core busy."
    )


def wrap(text: str, width: int = 96) -> list[str]:
    """``text`` in lines of at most ``width`` characters."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return [*lines, line] if line else lines


def update_readme(path: Path, block: str) -> bool:
    """Replaces what lies between the README's markers by ``block``; False without markers."""
    text = path.read_text()
    if BEGIN not in text or END not in text:
        return False
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{block}\n{END}{tail}")
    return True
