"""The numbers and figures of the paper's four claims (docs/reproduction.md), from the runs' own
files: the lm-eval results and sidecars that `studies/reproduction/run.sh` keeps under
studies/reproduction/results/, and the trained-here family of
studies/validity/results/probe_family.json.

    python -m studies.reproduction.claims --out studies/reproduction/results

Writes <out>/claims.json (every number the document quotes) and the two figures the report of
the runs (`lm-eval-emergence report`) cannot draw: size.png (the family with the pretrained runs)
and text.png (the scored texts), under <out>/claims/. Each rank correlation comes with a 95%
bootstrap interval over the points (report.stats.correlate).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from lm_eval_emergence.report.runs import Run, load_runs  # noqa: E402
from lm_eval_emergence.report.stats import correlate  # noqa: E402

#: The runs of the size series, smallest first, with the name the document uses.
MODELS = {"smollm2": "SmolLM2-135M", "qwen05": "Qwen2.5-Coder-0.5B", "qwen15": "Qwen2.5-Coder-1.5B"}
#: The family's protocol in probe_family.json that is the default protocol, floor-update.
FAMILY_CANDIDATE = "gaussian-floor(kappa=0.25) on y-x"
OUTCOMES = ("correct", "repeat", "other")


def _run(path: Path) -> Run | None:
    return load_runs([path])[0] if path.is_dir() and any(path.glob("results_*.json")) else None


def _metric(run: Run, task: str, key: str) -> float | None:
    value = run.value(task, f"{key},none")
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _corr(x: list[float], y: list[float]) -> dict[str, Any]:
    c = correlate(x, y, bootstrap=2000, seed=0)
    return {"n": c.n, "spearman": c.spearman, "ci95": c.spearman_ci, "note": c.note}


def family_parameters(family: dict) -> dict[int, int]:
    """Parameters of each width of the family (probes before this script did not record them):
    the model `validity_probe.family_series` builds, on the vocabulary of its lists."""
    from studies.family import build_family_model
    from studies.validity.probe import family_lists

    s = family["settings"]
    args = argparse.Namespace(**s)
    _, test = family_lists(args)
    return {
        w: sum(p.numel() for p in build_family_model(test.vocab_size, w, s["family_layers"],
                                                     seed=s["seed"]).parameters())
        for w in s["widths"]
    }  # fmt: skip


def size_series(out: Path, family: dict | None) -> dict[str, Any]:
    """Claim 1: IE, ICL accuracy and the cloze accuracy against parameter count."""
    rows = []
    for name, title in MODELS.items():
        for suffix, kind in (("", "trained"), ("-random", "random init")):
            run = _run(out / "runs" / f"{name}{suffix}")
            if run is None:
                continue
            rows.append(
                {
                    "model": f"{title} ({kind})",
                    "series": "pretrained" if not suffix else "random",
                    "n_parameters": run.n_parameters,
                    "ie_bits": _metric(run, "emergence_icl", "emergence"),
                    "ie_stderr_bits": _metric(run, "emergence_icl", "emergence_stderr"),
                    "icl_acc": _metric(run, "emergence_icl", "acc"),
                    "cloze_acc": _metric(run, "emergence_cloze", "acc"),
                    "cloze_acc_norm": _metric(run, "emergence_cloze", "acc_norm"),
                    "natural_ie_bits": _metric(run, "emergence_natural", "emergence"),
                }
            )
    family_rows = (family or {}).get("models", [])
    widths = (
        family_parameters(family) if family_rows and "n_parameters" not in family_rows[0] else {}
    )
    for row in family_rows:
        cand = row["candidates"][FAMILY_CANDIDATE]
        rows.append(
            {
                "model": f"family {row['model']}",
                "series": "family",
                "n_parameters": row.get("n_parameters") or widths.get(row["width"]),
                "ie_bits": cand["ie_bits"],
                "ie_stderr_bits": cand["ie_stderr_bits"],
                "icl_acc": row["acc"],
                "cloze_acc": None,
                "cloze_acc_norm": None,
                "natural_ie_bits": None,
            }
        )
    corr: dict[str, Any] = {}
    for label, keep in (
        ("pretrained and random (6 runs)", ("pretrained", "random")),
        ("family checkpoints (probe_family.json)", ("family",)),
        ("all models and checkpoints", ("pretrained", "random", "family")),
    ):
        sel = [r for r in rows if r["series"] in keep and r["ie_bits"] is not None]
        with_n = [r for r in sel if r["n_parameters"]]
        corr[label] = {
            "ie_vs_parameters": _corr(
                [math.log(r["n_parameters"]) for r in with_n], [r["ie_bits"] for r in with_n]
            ),
            "ie_vs_icl_acc": _corr([r["icl_acc"] for r in sel], [r["ie_bits"] for r in sel]),
            "icl_acc_vs_parameters": _corr(
                [math.log(r["n_parameters"]) for r in with_n], [r["icl_acc"] for r in with_n]
            ),
        }
    cloze = [r for r in rows if r["cloze_acc"] is not None and r["ie_bits"] is not None]
    corr["pretrained and random (6 runs)"]["ie_vs_cloze_acc"] = _corr(
        [r["cloze_acc"] for r in cloze], [r["ie_bits"] for r in cloze]
    )
    return {"rows": rows, "correlations": corr}


def _prefix_entropies(run_dir: Path, task: str) -> dict[str, Any] | None:
    """The data's own entropy for the curves: plug-in entropy (bits) of the sequences' prefixes
    up to each position, read from the sidecar's token ids summary when present."""
    run = _run(run_dir)
    result = run.result(task) if run else None
    if result is None:
        return None
    return {
        "sequence_entropy_bits": result.sequence_entropy_bits,
        "log2_n": result.log2_n,
        "token_entropy_bits": result.token_entropy_bits,
    }


def curves(out: Path) -> dict[str, Any]:
    """Claim 2: E per shot (ICL) and per position (natural text), per model, with the data's
    entropy; claim 3's spread of E over blocks per shot."""
    data: dict[str, Any] = {}
    for name in MODELS:
        for suffix in ("", "-random"):
            run = _run(out / "runs" / f"{name}{suffix}")
            if run is None:
                continue
            shots = (run.sidecar or {}).get("emergence_icl_shots")
            natural = run.result("emergence_natural")
            data[f"{name}{suffix}"] = {
                "shot_emergence_bits": [p.emergence_bits for p in shots.shot_curve or []]
                if shots
                else None,
                "shot_stderr_bits": [p.stderr_bits for p in shots.shot_curve or []]
                if shots
                else None,
                "shot_layer_std_bits": [p.layer_std_bits for p in shots.shot_curve or []]
                if shots
                else None,
                "shots_data": _prefix_entropies(
                    out / "runs" / f"{name}{suffix}", "emergence_icl_shots"
                ),
                "position_emergence_bits": [p.emergence_bits for p in natural.per_position or []]
                if natural
                else None,
                "natural_token_entropy_bits": natural.token_entropy_bits if natural else None,
            }
    return data


def outcomes(out: Path) -> dict[str, Any]:
    """Claim 3: IE of emergence_icl_shots split by what the model does next."""
    data = {}
    for name in MODELS:
        for suffix in ("", "-random"):
            run = _run(out / "runs" / f"{name}{suffix}")
            if run is None:
                continue
            task = "emergence_icl_shots"
            data[f"{name}{suffix}"] = {
                o: {
                    "ie_bits": _metric(run, task, f"emergence_outcome_{o}"),
                    "ie_stderr_bits": _metric(run, task, f"emergence_outcome_{o}_stderr"),
                    "n_docs": _metric(run, task, f"emergence_outcome_{o}_docs"),
                }
                for o in OUTCOMES
            } | {"n_used": _metric(run, task, "emergence_outcome_used_docs")}
    return data


def _token_entropy(path: Path, tokenizer: Any, window: int = 8) -> float:
    """Mean over the window's positions of the plug-in entropy (bits) of the token there, over
    the set's texts tokenized by the scoring model (its first window only)."""
    ids = [tokenizer(json.loads(line)["text"], add_special_tokens=False)["input_ids"][:window]
           for line in path.read_text().splitlines() if line.strip()]  # fmt: skip
    ids = [row for row in ids if len(row) == window]
    arr = np.array(ids)
    ent = []
    for t in range(window):
        _, counts = np.unique(arr[:, t], return_counts=True)
        p = counts / counts.sum()
        ent.append(float(-(p * np.log2(p)).sum()))
    return float(np.mean(ent))


def text_scoring(out: Path, sizes: dict[str, int | None]) -> dict[str, Any]:
    """Claim 4: SmolLM2's IE of each writer's texts, next to the texts' token entropy."""
    from transformers import AutoTokenizer

    from lm_eval_emergence.default_model import default_model_dir

    tok = AutoTokenizer.from_pretrained(str(default_model_dir()))
    rows = []
    for path in sorted((out / "text").glob("*.jsonl")):
        name = path.stem
        run = _run(out / "text_runs" / name)
        if run is None:
            continue
        writer = name.rsplit("_", 1)[0] if name != "human" else "human"
        rows.append(
            {
                "set": name,
                "writer": writer,
                "writer_parameters": sizes.get(writer),
                "ie_bits": _metric(run, "emergence_text", "emergence"),
                "ie_stderr_bits": _metric(run, "emergence_text", "emergence_stderr"),
                "n_windows": (run.sidecar or {}).get("emergence_text").n_docs
                if run.sidecar
                else None,
                "token_entropy_bits": _token_entropy(path, tok),
            }
        )
    ranked = [r for r in rows if r["writer"] in MODELS and r["ie_bits"] is not None]
    result: dict[str, Any] = {"rows": rows}
    result["ie_vs_writer_size"] = _corr(
        [math.log(r["writer_parameters"]) for r in ranked], [r["ie_bits"] for r in ranked]
    )
    result["entropy_vs_writer_size"] = _corr(
        [math.log(r["writer_parameters"]) for r in ranked],
        [r["token_entropy_bits"] for r in ranked],
    )
    scored = [r for r in rows if r["ie_bits"] is not None]
    if len(scored) >= 3:  # what the entropy does not explain: residuals of a linear fit
        x = np.array([r["token_entropy_bits"] for r in scored])
        y = np.array([r["ie_bits"] for r in scored])
        slope, icept = np.polyfit(x, y, 1)
        for r, res in zip(scored, y - (slope * x + icept), strict=True):
            r["ie_residual_bits"] = float(res)
        result["ie_on_entropy_fit"] = {
            "slope": float(slope),
            "intercept": float(icept),
            "r2": float(1 - ((y - slope * x - icept) ** 2).sum() / ((y - y.mean()) ** 2).sum()),
        }
        res_ranked = [r for r in ranked if "ie_residual_bits" in r]
        result["residual_vs_writer_size"] = _corr(
            [math.log(r["writer_parameters"]) for r in res_ranked],
            [r["ie_residual_bits"] for r in res_ranked],
        )
    return result


def _block_emergence(default: Run | None, task: str, paper: Any) -> float | None:
    """The default protocol's E on the block the paper's protocol measured."""
    result = default.result(task) if default else None
    if result is None or paper is None:
        return None
    rows = {row.layer: row.emergence_bits for row in result.per_layer}
    return rows.get(paper.result.layers[0])


def paper_protocol(out: Path) -> list[dict[str, Any]]:
    """The paper's protocol (mine-paper, 300 steps, one block) next to the default's number."""
    rows = []
    for name, title in MODELS.items():
        for suffix, kind in (("", "trained"), ("-random", "random init")):
            run = _run(out / "paper_runs" / f"{name}{suffix}")
            default = _run(out / "runs" / f"{name}{suffix}")
            if run is None:
                continue
            task = "emergence_icl_country"
            entry = (run.sidecar or {}).get(task)
            rows.append(
                {
                    "model": f"{title} ({kind})",
                    "n_parameters": run.n_parameters,
                    "block": entry.result.layers if entry else None,
                    "paper_ie_bits": _metric(run, task, "emergence"),
                    "paper_ie_stderr_bits": _metric(run, task, "emergence_stderr"),
                    "paper_flagged_blocks": _metric(run, task, "emergence_flagged_blocks"),
                    "default_block_bits": _block_emergence(default, task, entry),
                    "acc": _metric(run, task, "acc"),
                    "seconds_estimation": entry.seconds_estimation if entry else None,
                }
            )
    return rows


def _figures(claims: dict[str, Any], fig_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig_dir.mkdir(parents=True, exist_ok=True)
    written = []
    # claim 1: size
    rows = claims["size"]["rows"]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    marks = {"pretrained": "o", "random": "x", "family": "."}
    for series, mark in marks.items():
        sel = [r for r in rows if r["series"] == series and r["n_parameters"]]
        if not sel:
            continue
        n = [r["n_parameters"] for r in sel]
        err = [r["ie_stderr_bits"] or 0 for r in sel]
        axes[0].errorbar(n, [r["ie_bits"] for r in sel], yerr=err, fmt=mark, label=series)
        axes[1].plot(n, [r["icl_acc"] for r in sel], mark, label=series)
        cl = [(r["n_parameters"], r["cloze_acc"]) for r in sel if r["cloze_acc"] is not None]
        if cl:
            axes[2].plot(*zip(*cl, strict=True), mark, label=series)
    axes[2].axhline(0.25, color="grey", lw=0.8, ls="--", label="chance")
    for ax, title in zip(axes, ("IE (bits), emergence_icl", "ICL acc", "cloze acc"), strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("parameters")
        ax.set_title(title)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(fig_dir / "size.png", dpi=110)
    plt.close(fig)
    written.append("claims/size.png")
    # claims 2 and 3: the report draws the shot, position and outcome figures of every run
    # claim 4: text scoring
    rows = claims["text"]["rows"]
    if rows:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for r in rows:
            ax.errorbar(r["token_entropy_bits"], r["ie_bits"], yerr=r["ie_stderr_bits"] or 0,
                        fmt="s" if r["set"].endswith("sampled") else "o")  # fmt: skip
            ax.annotate(r["set"], (r["token_entropy_bits"], r["ie_bits"]), fontsize=7)
        ax.set_xlabel("token entropy of the set (bits, mean over the window's positions)")
        ax.set_ylabel("IE scored by SmolLM2 (bits)")
        fig.tight_layout()
        fig.savefig(fig_dir / "text.png", dpi=110)
        plt.close(fig)
        written.append("claims/text.png")
    return written


def main(argv: list[str] | None = None) -> int:
    """Write claims.json and the figures; returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("studies/reproduction/results"))
    parser.add_argument(
        "--family", type=Path, default=Path("studies/validity/results/probe_family.json")
    )
    args = parser.parse_args(argv)
    family = json.loads(args.family.read_text()) if args.family.is_file() else None
    claims: dict[str, Any] = {"size": size_series(args.out, family)}
    sizes = {}
    for name in MODELS:
        run = _run(args.out / "runs" / name)
        sizes[name] = run.n_parameters if run else None
        random_run = _run(args.out / "runs" / f"{name}-random")
        sizes[f"{name}-random"] = random_run.n_parameters if random_run else None
    claims["curves"] = curves(args.out)
    claims["outcomes"] = outcomes(args.out)
    claims["text"] = text_scoring(args.out, sizes)
    claims["paper_protocol"] = paper_protocol(args.out)
    claims["figures"] = _figures(claims, args.out / "claims")
    (args.out / "claims.json").write_text(json.dumps(claims, indent=1, default=float) + "\n")
    print(f"wrote {args.out / 'claims.json'} and {len(claims['figures'])} figures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
