"""Errors that a user can fix: each carries one line naming the bad value and what is accepted."""

import re


class UserError(ValueError):
  """A bad input: an unknown name, a missing file, a config that does not fit. Binaries print it as one line."""


class DataError(UserError):
  """Data that is not on this machine, or not readable."""


class ConfigError(UserError):
  """A configuration that cannot be built or does not match what a model_dir holds."""


_GIN_CALL_NOTE = re.compile(r"\s*In call to configurable '[^']*' \(<[^>]*>\)")


def one_line(message) -> str:
  """Folds a (possibly multi-line) message into one line, without gin's "In call to configurable ..." notes."""
  return " ".join(_GIN_CALL_NOTE.sub("", str(message)).split())
