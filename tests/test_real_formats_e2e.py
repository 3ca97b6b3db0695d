"""One-epoch searches through ``robnas search`` on tiny files in each real format: CIFAR-10
python pickles, SVHN .mat, MNIST IDX."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from test_data import _write_cifar10, _write_mnist

from robnas.search.cli import main
from robnas.trainables._data import clear_dataset_cache

pytestmark = pytest.mark.slow

TRIAL = {"eval_images": 8, "batch_size": 16, "width": 4, "cells_per_stage": 1, "attack_steps": 2}


def _write_svhn(root: Path, rng: np.random.Generator) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for name, count in (("train_32x32.mat", 20), ("test_32x32.mat", 4)):
        x = rng.integers(0, 256, (32, 32, 3, count), dtype=np.uint8)
        y = rng.integers(1, 11, (count, 1)).astype(np.uint8)  # SVHN labels 1..10, 10 for the digit 0
        scipy.io.savemat(root / name, {"X": x, "y": y})


WRITERS = {
    "cifar10": lambda root, rng: _write_cifar10(root, rng),
    "svhn": _write_svhn,
    "mnist": lambda root, rng: _write_mnist(root, rng),
}


@pytest.mark.parametrize("dataset", list(WRITERS))
def test_one_epoch_search_on_each_real_format(dataset, ray_session, tmp_path, capsys):
    clear_dataset_cache()
    data_dir = tmp_path / "data"
    WRITERS[dataset](data_dir, np.random.default_rng(0))
    config = tmp_path / "search.yaml"
    config.write_text(json.dumps({"trial": TRIAL}))  # YAML is a superset of JSON
    code = main([
        "search", "--config", str(config), "--dataset", dataset, "--data-dir", str(data_dir),
        "--storage-path", str(tmp_path / "runs"), "--name", dataset, "--num-samples", "1",
        "--max-epochs", "1", "--space", "cell", "--screen", "0", "--scheduler", "fifo",
    ])
    assert code == 0, capsys.readouterr().err
    experiment = tmp_path / "runs" / dataset
    (trial,) = sorted(experiment.glob("trial_*"))
    rows = [json.loads(line) for line in (trial / "result.json").read_text().splitlines() if line.strip()]
    assert [row["epoch"] for row in rows] == [1]
    for key in ("clean_acc", "robust_acc", "train_loss", "sparsity"):
        assert math.isfinite(rows[0][key]), key
    assert 0.0 <= rows[0]["robust_acc"] <= rows[0]["clean_acc"] <= 1.0
    resolved = json.loads((experiment / "robnas.json").read_text())["resolved_trial"]
    assert resolved["augment"] is (dataset != "mnist")
    assert resolved["eval_steps"] == 20 and resolved["eval_images"] == 8 and resolved["width"] == 4
