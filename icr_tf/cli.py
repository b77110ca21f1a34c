"""What the binaries share: gin parsing with one-line errors, and running main with a clean exit on user errors."""

import difflib
import errno
import inspect
import os
import re
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _import_tensorflow_quietly():
  """Imports TensorFlow and lists its devices with stderr muted: its C++ start-up lines (oneDNN, CUDA probing) are
  written before any log level applies. Errors are not hidden: an exception is raised after stderr is back."""
  if "tensorflow" in sys.modules:
    return
  sys.stderr.flush()
  saved = os.dup(2)
  try:
    with open(os.devnull, "w") as devnull:
      os.dup2(devnull.fileno(), 2)
      import tensorflow as tf  # pylint: disable=g-import-not-at-top
      tf.config.list_physical_devices()
  finally:
    os.dup2(saved, 2)
    os.close(saved)


_import_tensorflow_quietly()

import gin  # noqa: E402
from absl import logging  # noqa: E402

from icr_tf.errors import UserError, one_line  # noqa: E402

REPO_GIN_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "gin")


_DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES)


def _gin_hint(message) -> str:
  """What would be accepted, for gin's two common errors: an unknown parameter, an unknown configurable."""
  registry = gin.config._REGISTRY  # pylint: disable=protected-access  (gin has no public listing)
  param = re.search(r"Configurable '([\w.]+)' doesn't have a parameter named '(\w+)'", message)
  if param:
    info = registry.get_match(param.group(1))
    if info is not None:
      fn = info.wrapped.__init__ if inspect.isclass(info.wrapped) else info.wrapped
      names = [n for n in inspect.signature(fn).parameters if n not in ("self", "args", "kwargs")]
      return f" (accepted: {', '.join(names)})"
  ref = re.search(r"No configurable matching (?:reference )?'@?([\w./]+)", message)
  if ref:
    known = sorted({selector.split(".")[-1] for selector in registry._selector_map})  # pylint: disable=protected-access
    close = difflib.get_close_matches(ref.group(1).split("/")[-1].split(".")[-1], known, n=3)
    if close:
      return f" (did you mean {' or '.join(close)}?)"
  return ""


def parse_gin(gin_files, gin_bindings) -> None:
  """Parses gin files (searched also under the repo's gin/) and bindings; raises UserError on any gin error."""
  gin.add_config_file_search_path(REPO_GIN_DIR)
  for path in gin_files or []:
    if not os.path.exists(path) and not os.path.exists(os.path.join(REPO_GIN_DIR, path)):
      raise UserError(f"gin file {path!r} does not exist (looked in . and {REPO_GIN_DIR})")
  verbosity = logging.get_verbosity()
  logging.set_verbosity(logging.FATAL)  # gin logs an error for every search path an include is not under
  try:
    gin.parse_config_files_and_bindings(gin_files or [], gin_bindings or [], finalize_config=False)
  except (ValueError, TypeError, KeyError, SyntaxError, IOError) as e:
    raise UserError(f"gin config error: {one_line(e)}{_gin_hint(str(e))}") from None
  finally:
    logging.set_verbosity(verbosity)


def run(main, argv):
  """Calls main(argv); a UserError becomes one line on stderr ("error: ...") and exit status 2."""
  logging.set_verbosity(logging.WARNING)  # library INFO lines (tfds, checkpoint sharding) stay off the console
  try:
    main(argv)
  except UserError as e:
    sys.stderr.write(f"error: {one_line(e)}\n")
    sys.exit(2)
  except OSError as e:
    if e.errno not in _DISK_ERRNOS:
      raise
    sys.stderr.write(f"error: cannot write {e.filename or 'a file'}: {e.strerror}; nothing complete was lost: "
                     "free space (or fix permissions), then run the same command again\n")
    sys.exit(2)
