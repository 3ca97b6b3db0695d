"""The resnet architecture family: exact sizes, closed-form counts, and a digits search.

1. Parameters and MACs (3x32x32 images, 10 classes) of ResNet-18, PreAct ResNet-18,
   WRN-28-10 and WRN-34-10, in closed form (``network_sizes``) and counted on the built module
   (``count_parameters``, ``count_macs``), against the published parameter counts.
2. Closed form against the built module on random configurations (every field drawn; 1 or 3
   input channels; image sides 7 to 32; 2 to 100 classes).
3. (``--search``) A digits search over ``resnet,attack`` below ``--max-params``, its front, and
   a controlled comparison of the activations and of squeeze-excitation on one base network
   (``--variant-seeds`` seeds each, PGD-7 training, digits defaults, no Ray).

    nice -n 5 python benchmarks/resnet_family.py --search      # ~15 min on 2 busy cores
    python benchmarks/resnet_family.py --configs 50 --no-record
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import publish  # noqa: E402

from robnas.spaces import ResNetArch, decode  # noqa: E402
from robnas.trainables._counting import count_macs, count_parameters  # noqa: E402
from robnas.trainables._families import build_model, network_sizes  # noqa: E402

TITLE = "resnet family: exact sizes, closed-form counts and a digits search"
_WRN = {"stem_width": 16, "block": "preact", "stage_widths": (160, 320, 640)}
#: Name -> (network, published parameter count, where it is published).
STANDARD = {
    "ResNet-18": (ResNetArch(), 11_173_962, "He et al. 2016, CIFAR variant (kuangliu/pytorch-cifar)"),
    "PreAct ResNet-18": (ResNetArch(block="preact"), 11_172_170,
                         "Rice et al. 2020 (locuslab/robust_overfitting, final BN+ReLU)"),
    "WRN-28-10": (ResNetArch(stage_depths=(4, 4, 4), **_WRN), 36_479_194, "Zagoruyko & Komodakis 2016"),
    "WRN-34-10": (ResNetArch(stage_depths=(5, 5, 5), **_WRN), 46_160_474, "Madry et al. 2018, TRADES"),
}


def standard_rows() -> list[str]:
    rows = ["| network | published params | closed-form params | built params | closed-form MACs | built MACs |",
            "|---|---:|---:|---:|---:|---:|"]
    for name, (arch, published, _) in STANDARD.items():
        closed = network_sizes(arch, input_shape=(3, 32, 32), num_classes=10)
        model = build_model(arch, in_channels=3, num_classes=10)
        built = count_parameters(model), count_macs(model, (3, 32, 32))
        rows.append(f"| {name} | {published:,} | {closed['params']:,} | {built[0]:,} | "
                    f"{closed['macs'] / 1e9:.4f} G | {built[1] / 1e9:.4f} G |")
    rows.append("")
    rows += [f"- {name}: {source}" for name, (_, _, source) in STANDARD.items()]
    return rows


def random_arch(rng: random.Random) -> ResNetArch:
    stages = rng.randint(1, 4)
    return ResNetArch(
        stem=rng.choice(["conv", "patchify"]), stem_width=rng.randint(1, 24), stem_kernel=rng.choice([1, 3, 5]),
        block=rng.choice(["basic", "preact", "bottleneck"]), stage_depths=tuple(rng.randint(1, 3) for _ in range(stages)),
        stage_widths=tuple(4 * rng.randint(1, 8) for _ in range(stages)), kernel_size=rng.choice([3, 5]),
        activation=rng.choice(["relu", "silu", "gelu"]), se_ratio=rng.choice([0.0, 0.05, 0.25, 0.5]),
    )


def closed_form_check(count: int, seed: int) -> dict:
    rng = random.Random(seed)
    mismatches, start = [], time.perf_counter()
    for _ in range(count):
        arch = random_arch(rng)
        side = rng.randint(max(7, arch.stem_kernel), 32)
        shape = (rng.choice([1, 3]), side, side)
        classes = rng.randint(2, 100)
        model = build_model(arch, in_channels=shape[0], num_classes=classes)
        built = {"params": count_parameters(model), "macs": count_macs(model, shape)}
        if network_sizes(arch, input_shape=shape, num_classes=classes) != built:
            mismatches.append(arch.to_str())
    return {"configs": count, "mismatches": mismatches, "seconds": time.perf_counter() - start}


#: Front columns shown: name in the front table -> heading.
FRONT_COLUMNS = {"arch": "network", "config/attack": "attack", "robust_acc": "robust acc",
                 "clean_acc": "clean acc", "params": "params"}


def digits_search(args: argparse.Namespace, root: Path) -> dict:
    from robnas.analysis import analyze
    from robnas.search import run

    run(storage_path=str(root), name="resnet", space="resnet,attack", num_samples=args.trials,
        max_params=args.max_params, objectives="robust_acc,clean_acc,params", seed=args.seed)
    (analysis,) = analyze(root / "resnet")
    trials, front = analysis.result.trials, analysis.result.front
    rows = [{key: row.get(key) for key in FRONT_COLUMNS} for row in front.to_dict("records")]
    return {"trials": trials, "front": rows}


def markdown(rows: list[dict], headings: dict[str, str]) -> list[str]:
    """A Markdown table of ``rows`` (dicts) with ``headings`` (key -> heading)."""
    def cell(value) -> str:
        if isinstance(value, float):
            return f"{value:,.0f}" if value >= 100 else f"{value:.3f}"
        return f"`{value}`" if isinstance(value, str) and "-" in value else str(value)
    lines = ["| " + " | ".join(headings.values()) + " |", "|" + "---|" * len(headings)]
    lines += ["| " + " | ".join(cell(row.get(key)) for key in headings) + " |" for row in rows]
    return lines


#: The base network of the variant comparison (digits, about 60k parameters).
BASE = {"family": "resnet", "stem_width": 16, "block": "basic", "stage_depths": [1, 1], "stage_widths": [32, 64]}


def variants(args: argparse.Namespace) -> list[dict]:
    from robnas.trainables._trial import TrialRunner

    rows = []
    for activation in ("relu", "silu", "gelu"):
        for se_ratio in (0.0, 0.25):
            for seed in range(args.variant_seeds):
                trial = decode({**BASE, "activation": activation, "se_ratio": se_ratio, "seed": seed})
                runner = TrialRunner(trial)
                while not runner.done:
                    metrics = runner.run_epoch()
                rows.append({"activation": activation, "se_ratio": se_ratio, "seed": seed, **metrics})
    return rows


def variant_table(rows: list[dict]) -> list[str]:
    table = ["| activation | SE ratio | params | clean acc (mean ± sd) | robust acc (mean ± sd) |",
             "|---|---:|---:|---:|---:|"]
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["activation"], row["se_ratio"]), []).append(row)
    for (activation, se_ratio), group in groups.items():
        def spread(name: str) -> str:
            values = [r[name] for r in group]
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            return f"{statistics.mean(values):.3f} ± {sd:.3f}"
        table.append(f"| {activation} | {se_ratio:g} | {group[0]['params']:,} | {spread('clean_acc')} | "
                     f"{spread('robust_acc')} |")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=200, help="random configurations to check")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--search", action="store_true", help="also run the digits search and the variants")
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--max-params", type=int, default=200_000)
    parser.add_argument("--variant-seeds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    parser.add_argument("--no-record", action="store_true", help="do not write RESULTS.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    lines = ["### Standard networks (3x32x32, 10 classes)", "", *standard_rows(), ""]
    check = closed_form_check(args.configs, args.seed)
    lines += ["### Closed form against the built module", "",
              f"{check['configs']} random configurations (all stems, blocks, kernels, activations, SE ratios; "
              f"1 to 4 stages; 1 or 3 channels; sides 7 to 32; 2 to 100 classes): "
              f"{check['configs'] - len(check['mismatches'])} equal in parameters and MACs, "
              f"{len(check['mismatches'])} differ.", ""]
    raw: dict = {"closed_form": check}
    if args.search:
        with tempfile.TemporaryDirectory(prefix="resnet-family-") as directory:
            found = digits_search(args, Path(directory))
        trials, front = found["trials"], found["front"]
        done = trials[trials["status"] == "TERMINATED"]
        lines += [f"### Digits search: `--space resnet,attack`, {args.trials} trials, `--max-params {args.max_params:,}`",
                  "", f"{len(done)} trials finished, largest {int(done['params'].max()):,} parameters; "
                  f"objectives robust_acc, clean_acc, params (MO-ASHA, MOTPE with screening). Front:", "",
                  *markdown(front, FRONT_COLUMNS), ""]
        rows = variants(args)
        lines += [f"### Activations and SE at (nearly) equal parameters, digits, {args.variant_seeds} seeds",
                  "", f"Base `{BASE}`; PGD-7 adversarial training, digits defaults (4 epochs); accuracies on "
                  "the validation split at the last epoch (robust: PGD-10, CE+margin).", "",
                  *variant_table(rows), ""]
        raw.update({"front": front, "variants": rows})
    text = "\n".join(lines)
    print(text)
    publish(TITLE, text, json_path=args.json, record=not args.no_record, raw=raw)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
