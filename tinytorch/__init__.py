"""TinyTorch: an ML framework built from scratch in NumPy, one course module at a time.

The files under ``tinytorch/`` are exported from the module sources in ``curriculum/`` by
``tito export``; edit the sources, not the exported files.
"""

__version__ = "0.1.0"
