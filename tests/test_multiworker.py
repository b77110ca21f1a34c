"""MultiWorkerMirroredStrategy for real: two worker processes on localhost, the cluster from TF_CONFIG."""

import json
import os
import socket
import subprocess
import sys

from tests.conftest import REPO
from tests.test_tools import TINY_FLAGS


def _free_ports(n):
  sockets = [socket.socket() for _ in range(n)]
  for s in sockets:
    s.bind(("localhost", 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def test_two_workers_train_together_and_only_the_chief_writes(tmp_path, fashion_mnist):
  del fashion_mnist
  cluster = {"worker": [f"localhost:{port}" for port in _free_ports(2)]}
  model_dir = tmp_path / "run"
  procs = []
  for index in range(2):
    env = dict(os.environ, PYTHONPATH=REPO, TMPDIR=str(tmp_path),
               TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
    procs.append(subprocess.Popen(
        [sys.executable, os.path.join(REPO, "tools", "train.py"), *TINY_FLAGS, "--strategy=multi_worker_mirrored",
         f"--model_dir={model_dir}", "--num_steps=3", "--gin_bindings=train.log_every = 1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO))
  outs = [p.communicate(timeout=300) for p in procs]
  for p, (out, err) in zip(procs, outs):
    assert p.returncode == 0, err[-3000:]
  # Both workers took part in the same synchronous steps: they report the same global losses.
  last = [[line for line in out.splitlines() if line.startswith("step 3/3")][0].split("|")[-1] for out, _ in outs]
  assert last[0] == last[1]
  assert "2 replica(s)" in outs[0][0]
  assert "samples: " in outs[0][0] and "samples: " not in outs[1][0]
  files = os.listdir(model_dir / "checkpoints")
  assert "ckpt-3.index" in files and all(f == "checkpoint" or f.startswith("ckpt-") for f in files), files
  assert not [p for p in os.listdir(tmp_path) if p.startswith("icr_tf_worker_ckpt_")]  # the worker's scratch is gone
