"""Typed errors that say what was expected, what came in, and what to do."""


class TinyTorchError(Exception):
    """Base class of the errors raised by TinyTorch's tooling."""


class UnknownModuleError(TinyTorchError, ValueError):
    """A module name that the registry does not know."""

    def __init__(self, name, valid):
        self.name, self.valid = name, list(valid)
        super().__init__(
            f"unknown module {name!r}; expected one of: {', '.join(self.valid)} "
            f"(a slug like 01_tensor, its number like 01, or its name like tensor)"
        )


class SourceFormatError(TinyTorchError, ValueError):
    """A module source that does not follow the percent format of curriculum/README.md."""
