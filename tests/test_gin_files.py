"""Every experiment file in gin/ parses, builds its architecture and regularizers, and says what it reproduces."""

import glob
import os

import gin
import pytest

from icr_tf import cli, data, models, regularizers
from tests.conftest import REPO

EXPERIMENTS = sorted(p for p in glob.glob(os.path.join(REPO, "gin", "*", "*.gin"))
                     if "/regularizers/" not in p and "/eval/" not in p and not p.endswith("common.gin"))
EXPECTED_REGULARIZER = {"baseline": "none", "cr": "cr", "bcr": "bcr", "zcr": "zcr", "icr": "icr"}


def test_all_ten_cifar10_experiments_and_the_default_exist():
  names = {os.path.relpath(p, os.path.join(REPO, "gin")) for p in EXPERIMENTS}
  for arch in ("sndcgan", "resnet"):
    for reg in EXPECTED_REGULARIZER:
      assert f"cifar10/{arch}_{reg}.gin" in names
  assert {"fashion_mnist/baseline.gin", "fashion_mnist/icr.gin"} <= names


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: os.path.relpath(p, os.path.join(REPO, "gin")))
def test_experiment_file(path):
  cli.parse_gin([path], [])
  arch = models.architecture()
  consistency = regularizers.consistency()
  source = data.data_source()
  assert arch.resolution == 32 and source.name in ("cifar10", "fashion_mnist_local")
  assert gin.query_parameter("train.num_steps") > 0
  reg = os.path.basename(path)[:-4].split("_")[-1]
  assert consistency.name == EXPECTED_REGULARIZER[reg]
  with open(path) as f:
    header = f.read()
  assert "Command: " in header or "tools/quickstart.sh" in header or "tools/train.py" in header
  if source.name == "cifar10":
    assert "Reproduces: " in header and "Paper's FID" in header
