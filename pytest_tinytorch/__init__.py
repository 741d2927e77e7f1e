"""pytest_tinytorch: the grading plugin and instructor tooling of the TinyTorch course.

The plugin (registered through the ``pytest11`` entry point) grades module notebooks: for one
student (``pytest --module 01_tensor``) or a whole class (``pytest --collect-submissions``).
Student code runs only in a kernel process that the grader starts; tests get plain data back
and decide every verdict in the pytest process.
"""

__version__ = "0.1.0"
