"""Evaluation: feature extractors, FID/KID/IS/precision-recall/density-coverage, cached real statistics.

  features.py    extractors: images [N, R, R, C] in [-1, 1] -> (features [N, D], logits [N, K]); Inception-v3 or the
                 project's Fashion-MNIST classifier
  metrics.py     the metrics as pure functions of activations (TF-GAN where it has them)
  stats.py       streamed statistics in bounded memory; the on-disk cache of real statistics
  evaluator.py   the protocol and its metric names; `Evaluator`, the training loop's evaluator (gin)
  runner.py      evaluating checkpoints of a model_dir or an exported SavedModel (tools/eval.py)
  classifier.py  the Fashion-MNIST classifier (tools/train_classifier.py)

Importing this package registers the gin configurables `Evaluator`, `inception_extractor`, `classifier_extractor`.
"""

from icr_tf.eval.evaluator import Evaluator, Protocol
from icr_tf.eval.features import CLASSIFIER_DIR, classifier_extractor, inception_extractor

__all__ = ["Evaluator", "Protocol", "CLASSIFIER_DIR", "classifier_extractor", "inception_extractor"]
