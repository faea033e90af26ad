"""Training-time code: backbone port, feature caching, training and evaluation.

The app and the CLI's run-time commands never import this package; the shipped ``.keras``
and ``.tflite`` files carry everything needed for inference.
"""
