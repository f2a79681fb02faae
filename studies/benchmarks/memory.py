"""Peak memory of the README's main command, phase by phase, beside lm-eval's own `--model hf`.

Runs `lm-eval-emergence --tasks emergence_icl` (SmolLM2-135M in float32, the tasks' own
documents unless `--docs` sets `n_docs`) in a child process with a probe that marks the phases
of the run and reads the process's resident memory at each mark: the peak within the phase
(VmHWM, reset at each mark through /proc/self/clear_refs) and the resident memory as it ends
(VmRSS). Then, in another child, lm-eval's own `lm_eval --model hf` on `emergence_cloze` (a plain
loglikelihood task the plugin ships) with the same model and dtype. The plugin's whole-process
peak is the largest phase peak (the resets lower the kernel's own figure); lm-eval's is the
kernel's (`os.wait4`'s ru_maxrss), as `/usr/bin/time -v` reports it.

    python -m studies.benchmarks.memory --json studies/benchmarks/results/memory_smollm2.json

The committed `memory_smollm2_before.json` is the same benchmark run from a checkout of commit
2e13b31 (before issue 35); both ran with OMP_NUM_THREADS=1 on 2 cores, one of them busy.

The phases: `start` (imports, arguments), `load` (the model), `documents` (the tasks' documents
and requests), `capture` (the emergence requests' forward passes), `results` (lm-eval's
per-document results, gathering), `estimation` (the tasks' estimates and statistics), `end`
(the table, the results and sidecar files).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PHASES = ("start", "load", "documents", "capture", "results", "estimation", "end")
_PROBE_ENV = "LM_EVAL_EMERGENCE_MEMORY_PROBE"


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


class Phases:
    """The phases of one process: at each mark, the peak and the end resident memory of the
    phase that ends (kB), then the peak is reset for the next."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.current = "start"
        self.t0 = time.perf_counter()

    def mark(self, phase: str) -> None:
        if phase == self.current:
            return
        now = time.perf_counter()
        self.rows.append(
            {
                "phase": self.current,
                "peak_kb": _status_kb("VmHWM"),
                "end_kb": _status_kb("VmRSS"),
                "seconds": now - self.t0,
            }
        )
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        self.current, self.t0 = phase, now

    def summary(self) -> list[dict]:
        """Per phase name: its largest peak, its last end, its total seconds."""
        out: dict[str, dict] = {}
        for row in self.rows:
            seen = out.setdefault(row["phase"], {"phase": row["phase"], "peak_kb": 0,
                                                 "end_kb": 0, "seconds": 0.0})  # fmt: skip
            seen["peak_kb"] = max(seen["peak_kb"], row["peak_kb"])
            seen["end_kb"] = row["end_kb"]
            seen["seconds"] += row["seconds"]
        return [out[p] for p in PHASES if p in out]


def _wrap(owner: type, name: str, phases: Phases, during: str, after: str) -> None:
    original = getattr(owner, name)

    def wrapped(*args, **kwargs):
        phases.mark(during)
        try:
            return original(*args, **kwargs)
        finally:
            phases.mark(after)

    setattr(owner, name, wrapped)


def probe(argv: list[str], out: Path) -> int:
    """Run the plugin's command line on `argv` with the phase marks; write them to `out`."""
    phases = Phases()
    from lm_eval_emergence import cli
    from lm_eval_emergence.harness.aggregate import TaskEstimate
    from lm_eval_emergence.harness.model import HFEmergenceLM

    _wrap(HFEmergenceLM, "__init__", phases, "load", "documents")
    _wrap(HFEmergenceLM, "emergence", phases, "capture", "results")
    _wrap(TaskEstimate, "_estimate", phases, "estimation", "end")
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    phases.mark("done")
    out.write_text(json.dumps({"phases": phases.summary(), "exit": code}))
    return int(code or 0)


def _child(command: list[str], env: dict[str, str], log: Path) -> tuple[int, float, float]:
    """Run `command`; its exit status, whole-process peak (GB, the kernel's) and wall seconds."""
    t0 = time.perf_counter()
    with log.open("w") as sink:
        proc = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss / 1e6, time.perf_counter() - t0  # kB -> GB


def main(argv: list[str] | None = None) -> int:
    """Run both children; print the phase table and both peaks; write --json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="emergence_icl")
    parser.add_argument("--docs", type=int, default=None, help="n_docs (default: the tasks')")
    parser.add_argument("--hf-limit", type=int, default=None, help="--limit of the hf run")
    parser.add_argument("--skip-hf", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--label", default="")
    args = parser.parse_args(argv)

    from lm_eval_emergence.default_model import default_model_dir

    model_dir = str(default_model_dir())
    work = Path(tempfile.mkdtemp(prefix="ie_memory_"))
    env = {**os.environ}
    command = ["--tasks", args.tasks, "--output_path", str(work / "plugin")]
    if args.docs is not None:
        command += ["--metadata", json.dumps({"n_docs": args.docs})]
    phases_file = work / "phases.json"
    code, peak, wall = _child(
        [sys.executable, "-m", "studies.benchmarks.memory", "--probe", str(phases_file), *command],
        env,
        work / "plugin.log",
    )
    if code != 0:
        print((work / "plugin.log").read_text()[-3000:], file=sys.stderr)
        raise SystemExit(f"the plugin's run failed ({code}); log: {work / 'plugin.log'}")
    phases = json.loads(phases_file.read_text())["phases"]
    # the probe's resets of VmHWM lower the kernel's whole-process figure: the peak is the
    # largest of the phases' peaks
    peak = max(peak, max(row["peak_kb"] for row in phases) / 1e6)
    report = {
        "label": args.label,
        "command": ["lm-eval-emergence", *command[:2], *command[4:]],
        "docs": args.docs,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "plugin": {"peak_gb": peak, "seconds": wall, "phases": phases},
    }
    if not args.skip_hf:
        taskdir = Path(__import__("lm_eval_emergence").meta.tasks_dir())
        hf = ["lm_eval", "--model", "hf", "--model_args", f"pretrained={model_dir},dtype=float32",
              "--tasks", "emergence_cloze", "--include_path", str(taskdir),
              "--batch_size", "32", "--output_path", str(work / "hf")]  # fmt: skip
        if args.hf_limit is not None:
            hf += ["--limit", str(args.hf_limit)]
        code, hf_peak, hf_wall = _child(hf, env, work / "hf.log")
        if code != 0:
            raise SystemExit(f"lm-eval's hf run failed ({code}); log: {work / 'hf.log'}")
        report["hf"] = {"command": hf[:7] + hf[9:-2], "peak_gb": hf_peak, "seconds": hf_wall,
                        "limit": args.hf_limit}  # fmt: skip
    print(f"{'phase':<12} {'peak GB':>8} {'at end GB':>10} {'seconds':>8}")
    for row in phases:
        print(f"{row['phase']:<12} {row['peak_kb'] / 1e6:>8.2f} {row['end_kb'] / 1e6:>10.2f} "
              f"{row['seconds']:>8.1f}")  # fmt: skip
    print(f"plugin peak (whole process): {peak:.2f} GB in {wall:.0f} s")
    if "hf" in report:
        print(f"lm-eval --model hf on emergence_cloze: {report['hf']['peak_gb']:.2f} GB")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--probe":
        sys.exit(probe(sys.argv[3:], Path(sys.argv[2])))
    sys.exit(main())
