"""Image grids and PNG files."""

import math
import os

import numpy as np
import tensorflow as tf


def grid(images, rows=None, padding=2, pad_value=255):
  """uint8 [N, H, W, C] -> one uint8 image [rows * (H + p) + p, cols * (W + p) + p, C], row-major, white gaps."""
  images = np.asarray(images)
  n, h, w, c = images.shape
  rows = rows or int(math.floor(math.sqrt(n)))
  cols = int(math.ceil(n / rows))
  out = np.full((rows * (h + padding) + padding, cols * (w + padding) + padding, c), pad_value, np.uint8)
  for i in range(n):
    r, k = divmod(i, cols)
    top, left = padding + r * (h + padding), padding + k * (w + padding)
    out[top:top + h, left:left + w] = images[i]
  return out


def write_png(path, image):
  """Writes a uint8 [H, W, C] image (C in 1, 3, 4) as PNG, through a temporary file and a rename."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = f"{path}.tmp"
  tf.io.write_file(tmp, tf.io.encode_png(np.asarray(image, np.uint8)))
  os.replace(tmp, path)
  return path
