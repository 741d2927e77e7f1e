# Root conftest, kept minimal: the grading plugin is registered through the `pytest11` entry
# point in pyproject.toml, and the project's own tests live in tests/.
