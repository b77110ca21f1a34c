"""One trainer per model_dir: an advisory lock on <model_dir>/.lock (fcntl.flock).

The kernel drops a flock when its process dies, however it dies (SIGKILL included), so a lock file left by a killed
trainer is stale by construction: the next trainer takes it over and says so. The file records who holds it (pid,
host, start time) for the refusal message. flock is per host: on a network filesystem shared by several hosts,
make sure that one host trains into a model_dir at a time.
"""

import fcntl
import json
import os
import socket
import time

from icr_tf.errors import UserError


class RunLock:
  """Holds <model_dir>/.lock for the life of a trainer; `acquire` raises UserError if another trainer holds it."""

  def __init__(self, model_dir):
    self.path = os.path.join(model_dir, ".lock")
    self._fd = None
    self.stale_holder = None  # what a dead previous holder had written, if any

  def _read_holder(self):
    try:
      with open(self.path) as f:
        return json.loads(f.read() or "null")
    except (OSError, ValueError):
      return None

  def acquire(self):
    os.makedirs(os.path.dirname(self.path), exist_ok=True)
    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      os.close(fd)
      holder = self._read_holder() or {}
      raise UserError(f"model_dir {os.path.dirname(self.path)} is in use by another trainer (pid "
                      f"{holder.get('pid', '?')} on {holder.get('host', '?')} since {holder.get('since', '?')}); "
                      "wait for it to finish or stop it, or choose another --model_dir") from None
    self.stale_holder = self._read_holder()
    info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    self._fd = fd
    return self

  def release(self):
    if self._fd is not None:
      os.ftruncate(self._fd, 0)
      fcntl.flock(self._fd, fcntl.LOCK_UN)
      os.close(self._fd)
      self._fd = None

  def __enter__(self):
    return self.acquire()

  def __exit__(self, *exc):
    self.release()
