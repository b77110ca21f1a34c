"""The train binary end to end, and its answers to bad input: one line on stderr, a non-zero exit, nothing touched."""

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, TINY_GIN

TINY_FLAGS = [f"--gin_bindings={line}" for line in TINY_GIN.strip().splitlines()]


def run_tool(tool, *args, timeout=600):
  env = dict(os.environ, PYTHONPATH=REPO)
  return subprocess.run([sys.executable, os.path.join(REPO, "tools", tool), *args], capture_output=True, text=True,
                        timeout=timeout, env=env, cwd=REPO)


def error_lines(result):
  return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def snapshot(directory):
  out = {}
  for root, _, files in os.walk(directory):
    for name in files:
      path = os.path.join(root, name)
      with open(path, "rb") as f:
        out[path] = f.read()
  return out


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory, fashion_mnist):
  """A tiny run made by the binary, with ICR from the repo's gin file."""
  del fashion_mnist
  model_dir = str(tmp_path_factory.mktemp("cli_run"))
  result = run_tool("train.py", "--gin_file=regularizers/icr.gin", *TINY_FLAGS, f"--model_dir={model_dir}",
                    "--num_steps=2")
  assert result.returncode == 0, result.stderr[-3000:]
  assert "samples: " in result.stdout and "step 2/2 (100.0%)" in result.stdout
  return model_dir


def test_train_binary_trains_and_resumes(trained_dir):
  sample = [line for line in run_tool("train.py", "--gin_file=regularizers/icr.gin", *TINY_FLAGS,
                                      f"--model_dir={trained_dir}", "--num_steps=4").stdout.splitlines()
            if line.startswith("samples: ")]
  assert sample and sample[0].endswith("step_0000004.png") and os.path.exists(sample[0].split(": ", 1)[1])
  assert os.path.exists(os.path.join(trained_dir, "checkpoints", "ckpt-4.index"))


BAD_INPUTS = {
    "unknown dataset": (["--gin_bindings=data_source.name = 'cifar_eleven'"], "unknown dataset 'cifar_eleven'"),
    "unknown strategy": (["--strategy=quantum"], "unknown strategy 'quantum'; accepted: default, one_device"),
    "gin typo": (["--gin_bindings=architecture.resolutoin = 32"], "resolutoin"),
    "gin reference typo": (["--gin_bindings=train.loss = @Hinje()"], "Hinje"),
    "missing gin file": (["--gin_file=gin/nope.gin"], "gin file 'gin/nope.gin' does not exist"),
    "bad resolution": (["--gin_bindings=architecture.resolution = 28"], "resolution divisible by 8"),
    "bad gin value type": (["--gin_bindings=train.batch_size = 'sixty-four'"], "train.batch_size must be a positive"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_clear_line(tmp_path, fashion_mnist, case):
  flags, message = BAD_INPUTS[case]
  model_dir = tmp_path / "run"
  result = run_tool("train.py", *TINY_FLAGS, *flags, f"--model_dir={model_dir}", "--num_steps=2")
  assert result.returncode == 2, result.stderr[-2000:]
  lines = error_lines(result)
  assert len(lines) == 1 and message in lines[0], result.stderr[-2000:]
  assert "Traceback" not in result.stderr
  assert not model_dir.exists()


def test_model_dir_of_another_architecture_is_refused_untouched(trained_dir):
  before = snapshot(trained_dir)
  result = run_tool("train.py", "--gin_file=regularizers/icr.gin", *TINY_FLAGS, "--gin_bindings=architecture.g_width=8",
                    f"--model_dir={trained_dir}", "--num_steps=6")
  assert result.returncode == 2
  lines = error_lines(result)
  assert len(lines) == 1 and "another architecture (g_width: 4 there, 8 here)" in lines[0]
  assert snapshot(trained_dir) == before


@pytest.mark.parametrize("fault", ["missing", "corrupt"])
def test_missing_or_corrupt_dataset_files(tmp_path, fault):
  source = tmp_path / "fashion-mnist"
  if fault == "corrupt":
    import shutil  # pylint: disable=g-import-not-at-top
    shutil.copytree("/usr/share/datasets/fashion-mnist", source)
    (source / "t10k-images-idx3-ubyte.gz").write_bytes(b"this is not gzip")
  model_dir = tmp_path / "run"
  result = run_tool("train.py", *TINY_FLAGS, f"--gin_bindings=data_source.source_dir = '{source}'",
                    f"--gin_bindings=data_source.data_dir = '{tmp_path / 'tfds'}'", f"--model_dir={model_dir}",
                    "--num_steps=2")
  assert result.returncode == 2
  lines = error_lines(result)
  expected = "is missing; install Debian's package" if fault == "missing" else "is not readable gzip"
  assert len(lines) == 1 and expected in lines[0] and "dataset-fashion-mnist" in lines[0], result.stderr[-2000:]
  assert not model_dir.exists()
