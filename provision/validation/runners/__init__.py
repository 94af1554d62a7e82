"""Runtimes: :mod:`.base` what every runner shares, :mod:`.device` where a model runs,
:mod:`.onnx` onnxruntime, :mod:`.torch` TorchScript and torchvision state dicts, :mod:`.open` the
runner for a model's format. torch and onnxruntime are imported only when a model is opened.
"""
