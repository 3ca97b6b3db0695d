"""Bad input: one line naming the problem, exit code 2, no traceback, no file touched."""

from __future__ import annotations

import gzip
import hashlib
import json
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from robnas.search.cli import main

# A few hundred bytes of YAML that expand to 9**8 strings.
ALIAS_BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9 if prev else ['lol'] * 9)}]\n"
    for prev, name in zip(["", "a", "b", "c", "d", "e", "f", "g"], "abcdefgh")
) + "space: [*h]\n"
GOOD_ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    """A storage path holding an earlier run whose files must never change."""
    root = tmp_path / "storage"
    old = root / "old"
    (old / "trial_0001").mkdir(parents=True)
    (old / "robnas.json").write_text(json.dumps({"settings": {"name": "old", "num_samples": 2}}))
    (old / "trial_0001" / "result.json").write_text('{"epoch": 1, "clean_acc": 0.5}\n')
    (root / "empty").mkdir()
    (root / "other").mkdir()
    (root / "other" / "notes.txt").write_text("not a search\n")
    for name in ("good", "blocked"):  # searches analyze reads; blocked has a file for its analysis/
        (root / name / "trial_t1").mkdir(parents=True)
        settings = {"name": name, "max_epochs": 1, "objectives": ["clean_acc"]}
        (root / name / "robnas.json").write_text(json.dumps({"settings": settings}))
        (root / name / "trial_t1" / "result.json").write_text('{"epoch": 1, "clean_acc": 0.5, "trial_id": "t1"}\n')
    (root / "blocked" / "analysis").write_text("in the way\n")
    (root / "spent").mkdir()  # a search that has run its whole time budget
    spent = {"settings": {"name": "spent", "time_budget_s": 60.0}, "resolved_trial": {}, "elapsed_s": 61.5}
    (root / "spent" / "robnas.json").write_text(json.dumps(spent))
    return root


def write(path: Path, content: str | bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(path)


def symlink_loop(tmp: Path) -> Path:
    """``tmp/loop_a`` -> ``tmp/loop_b`` -> ``tmp/loop_a``."""
    a, b = tmp / "loop_a", tmp / "loop_b"
    if not a.is_symlink():
        tmp.mkdir(parents=True, exist_ok=True)
        a.symlink_to(b)
        b.symlink_to(a)
    return a


def cifar10_dir(root: Path, first_batch: bytes) -> Path:
    """A CIFAR-10 layout whose data_batch_1 (read first) is ``first_batch``; the other files are empty."""
    write(root / "data_batch_1", first_batch)
    for name in [f"data_batch_{i}" for i in range(2, 6)] + ["test_batch"]:
        write(root / name, b"")
    return root


def cases(tmp: Path, storage: Path) -> dict[str, tuple[list[str], str]]:
    s = ["--storage-path", str(storage), "--name", "new"]
    cifar_garbage = cifar10_dir(tmp / "cifar_garbage", b"\x00\x01 this is not a pickle")
    cifar_lying = cifar10_dir(tmp / "cifar_lying", pickle.dumps({b"data": [1, 2, 3], b"labels": [0]}))
    npz = tmp / "bad.npz"
    np.savez(npz, x_train=np.zeros((2, 8, 8), np.uint8), y_train=np.zeros(2, np.int64))
    npz_classes = tmp / "classes.npz"
    np.savez(npz_classes, x_train=np.zeros((2, 8, 8), np.uint8), y_train=[0, 10**9],
             x_test=np.zeros((1, 8, 8), np.uint8), y_test=[0])
    npz_extra = tmp / "extra.npz"
    np.savez(npz_extra, x_train=np.zeros((2, 8, 8), np.uint8), y_train=[0, 1], x_test=np.zeros((1, 8, 8), np.uint8),
             y_test=[0], extra=np.zeros(3))
    mnist_huge = tmp / "mnist_huge"
    idx_header = struct.pack(">4I", 0x0803, 60000, 100000, 100000)  # 600 TB declared, 1 KiB present
    write(mnist_huge / "train-images-idx3-ubyte.gz", gzip.compress(idx_header + bytes(1024)))
    for stem in ("train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        write(mnist_huge / stem, b"")
    cifar_huge = cifar10_dir(tmp / "cifar_huge", b"\x80\x04\x8e" + struct.pack("<Q", 2**32) + b"abc")  # 4 GiB in 14 bytes
    no_arch = write(tmp / "no_arch.csv", "cell,acc\n1,0.5\n")
    return {
        "yaml syntax": (["search", "--config", write(tmp / "a.yaml", "num_samples: [1,\n"), *s], "YAML syntax error"),
        "yaml unknown key": (["search", "--config", write(tmp / "b.yaml", "num_sample: 3\n"), *s], "unknown key 'num_sample'"),
        "yaml wrong type": (["search", "--config", write(tmp / "c.yaml", "num_samples: many\n"), *s], "num_samples must be an integer"),
        "yaml not a mapping": (["search", "--config", write(tmp / "d.yaml", "- 1\n- 2\n"), *s], "must hold a mapping"),
        "yaml missing file": (["search", "--config", str(tmp / "missing.yaml"), *s], "does not exist"),
        "eps < 0": (["search", "--config", write(tmp / "e.yaml", "trial: {eps: -1}\n"), *s], "eps"),
        "sparsity >= 1": (["search", "--config", write(tmp / "f.yaml", "trial: {sparsity: 1.0}\n"), "--space", "cell", *s], "sparsity"),
        "unknown sparsity schedule": (["trial", "--config", write(tmp / "schedule.yaml", "sparsity_schedule: snip\n")], "'sparsity_schedule'"),
        "drop fraction 1": (["trial", "--config", write(tmp / "drop.yaml", "sparsity_drop_fraction: 1.0\n")], "'sparsity_drop_fraction'"),
        "update interval 0": (["search", "--config", write(tmp / "every.yaml", "trial: {sparsity_update_every: 0}\n"), *s], "'sparsity_update_every'"),
        "sup_tickets not a bool (trial)": (["trial", "--config", write(tmp / "sup.yaml", "sup_tickets: yes please\nsparsity_schedule: oneshot\n")], "'sup_tickets'"),
        "unknown trial key": (["search", "--config", write(tmp / "g.yaml", "trial: {colour: red}\n"), *s], "colour"),
        "eval_restarts 0 (search)": (["search", "--config", write(tmp / "restarts_search.yaml", "trial: {eval_restarts: 0}\n"), *s], "'eval_restarts'"),
        "eval_restarts not a number (trial)": (["trial", "--config", write(tmp / "restarts_trial.yaml", "eval_restarts: x\n")], "'eval_restarts'"),
        "eval_loss unknown (search)": (["search", "--config", write(tmp / "loss_search.yaml", "trial: {eval_loss: dlr}\n"), *s], "'eval_loss'"),
        "eval_loss unknown (trial)": (["trial", "--config", write(tmp / "loss_trial.yaml", "eval_loss: CE\n")], "'eval_loss'"),
        "awp_gamma < 0 (search)": (["search", "--config", write(tmp / "awp_search.yaml", "trial: {awp_gamma: -0.01}\n"), *s], "'awp_gamma'"),
        "weight_averaging unknown (trial)": (["trial", "--config", write(tmp / "wa_trial.yaml", "weight_averaging: swa\n")], "'weight_averaging'"),
        "stop_on_overfit not a bool (trial)": (["trial", "--config", write(tmp / "stop_trial.yaml", "stop_on_overfit: 1\n")], "'stop_on_overfit'"),
        "part_eps_low > 1 (trial)": (["trial", "--config", write(tmp / "part_trial.yaml", "part: true\nattack: trades\npart_eps_low: 1.5\n")], "'part_eps_low'"),
        "eval_schedule unknown (search)": (["search", "--config", write(tmp / "schedule_search.yaml", "trial: {eval_schedule: step}\n"), *s], "'eval_schedule'"),
        "eval_schedule unknown (trial)": (["trial", "--config", write(tmp / "schedule_trial.yaml", "eval_schedule: Cosine\n")], "'eval_schedule'"),
        "unknown op": (["arch", GOOD_ARCH.replace("avg_pool_3x3", "max_pool_3x3")], "max_pool_3x3"),
        "malformed NB201 string": (["arch", "nor_conv_3x3~0+skip"], "NB201"),
        "resnet stage lists of unequal length": (["arch", "--config", write(tmp / "r1.yaml", "family: resnet\nstage_depths: [1, 2]\nstage_widths: [8]\n")], "one width per stage"),
        "resnet stage of zero depth": (["arch", "--config", write(tmp / "r2.yaml", "family: resnet\nstage_depths: [2, 0]\nstage_widths: [8, 16]\n")], "'stage_depths'"),
        "resnet bottleneck width not divisible by 4": (["arch", "--config", write(tmp / "r3.yaml", "family: resnet\nblock: bottleneck\nstage_depths: [1]\nstage_widths: [30]\n")], "divisible by 4"),
        "resnet se_ratio of 1": (["arch", "--config", write(tmp / "r4.yaml", "family: resnet\nse_ratio: 1.0\n")], "'se_ratio'"),
        "resnet NB201 key (trial)": (["trial", "--config", write(tmp / "r5.yaml", "family: resnet\nwidth: 8\n")], "'width' belongs to the nb201 family"),
        "unknown family (search)": (["search", "--config", write(tmp / "r6.yaml", "trial: {family: vgg}\n"), *s], "unknown architecture family 'vgg'"),
        "arch without a network": (["arch"], "NB201 string or --config"),
        "unknown space option": (["search", "--config", write(tmp / "r7.yaml", "space: [resnet]\nspace_options: {resnet: {depth: [1, 2]}}\n"), *s], "space part 'resnet' has no option 'depth'"),
        "negative epochs (search)": (["search", "--max-epochs", "-1", *s], "max_epochs"),
        "negative epochs (trial)": (["trial", "--epochs", "-2"], "max_epochs"),
        "zero samples": (["search", "--num-samples", "0", *s], "num_samples"),
        "missing data dir": (["search", "--dataset", "cifar10", "--data-dir", str(tmp / "nope"), *s], "cifar10"),
        "data dir without files": (["trial", "--dataset", "mnist", "--data-dir", str(storage / "empty")], "mnist"),
        "cifar batch is not a pickle": (["trial", "--dataset", "cifar10", "--data-dir", str(cifar_garbage)], "data_batch_1 is not a readable pickle"),
        "cifar batch is not what it claims": (["trial", "--dataset", "cifar10", "--data-dir", str(cifar_lying)], "data_batch_1 has data list"),
        "npz missing arrays": (["trial", "--dataset", "npz", "--data-dir", str(npz)], "x_test"),
        "npz labels up to 10**9": (["trial", "--dataset", "npz", "--data-dir", str(npz_classes)], "more than 100000 classes"),
        "npz unknown array": (["trial", "--dataset", "npz", "--data-dir", str(npz_extra)], "unknown arrays extra"),
        "idx header declaring 600 TB": (["trial", "--dataset", "mnist", "--data-dir", str(mnist_huge)], "-byte limit"),
        "cifar pickle declaring 4 GiB": (["trial", "--dataset", "cifar10", "--data-dir", str(cifar_huge)], "bytes8"),
        "unknown dataset": (["search", "--dataset", "imagenet", *s], "imagenet"),
        "run dir does not exist": (["resume", str(storage / "nope")], "does not exist"),
        "run dir is empty": (["resume", str(storage / "empty")], "not a robnas search"),
        "run dir is something else": (["resume", str(storage / "other")], "not a robnas search"),
        "run dir is a file": (["resume", str(storage / "other" / "notes.txt")], "not a directory"),
        "unknown objective": (["search", "--objectives", "clean_acc,accuracy", *s], "unknown objective 'accuracy'"),
        "table without arch column": (["search", "--backend", "table", "--table", no_arch, "--objectives", "acc", *s], "'arch'"),
        "table missing": (["search", "--backend", "table", "--table", str(tmp / "t.csv"), "--objectives", "acc", *s], "does not exist"),
        "table without backend": (["search", "--table", no_arch, *s], "--backend table"),
        "unknown scheduler": (["search", "--scheduler", "pbt", *s], "unknown scheduler 'pbt'"),
        "unknown searcher": (["search", "--searcher", "bohb", *s], "unknown searcher 'bohb'"),
        "unknown space part": (["search", "--space", "cell,optimizer", *s], "optimizer"),
        "bad score weights": (["search", "--score", "robust_acc", *s], "name=weight"),
        "negative cpus": (["search", "--cpus-per-trial", "-1", *s], "cpus_per_trial"),
        "existing experiment": (["search", "--storage-path", str(storage), "--name", "old"], "--overwrite"),
        "overwrite something else": (["search", "--storage-path", str(storage), "--name", "other", "--overwrite", "--space", "cell", "--num-samples", "1", "--max-epochs", "1"], "not a robnas search"),
        "analyze missing dir": (["analyze", str(storage / "nope")], "does not exist"),
        "overwrite with a seed Optuna refuses": (["search", "--storage-path", str(storage), "--name", "old", "--overwrite", "--seed", "99999999999"], "seed"),
        "overwrite with a CPU share Ray cannot hold": (["search", "--storage-path", str(storage), "--name", "old", "--overwrite", "--cpus-per-trial", "1e-300"], "cpus_per_trial"),
        "NaN CPUs": (["search", "--cpus-per-trial", "nan", *s], "cpus_per_trial"),
        "infinite GPUs": (["search", "--gpus-per-trial", "inf", *s], "gpus_per_trial"),
        "infinite score weight": (["search", "--objectives", "robust_acc,params", "--score", "robust_acc=inf", *s], "finite"),
        "yaml address is a list": (["search", "--config", write(tmp / "h.yaml", "address: [1]\n"), *s], "address"),
        "yaml data_dir is a list": (["search", "--config", write(tmp / "i.yaml", "data_dir: [a]\n"), *s], "data_dir"),
        "yaml storage_path is a mapping": (["search", "--config", write(tmp / "j.yaml", "storage_path: {a: 1}\n"), "--name", "new"], "storage_path"),
        "300-character name": (["search", "--storage-path", str(storage), "--name", "n" * 300], "name"),
        "storage path is a symlink loop": (["search", "--storage-path", str(symlink_loop(tmp)), "--name", "n"], "Symlink loop"),
        "run dir is a symlink loop": (["resume", str(symlink_loop(tmp))], "Symlink loop"),
        "storage path is a file": (["search", "--storage-path", str(storage / "other" / "notes.txt"), "--name", "n"], "Not a directory"),
        "address nobody listens on": (["search", "--address", "127.0.0.1:1", *s], "cannot reach the Ray cluster"),
        "address without a port": (["search", "--address", "headnode", *s], "HOST:PORT"),
        "yaml alias bomb": (["search", "--config", write(tmp / "k.yaml", ALIAS_BOMB), *s], "more than"),
        "impossible --max-params": (["search", "--space", "cell,macro", "--max-params", "10k", *s], "no network of the space fits --max-params 10,000"),
        "impossible --max-macs": (["search", "--space", "cell", "--max-macs", "1e3", *s], "no network of the space fits --max-macs"),
        "--max-params not a count": (["search", "--max-params", "lots", *s], "max_params must be a number > 0"),
        "--time-budget not a duration": (["search", "--time-budget", "5x", *s], "time_budget must be a duration"),
        "points file missing": (["search", "--points", str(tmp / "none.yaml"), *s], "does not exist"),
        "point with an unknown key": (["search", "--space", "cell,macro", "--points", write(tmp / "p1.yaml", "- {width: 8}\n- {widht: 16}\n"), *s], "point 2: 'widht' is not searched"),
        "point value outside a choice": (["search", "--space", "cell,macro", "--points", write(tmp / "p2.json", '[{"width": 32}]'), *s], "point 1: width 32 is not one of 8, 16"),
        "points line not an NB201 string": (["search", "--points", write(tmp / "p3.txt", f"{GOOD_ARCH}\nconv~0\n"), *s], "line 2: malformed NB201"),
        "point too large for --max-params": (["search", "--space", "cell,macro", "--max-params", "40k", "--points", write(tmp / "p4.yaml", "- {width: 16}\n"), *s], "point 1 is too large for --max-params 40,000"),
        "resume a search whose time budget is spent": (["resume", str(storage / "spent")], "--time-budget 2m"),
        "time budget for a search that kept no time": (["resume", str(storage / "good"), "--time-budget", "1h"], "takes no time budget"),
        "tabulate empty archs": (["tabulate", "--archs", write(tmp / "archs.txt", ""), "--out", str(tmp / "t.csv")], "archs"),
        "tabulate a malformed resnet description": (["tabulate", "--space", "resnet", "--archs", write(tmp / "r1.txt", "conv16k3-basic-d2.1-w8-k3-relu-se0\n"), "--out", str(tmp / "t.csv")], "line 1: resnet description 'conv16k3-basic-d2.1-w8-k3-relu-se0': ResNetArch.stage_widths must have one width per stage"),
        "tabulate resnet given an NB201 cell": (["tabulate", "--space", "resnet", "--archs", write(tmp / "r2.txt", f"{GOOD_ARCH}\n"), "--out", str(tmp / "t.csv")], "line 1: not a resnet description"),
        "tabulate resnet with no list": (["tabulate", "--space", "resnet", "--out", str(tmp / "t.csv")], "give --archs FILE or --num-samples N"),
        "tabulate --archs and --num-samples": (["tabulate", "--space", "resnet", "--num-samples", "2", "--archs", write(tmp / "r3.txt", "conv8k3-basic-d1-w8-k3-relu-se0\n"), "--out", str(tmp / "t.csv")], "not both"),
        "table with a malformed description": (["search", "--backend", "table", "--table", write(tmp / "rt.csv", "arch,acc\nconv8k3-basic-d1-w8-k4-relu-se0,1\n"), "--objectives", "acc", "--space", "resnet", *s], "row 1: 'conv8k3-basic-d1-w8-k4-relu-se0' is not a network description"),
        "default cell search of a resnet table": (["search", "--backend", "table", "--table", write(tmp / "rs.csv", "arch,acc\nconv8k3-basic-d1-w8-k3-relu-se0,1\n"), "--objectives", "acc", *s], "holds no nb201 networks, only resnet ones"),
        "table search of a family the table lacks": (["search", "--backend", "table", "--table", write(tmp / "nb.csv", f"arch,acc\n{GOOD_ARCH},1\n"), "--objectives", "acc", "--space", "resnet", *s], "holds no resnet networks"),
        **analysis_cases(tmp, storage),
    }


def analysis_cases(tmp: Path, storage: Path) -> dict[str, tuple[list[str], str]]:
    """``analyze`` and ``export`` given something other than a search, or nowhere to write."""
    good, notes, loop = str(storage / "good"), str(storage / "other" / "notes.txt"), symlink_loop(tmp)
    dangling = tmp / "dangling"
    if not dangling.is_symlink():
        dangling.symlink_to(tmp / "nowhere")
    runs = {
        "missing dir": (str(storage / "nope"), "does not exist"),
        "a file": (notes, "is not a directory"),
        "an empty dir": (str(storage / "empty"), "not a robnas search"),
        "something else": (str(storage / "other"), "not a robnas search"),
        "a symlink loop": (str(loop), "is a symlink loop"),
        "a dangling symlink": (str(dangling), "does not exist"),
        "a file inside a file": (notes + "/x", "does not exist"),
        "damaged robnas.json": (str(Path(write(tmp / "bad_settings" / "robnas.json", "{")).parent),
                                "not a valid robnas settings file"),
        "robnas.json without objectives names": (
            str(Path(write(tmp / "bad_objectives" / "robnas.json", '{"settings": {"objectives": 3}}')).parent),
            "objectives is not a list of names"),
    }
    table = {}
    for name, (run, expected) in runs.items():
        table[f"analyze {name}"] = (["analyze", run], expected)
        table[f"export {name}"] = (["export", run, "--trial", "t1", "--out", str(tmp / "m.pt")], expected)
        table[f"evaluate {name}"] = (["evaluate", run], expected)
    return table | {
        "analyze a good and a missing dir": (["analyze", good, str(storage / "nope"), "--out", str(tmp / "cmp")],
                                             "does not exist"),
        "analyze two dirs without --out": (["analyze", good, good], "comparing 2 searches needs --out PATH"),
        "analyze --out inside a search": (["analyze", good, "--out", f"{good}/trial_t1"], "inside the search directory"),
        "analyze --out another search's analysis": (["analyze", good, good, "--out", f"{good}/analysis"],
                                                    "inside the search directory"),
        "analyze with a file for analysis/": (["analyze", str(storage / "blocked")], "is not a directory"),
        "analyze --out a file": (["analyze", good, good, "--out", notes], "is not a directory"),
        "analyze --out in a symlink loop": (["analyze", good, good, "--out", f"{loop}/x"], "symlink loop"),
        "analyze --compare-dir a file": (["analyze", good, good, "--compare-dir", notes], "is not a directory"),
        "analyze --optuna-storage not a URL": (["analyze", good, "--optuna-storage", "runs.db"],
                                               "cannot use the Optuna storage runs.db"),
        "analyze --optuna-storage a file inside a search": (
            ["analyze", good, "--optuna-storage", f"sqlite:///{good}/runs.db"], "inside the search directory"),
        "export --out a symlink loop": (["export", good, "--trial", "t1", "--out", str(loop)], "symlink loop"),
        "evaluate a trial without its files": (["evaluate", good], "has no readable params.json"),
        "evaluate an unknown trial": (["evaluate", good, "--trials", "t2"], "no trial 't2'"),
        "evaluate with an unknown attack": (["evaluate", good, "--attack", "cw"], "invalid choice: 'cw'"),
        "evaluate with a file for analysis/": (["evaluate", str(storage / "blocked")], "is not a directory"),
    }


def checksums(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    } | {str(p.relative_to(root)) + "/": "dir" for p in root.rglob("*") if p.is_dir()}


def test_every_bad_input_is_one_line_exit_2_and_touches_nothing(tmp_path, storage, capsys):
    table = cases(tmp_path / "inputs", storage)
    assert len(table) >= 25
    before = checksums(storage)
    problems = []
    for name, (argv, expected) in table.items():
        code = main(argv)
        err = capsys.readouterr().err
        if code != 2 or err.count("\n") != 1 or not err.startswith("robnas: error:") or expected not in err:
            problems.append(f"{name}: exit {code}, stderr {err!r}")
        if checksums(storage) != before:
            problems.append(f"{name}: changed files under the storage path")
            before = checksums(storage)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("argv", [
    ["resume", "{storage}/other"],
    ["analyze", "{storage}/other/notes.txt"],
    ["analyze", "{tmp}/loop_a"],
    ["export", "{tmp}/loop_a", "--knee", "--out", "{tmp}/m.pt"],
    ["analyze", "{storage}/blocked"],
    ["evaluate", "{storage}/good", "--trials", "t2"],
])
def test_a_real_process_prints_no_traceback(tmp_path, storage, argv):
    symlink_loop(tmp_path)
    argv = [a.format(storage=storage, tmp=tmp_path) for a in argv]
    out = subprocess.run([sys.executable, "-m", "robnas", *argv], capture_output=True, text=True)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and out.stderr.count("\n") == 1


def test_dashboard_without_its_packages_says_which_extra_to_install(tmp_path, monkeypatch, capsys):
    import sys

    # As on an install without ray[default]: the first package Ray's dashboard imports is absent.
    monkeypatch.delitem(sys.modules, "ray.dashboard.optional_deps", raising=False)
    monkeypatch.setitem(sys.modules, "aiohttp", None)
    argv = ["search", "--dashboard", "--storage-path", str(tmp_path), "--name", "d", "--space", "cell",
            "--num-samples", "1", "--max-epochs", "1"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "aiohttp is missing" in err and "pip install 'robnas[dashboard]'" in err
    assert list(tmp_path.iterdir()) == []
