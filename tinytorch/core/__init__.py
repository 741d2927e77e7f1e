"""The core of TinyTorch: tensors, layers, losses, data, autograd, optimizers and training."""
