"""icr-tf: GANs with (improved) consistency regularization in TensorFlow 2 / Keras.

Zhao, Singh, Lee, Zhang, Odena, Zhang: "Improved Consistency Regularization for GANs", AAAI 2021 (arXiv 2002.04724).
"""

__version__ = "0.1.0"
