"""Quality and cost of robnas's zero-cost proxies and surrogate ranker on NB201 cells.

On a table of published results (default: NAS-RobBench-201 on CIFAR-10, adversarially trained
NB201 cells; any table with an ``arch`` column and numeric target columns works):

1. robnas's proxies of ``--cells`` cells (no unreachable op, one per isomorphism class,
   sampled with ``--seed``), on the NB201 network (C=16, N=5, 10 classes), each scored on
   its freshly initialised network (the same init seed for every cell) and a fixed stand-in
   batch (CIFAR-10 is not available): 32 digits images of the embedded ``digits`` set, bilinearly
   resized to ``--input-size`` and copied to 3 channels. The cheap proxies run on every cell,
   the expensive ones (``--full-proxies``) on the first ``--full-cells`` of them. Per proxy:
   Kendall tau and Spearman rho against the target and ``clean_acc``, and Spearman rho with
   NASLib's value of the same proxy (``--zc-table``).
2. The zero-shot vote (mean rank of the vote proxies) and the surrogate ranker trained on 50,
   100 and 300 labelled cells (``--repeats`` random draws), Kendall tau on the other cells.
3. Cost: CPU time of scoring one candidate with the default screening proxies against one
   training epoch of the same candidate on digits (``TrialRunner.run_epoch``).

    python benchmarks/ranking.py --cache /tmp/ranking_proxies.csv   # ~1 h on 1 thread
    python benchmarks/ranking.py --cells 200 --full-cells 0 --json --no-record
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy.stats import kendalltau, spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import publish  # noqa: E402

from robnas.search._candidate_proxies import (  # noqa: E402
    DEFAULT_PROXIES,
    dataset_batch,
    score_network,
)
from robnas.search._encoding import decode_trial, encode_config  # noqa: E402
from robnas.search._ranker import DEFAULT_VOTE, SurrogateRanker, zero_shot_vote  # noqa: E402
from robnas.spaces import Objective  # noqa: E402
from robnas.spaces._genotype import Genotype  # noqa: E402
from robnas.spaces._isomorphism import EDGES, NUM_NODES  # noqa: E402
from robnas.trainables._network import build_network  # noqa: E402
from robnas.trainables._trial import TrialRunner  # noqa: E402

TITLE = "Zero-cost proxies and surrogate ranker on NAS-RobBench-201"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CHEAP = ("params", "macs", "synflow", "nwot", "jacob_cov", "meco", "snip", "grad_norm")
FULL = ("fisher", "grasp", "ntk_cond", "ntk_min_eig", "snip_adv", "nwot_adv", "jacob_cov_adv", "meco_adv")
#: robnas proxy -> NASLib's column of the same proxy.
NASLIB = {"params": "params", "macs": "flops", "synflow": "synflow", "nwot": "nwot", "jacob_cov": "jacov",
          "snip": "snip", "grad_norm": "grad_norm", "fisher": "fisher", "grasp": "grasp"}
#: NASLib's zero-cost proxies other than the size measures params and flops.
NASLIB_11 = ("epe_nas", "fisher", "grad_norm", "grasp", "jacov", "l2_norm", "nwot", "plain", "snip", "synflow", "zen")
TARGETS = {"zero_shot_tau": 0.78, "cost_ratio": 0.02}
#: The screening proxies (and vote) before ``meco``, and the default with ``jacob_cov`` added.
BEFORE = ["params", "synflow", "jacob_cov"]
WITH_JACOB_COV = ["params", "jacob_cov", "meco"]
#: The surrogate should beat this variant (the best published zero-cost ranker: NASLib's 11
#: proxies, extra trees) by ``MARGIN`` Kendall tau at every number of labelled cells.
ANCHOR = "NASLib's 11 zero-cost proxies, extra trees alone (anchor)"
MARGIN = 0.03
#: Scorings of each cost-table candidate, each by a fresh scorer; the median counts (the first
#: one also creates the kernels of the candidate's layer shapes).
COST_REPEATS = 5


def all_reachable(ops: tuple[str, ...]) -> bool:
    """Whether every non-``none`` edge lies on a path from the input to the output node."""
    forward, backward = {0}, {NUM_NODES - 1}
    for (to_node, from_node), op in zip(EDGES, ops):
        if op != "none" and from_node in forward:
            forward.add(to_node)
    for (to_node, from_node), op in reversed(list(zip(EDGES, ops))):
        if op != "none" and to_node in backward:
            backward.add(from_node)
    return all(op == "none" or (f in forward and t in backward) for (t, f), op in zip(EDGES, ops))


def select_cells(table: pd.DataFrame, count: int, seed: int) -> pd.DataFrame:
    """``count`` rows (all if fewer): no unreachable op, one per isomorphism class, seeded draw."""
    genotypes = table["arch"].map(Genotype.from_str)
    keep = genotypes.map(lambda g: all_reachable(g.ops) and g.is_connected())
    classes = genotypes.map(lambda g: g.isomorphism_key())
    rows = table[keep & ~classes.duplicated()]
    return rows.sample(n=min(count, len(rows)), random_state=seed).reset_index(drop=True)


def stand_in_batch(input_size: int, num_classes: int, size: int = 32, seed: int = 0):
    """``size`` digits images resized to ``input_size`` and copied to 3 channels; labels mod classes."""
    x, y = dataset_batch("digits", size=size, seed=seed)
    x = F.interpolate(x, size=(input_size, input_size), mode="bilinear", align_corners=False)
    return x.clamp(0, 1).repeat(1, 3, 1, 1).contiguous(), y % num_classes


def proxy_table(cells: pd.DataFrame, args, batch) -> pd.DataFrame:
    """Proxies of every cell (cheap) and of the first ``--full-cells`` (all); cached in ``--cache``."""
    cache = Path(args.cache) if args.cache else None
    done = pd.read_csv(cache) if cache and cache.exists() else pd.DataFrame(columns=["arch"])
    known = dict(zip(done["arch"], done.to_dict("records")))
    rows, start = [], time.process_time()
    for i, arch in enumerate(cells["arch"]):
        names = CHEAP + (FULL if i < args.full_cells else ())
        row = known.get(arch, {"arch": arch})
        missing = [n for n in names if pd.isna(row.get(n, np.nan))]
        if missing:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(args.seed)
                model = build_network(Genotype.from_str(arch), width=args.width, cells_per_stage=args.cells_per_stage,
                                      in_channels=3, num_classes=args.num_classes)
            row.update(score_network(model, batch, names=missing, eps=8 / 255, seed=args.seed))
            if cache:
                known[arch] = row
                pd.DataFrame(list(known.values())).to_csv(cache, index=False)
            if (i + 1) % 50 == 0:
                print(f"proxies of {i + 1}/{len(cells)} cells, {time.process_time() - start:.0f} s CPU",
                      file=sys.stderr, flush=True)
        rows.append(row)
    return pd.DataFrame(rows)


def proxy_cpu(cells: pd.DataFrame, args, batch, scores: pd.DataFrame, count: int = 5) -> dict[str, float]:
    """Median CPU seconds per cell of each proxy on the first ``count`` cells, scored afresh;
    also checks that the fresh scores equal those in ``scores`` (e.g. from the cache). With
    ``--keep-stale-cache`` a mismatch is recorded in ``args.stale`` (proxy -> largest relative
    difference) instead of stopping the run."""
    times: dict[str, list[float]] = {}
    args.stale = {}
    for arch in cells["arch"][:count]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(args.seed)
            model = build_network(Genotype.from_str(arch), width=args.width, cells_per_stage=args.cells_per_stage,
                                  in_channels=3, num_classes=args.num_classes)
        known = scores.set_index("arch").loc[arch]
        for name in CHEAP + (FULL if args.full_cells >= count else ()):
            start = time.process_time()
            value = score_network(model, batch, names=[name], eps=8 / 255, seed=args.seed)[name]
            times.setdefault(name, []).append(time.process_time() - start)
            if not np.isclose(value, known[name], rtol=1e-6, equal_nan=True):
                if not args.keep_stale_cache:
                    raise SystemExit(f"{name} of {arch}: fresh {value} != stored {known[name]}; delete the cache")
                change = abs(value - known[name]) / max(abs(known[name]), 1e-12)
                args.stale[name] = max(args.stale.get(name, 0.0), float(change))
    return {name: statistics.median(t) for name, t in times.items()}


def correlations(values: pd.Series, target: pd.Series) -> tuple[float, float]:
    """Kendall tau and Spearman rho over the rows where both are finite."""
    both = values.notna() & target.notna() & np.isfinite(values.astype(float))
    if both.sum() < 3:
        return math.nan, math.nan
    return (float(kendalltau(values[both], target[both])[0]), float(spearmanr(values[both], target[both])[0]))


def proxy_quality(data: pd.DataFrame, target: str, names: list[str], cpu: dict[str, float]) -> list[dict]:
    """One row per proxy: taus and rhos against the target and clean accuracy, NASLib agreement."""
    rows = []
    for name in names:
        have = data[data[name].notna()] if name in data else data.iloc[:0]
        row = {"proxy": name, "cells": len(have), "cpu_s": cpu.get(name, math.nan)}
        row["tau"], row["rho"] = correlations(have[name], have[target]) if len(have) else (math.nan,) * 2
        if "clean_acc" in have and target != "clean_acc":
            row["tau_clean"], row["rho_clean"] = correlations(have[name], have["clean_acc"])
        column = f"naslib_{NASLIB.get(name, '')}"
        if column in have:
            row["rho_naslib"] = correlations(have[name], have[column])[1]
            row["naslib_tau"] = correlations(have[column], have[target])[0]
        rows.append(row)
    return rows


def surrogate_taus(proxies: np.ndarray, features: np.ndarray, target: np.ndarray, names, args,
                   model: str = "ensemble") -> dict:
    """``{n labelled: [tau on the other cells, one per repeat]}`` of ``SurrogateRanker(model=model)``."""
    taus: dict[int, list[float]] = {}
    for n in args.labelled:
        if n >= len(target) - 2:
            continue
        taus[n] = []
        for repeat in range(args.repeats):
            order = np.random.default_rng(args.seed * 1000 + repeat).permutation(len(target))
            train, test = order[:n], order[n:]
            ranker = SurrogateRanker([Objective("target", "max")], proxy_names=names, seed=repeat,
                                    model=model)
            for i in train:
                ranker.observe(str(i), proxies[i], features[i], {"target": float(target[i])})
            predicted = ranker.predict(proxies[test], features[test])[:, 0]
            taus[n].append(float(kendalltau(predicted, target[test])[0]))
    return taus


def scoring_cost(args, count: int = 6) -> list[dict]:
    """CPU seconds of scoring a digits candidate (default proxies) and of one trial epoch."""
    from robnas.search._candidate_proxies import CandidateScorer
    from robnas.spaces._compose import build_space

    space = build_space(dataset="digits")
    rng = np.random.default_rng(args.seed)
    configs = [{"arch": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"}]
    for _ in range(count - 1):
        configs.append({k: d.categories[rng.integers(len(d.categories))] for k, d in space.items()})
    CandidateScorer(batch_size=32)(configs[0])  # warm-up: data set load, first kernels
    rows = []
    for config in configs:
        times = []
        for _ in range(COST_REPEATS):
            scorer = CandidateScorer(batch_size=32)
            start = time.process_time()
            scorer(config)
            times.append(time.process_time() - start)
        runner = TrialRunner(decode_trial({**config, "max_epochs": 2}))
        start = time.process_time()
        runner.run_epoch()
        epoch = time.process_time() - start
        trial = decode_trial(config)
        rows.append({"arch": trial.genotype.to_str(), "width": trial.macro.width,
                     "cells_per_stage": trial.macro.cells_per_stage, "sparsity": trial.sparsity.target,
                     "schedule": trial.sparsity.schedule, "attack": trial.attack.method,
                     "score_s": statistics.median(times), "epoch_s": epoch,
                     "ratio": statistics.median(times) / epoch})
    return rows


#: Accuracy columns of NAS-RobBench-201 whose ranking by each vote is reported.
VOTE_TARGETS = ("pgd_eps8_acc", "pgd_eps3_acc", "fgsm_eps8_acc", "autoattack_eps8_acc", "clean_acc")
#: Votes compared on the benchmark's network and on the digits screening network.
VOTES = (("meco",), ("params", "jacob_cov", "meco"), ("params", "meco"), tuple(BEFORE), ("params", "jacob_cov"))


def vote_taus(proxies: pd.DataFrame, data: pd.DataFrame) -> list[dict]:
    """Kendall tau of each vote of ``VOTES`` against each of ``VOTE_TARGETS`` in ``data``."""
    rows = []
    for vote in VOTES:
        if all(name in proxies for name in vote):
            scores = zero_shot_vote(proxies[list(vote)].to_numpy(float))
            rows.append({"vote": ", ".join(vote), **{t: float(kendalltau(scores, data[t])[0])
                                                     for t in VOTE_TARGETS if t in data}})
    return rows


def digits_proxies(cells: pd.DataFrame) -> pd.DataFrame:
    """The vote proxies of every cell as a digits screen scores them: ``CandidateScorer`` on the
    cell's default digits trial network (8x8 grey inputs, width 8, one cell per stage)."""
    from robnas.search._candidate_proxies import CandidateScorer

    names = tuple(dict.fromkeys(name for vote in VOTES for name in vote))
    scorer = CandidateScorer(names=names)
    return pd.DataFrame([scorer({"arch": arch}) for arch in cells["arch"]])


def _fmt(value: float, digits: int = 3) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _plain(value):
    """``value`` with numpy numbers as Python ones and NaN as ``None`` (valid JSON)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _summary(taus: dict[int, list[float]]) -> dict[int, float]:
    return {n: float(np.mean(v)) for n, v in taus.items()}


def _stale_note(args) -> str:
    """A sentence naming the cached proxies that differ from fresh scores, if any."""
    stale = getattr(args, "stale", {})
    if not stale:
        return ""
    changes = ", ".join(f"{name} {100 * change:.0f}%" for name, change in sorted(stale.items()))
    return (" **Cached proxies from an earlier revision of the proxy code**: the fresh scores of those 5 cells "
            f"differ from the values used (largest relative difference: {changes}); every variant below uses "
            "the same cached values, and NASLib's values do not depend on them.")


def body(report: dict, args) -> str:
    """The Markdown of the results section."""
    cheap_cells = report["cells"]
    lines = [
        f"Table `{Path(args.table).name}` ({report['table_rows']} rows), target `{args.target}`. "
        f"{cheap_cells} cells with no unreachable op, one per isomorphism class, drawn with seed "
        f"{args.seed}. Network: NB201 macro, C={args.width}, N={args.cells_per_stage}, {args.num_classes} "
        f"classes, {args.input_size}x{args.input_size} inputs, one init seed ({args.seed}) for every cell. "
        "**Stand-in batch** (CIFAR-10 is not available here): 32 images of the embedded `digits` set, "
        f"resized to {args.input_size}x{args.input_size} (bilinear) and copied to 3 channels, labels = "
        "digit. `synflow` is `ln(score)` (NASLib's form). Adversarial proxies: one FGSM step, eps 8/255. "
        f"Cheap proxies on all cells, the others on the first {report['full_cells']}. Torch on 1 thread: "
        f"{report['cpu_per_cell']:.1f} s CPU per cell for the cheap proxies, {report['cpu_per_cell_all']:.1f} s "
        "for all (median over 5 cells, rescored afresh and checked equal to the values used)."
        + _stale_note(args),
        "",
        "### Each proxy against the published accuracies",
        "",
        "tau / rho: Kendall / Spearman against the target; `clean`: against `clean_acc`; "
        "rho NASLib: Spearman with NASLib's value of the same proxy; NASLib tau: NASLib's value "
        "against the target on the same cells.",
        "",
        "| proxy | cells | CPU s / cell | tau | rho | tau clean | rho clean | rho NASLib | NASLib tau |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["proxies"]:
        lines.append(f"| {r['proxy']} | {r['cells']} | {_fmt(r['cpu_s'], 2)} | {_fmt(r['tau'])} | {_fmt(r['rho'])} | "
                     f"{_fmt(r.get('tau_clean'))} | {_fmt(r.get('rho_clean'))} | "
                     f"{_fmt(r.get('rho_naslib'))} | {_fmt(r.get('naslib_tau'))} |")
    lines += ["", "### Zero-shot vote and surrogate ranker", "",
              f"Vote: the mean rank of the proxies a row names (higher = better; the default's: "
              f"{', '.join(DEFAULT_VOTE)}), on all {cheap_cells} cells. Surrogate: `SurrogateRanker` on the proxies plus "
              "the encoded cell; `ensemble` (the default): the mean of extra trees (100 trees, max_features 0.5) "
              "and gradient boosting (200 stages, depth 3, learning rate 0.05, subsample 0.8) on every cell "
              "feature (one-hot ops, op counts, path statistics, path encoding), from 30 labelled cells on (below, "
              "the extra trees alone: before `meco`, with 10 draws of 10 / 15 / 25 labelled cells the ensemble reached 0.678 / "
              "0.692 / 0.761 against the extra trees' 0.698 / 0.731 / 0.763); `extra trees alone`: the "
              "extra trees without the one-hot ops and the path encoding (robnas's default before the "
              "ensemble). Trained on n labelled cells, Kendall tau on the other cells; mean "
              f"(min-max) over {args.repeats} random draws.", "",
              "| proxies | zero-shot tau | " + " | ".join(f"n={n}" for n in args.labelled) + " |",
              "|---|---:|" + "---:|" * len(args.labelled)]
    for variant in report["variants"]:
        cells = [f"{np.mean(v):.3f} ({min(v):.3f}-{max(v):.3f})" for v in variant["surrogate"].values()]
        lines.append(f"| {variant['name']} | {_fmt(variant['vote_tau'])} | " + " | ".join(cells) + " |")
    no_proxies = next((v for v in report["variants"] if v["name"].startswith("no proxies")), None)
    if no_proxies and 100 in no_proxies["surrogate"]:
        lines += ["", "Reference points (6,144 cells, NASLib's values): best single proxy `params` "
                  "tau 0.654, `nwot` 0.637, `synflow` 0.619; a random forest on NASLib's 11 proxies with 100 "
                  "labelled cells 0.795. Most of the surrogate's accuracy comes from the encoded cell (one-hot "
                  "ops, op counts, input-output path features): alone it reaches "
                  f"{np.mean(no_proxies['surrogate'][100]):.3f} with 100 labelled cells; the proxies add the rest "
                  "and carry the zero-shot vote."]
    lines += ["", "Also measured on the same 5 draws (tau at 50 / 100 / 300 labelled cells; scikit-learn models "
              "fitted directly on the proxies and the cell features). With `meco` (this revision's values), none "
              "better than the default at every n: `jacob_cov` added 0.814 / 0.848 / 0.882 (a backward pass: twice "
              "the scoring cost); `meco` summed per cell of the network (17 columns) added 0.821 / 0.843 / 0.875; "
              "`meco_adv` (4 FGSM images) added 0.813 / 0.847 / 0.879; `meco` summed over 3 init seeds 0.809 / 0.847 "
              "/ 0.879; the prediction's rank blended with `meco`'s rank (0.15) 0.815 / 0.845 / 0.875; a ridge "
              "regression as a third member 0.779 / 0.813 / 0.843; boosting of depth 4 0.809 / 0.846 / 0.881, with "
              "400 stages at learning rate 0.025 0.809 / 0.845 / 0.879; extra trees on every feature per split "
              "0.809 / 0.846 / 0.880; pairwise classifiers (is cell a better than cell b; score: the mean win "
              "probability against the labelled cells) at 50 / 100: extra trees on differences and both cells "
              "0.803 / 0.842, on differences alone 0.769 / 0.809, histogram boosting 0.777 / 0.803. Other "
              "zero-cost proxies on the first 400 cells (tau alone): ZiCo 0.620, SWAP (distinct sample-wise "
              "ReLU patterns) 0.624, MeCo's reference form (every module, containers included, the first image "
              "of a batch of 32) 0.753, its 8-channel sampling 0.722, in eval mode 0.638. `meco` over 4 / 8 / 16 "
              "/ 32 images (each a batch of its own): 0.788 / 0.789 / 0.790 / 0.790 on all 1,200 cells, at 0.10 / "
              "0.16 / 0.29 / 0.65 s CPU per cell; one image 0.770.",
              "",
              "Before `meco` (proxies params, synflow, jacob_cov, values of an earlier revision of the proxy "
              "code), none better than the ensemble either: ridge regression 0.709 / 0.728 / 0.717; pairwise "
              "logistic regression on feature differences 0.730 / 0.752 / 0.762; a Gaussian process (Matern, one "
              "length scale per feature) 0.763 / 0.810 / 0.845; gradient boosting alone 0.794 / 0.829 / 0.863, on "
              "rank targets 0.782 / 0.825 / 0.859; a linear prior on the proxies with trees on its residual 0.793 / "
              "0.825 / 0.857 (boosting), 0.762 / 0.807 / 0.846 (extra trees); the extra trees with the path "
              "encoding 0.786 / 0.831 / 0.857; the mean rank of the extra trees and boosting instead of their mean "
              "prediction 0.804 / 0.842 / 0.876."]
    lines += ["", "### Zero-shot votes on every accuracy of the table", "",
              f"Kendall tau of each vote (mean rank of its proxies) on the {cheap_cells} cells: on the benchmark's "
              "network above, and on the network a digits search screens (`CandidateScorer`: the cell's default "
              "digits trial, 8x8 grey inputs, width 8, one cell per stage, a batch of 32 digits images). At 8x8 "
              "inputs the feature maps of the second and third stages have no more pixels than channels, so "
              "`meco` sees only the first stage there.", "",
              "| network | vote | " + " | ".join(f"`{t}`" for t in VOTE_TARGETS) + " |",
              "|---|---|" + "---:|" * len(VOTE_TARGETS)]
    for network, key in (("benchmark", "votes"), ("digits screen", "votes_digits")):
        for r in report[key]:
            lines.append(f"| {network} | {r['vote']} | " + " | ".join(_fmt(r.get(t)) for t in VOTE_TARGETS) + " |")
    lines += ["", "### Cost of screening one candidate (digits)", "",
              "CPU seconds (process time, 1 thread) of `CandidateScorer` with the default proxies "
              f"({', '.join(DEFAULT_PROXIES)}; network build, pruning, batch of 32; median of {COST_REPEATS}) against one "
              "`TrialRunner.run_epoch()` of the same config (training and evaluation).", "",
              "| cell | width | N | sparsity | attack | scoring s | epoch s | ratio |", "|---|---:|---:|---|---|---:|---:|---:|"]
    for r in report["cost"]:
        arch = r["arch"].replace("|", "\\|")  # a bare | would split the table cell
        lines.append(f"| `{arch}` | {r['width']} | {r['cells_per_stage']} | {r['sparsity']} {r['schedule']} | "
                     f"{r['attack']} | {r['score_s']:.3f} | {r['epoch_s']:.2f} | {100 * r['ratio']:.2f}% |")
    lines += ["", "FGSM-RS trains with one attack step instead of PGD-7's seven, so its epoch is several "
              "times cheaper and the same scoring is a larger share of it. The machine's 2 cores were shared "
              "with other work (load above); CPU time is counted, not wall time."]
    lines += ["", "### Against the targets", ""]
    for name, value, goal in report["checks"]:
        verdict = "met" if (value <= goal if name.startswith("cost") else value >= goal) else "NOT met"
        lines.append(f"- {name}: {_fmt(value)} (target {'<=' if name.startswith('cost') else '>='} {goal}): {verdict}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", default=str(DATA / "nasrobbench201_cifar10.csv"), help="results table (arch + targets)")
    parser.add_argument("--zc-table", help="NASLib proxy table (default: naslib_zc_nb201_cifar10.csv beside --table)")
    parser.add_argument("--target", default="pgd_eps8_acc", help="column to rank by")
    parser.add_argument("--cells", type=int, default=1000, help="cells scored with the cheap proxies")
    parser.add_argument("--full-cells", type=int, default=100, help="of those, cells scored with every proxy")
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--cells-per-stage", type=int, default=5)
    parser.add_argument("--input-size", type=int, default=32)
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5, help="random draws of the labelled cells")
    parser.add_argument("--labelled", default="50,100,300", help="comma-separated numbers of labelled cells")
    parser.add_argument("--cache", help="CSV of computed proxies, reused and extended across runs")
    parser.add_argument("--keep-stale-cache", action="store_true",
                        help="use cached proxies that differ from fresh scores (recorded in the results)")
    parser.add_argument("--no-cost", action="store_true", help="skip the scoring-cost measurement")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--no-record", action="store_true", help="do not write benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    args.labelled = [int(n) for n in args.labelled.split(",") if n.strip()]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    table = pd.read_csv(args.table)
    if "arch" not in table or args.target not in table:
        raise SystemExit(f"{args.table} needs the columns arch and {args.target}")
    cells = select_cells(table, args.cells, args.seed)
    batch = stand_in_batch(args.input_size, args.num_classes, seed=args.seed)
    scores = proxy_table(cells, args, batch)
    cpu = proxy_cpu(cells, args, batch, scores)
    data = cells.merge(scores, on="arch", how="left", suffixes=("_table", ""))
    zc_path = Path(args.zc_table) if args.zc_table else Path(args.table).with_name("naslib_zc_nb201_cifar10.csv")
    if zc_path.is_file():
        zc = pd.read_csv(zc_path).drop(columns=["nb201_index"], errors="ignore")
        data = data.merge(zc.add_prefix("naslib_").rename(columns={"naslib_arch": "arch"}), on="arch", how="left")
    target = data[args.target].to_numpy(float)
    encoded = np.stack([encode_cell(a, args) for a in data["arch"]])
    naslib = lambda names: [f"naslib_{NASLIB[n]}" for n in names]  # noqa: E731
    variants = []
    for name, columns, vote, model in (
        (f"robnas default: {', '.join(DEFAULT_PROXIES)}, ensemble; vote of {', '.join(DEFAULT_VOTE)}",
         list(DEFAULT_PROXIES), list(DEFAULT_VOTE), "ensemble"),
        (f"robnas, {', '.join(DEFAULT_PROXIES)}, extra trees alone", list(DEFAULT_PROXIES), list(DEFAULT_VOTE), "trees"),
        ("robnas, params, jacob_cov, meco, ensemble; vote of the three", WITH_JACOB_COV, WITH_JACOB_COV, "ensemble"),
        ("robnas before meco: params, synflow, jacob_cov, ensemble; vote of the three", BEFORE, BEFORE, "ensemble"),
        ("robnas before meco, extra trees alone", BEFORE, BEFORE, "trees"),
        ("robnas, all cheap proxies, ensemble", list(CHEAP), list(DEFAULT_VOTE), "ensemble"),
        ("robnas, all cheap proxies, extra trees alone", list(CHEAP), list(DEFAULT_VOTE), "trees"),
        ("NASLib's values of params, synflow, jacob_cov, ensemble", naslib(BEFORE), naslib(BEFORE), "ensemble"),
        (ANCHOR, [f"naslib_{c}" for c in NASLIB_11], [], "trees"),
        ("NASLib's 11 zero-cost proxies, ensemble", [f"naslib_{c}" for c in NASLIB_11], [], "ensemble"),
        ("no proxies (encoded cell only), ensemble", [], [], "ensemble"),
        ("no proxies (encoded cell only), extra trees alone", [], [], "trees"),
    ):
        if any(c not in data for c in columns + vote):
            continue
        values = data[columns].to_numpy(float) if columns else np.empty((len(data), 0))
        vote_tau = float(kendalltau(zero_shot_vote(data[vote].to_numpy(float)), target)[0]) if vote else math.nan
        variants.append({"name": name, "vote_tau": vote_tau,
                         "surrogate": surrogate_taus(values, encoded, target, tuple(columns), args, model)})
    report = {
        "table_rows": len(table), "cells": len(data), "full_cells": min(args.full_cells, len(data)),
        "cpu_per_cell": sum(cpu[n] for n in CHEAP), "cpu_per_cell_all": sum(cpu.values()),
        "proxies": proxy_quality(data, args.target, [n for n in CHEAP + FULL if n in data], cpu),
        "variants": variants,
        "votes": vote_taus(data, data),
        "votes_digits": vote_taus(digits_proxies(data), data),
        "cost": [] if args.no_cost else scoring_cost(args),
    }
    main_variant = variants[0]
    surrogate = _summary(main_variant["surrogate"])
    report["zero_shot_tau"] = main_variant["vote_tau"]
    report["surrogate_tau"] = surrogate
    report["checks"] = [("zero-shot vote tau", report["zero_shot_tau"], TARGETS["zero_shot_tau"])]
    anchor = next((_summary(v["surrogate"]) for v in variants if v["name"] == ANCHOR), {})
    for n, tau in surrogate.items():
        if n in anchor:
            report["checks"].append((f"surrogate tau, {n} labelled cells (anchor {anchor[n]:.3f} + {MARGIN})", tau,
                                     round(anchor[n] + MARGIN, 3)))
    if report["cost"]:
        worst = max(r["ratio"] for r in report["cost"] if r["attack"] in ("pgd", "trades")) if any(
            r["attack"] in ("pgd", "trades") for r in report["cost"]) else math.nan
        report["checks"].append(("cost ratio, worst PGD/TRADES candidate", worst, TARGETS["cost_ratio"]))
        report["checks"].append(("cost ratio, worst candidate", max(r["ratio"] for r in report["cost"]), TARGETS["cost_ratio"]))
    text = body(report, args)
    if args.json:
        print(json.dumps(_plain(report)))
    else:
        print(text)
    publish(TITLE, text, json_path=None, record=not args.no_record, raw=_plain(report))
    return 0


def encode_cell(arch: str, args) -> np.ndarray:
    """The encoded config of a table cell (its macro settings; the other fields are constant)."""
    return encode_config({"arch": arch, "width": args.width, "cells_per_stage": args.cells_per_stage,
                          "dataset": "cifar10"})


if __name__ == "__main__":
    raise SystemExit(main())
