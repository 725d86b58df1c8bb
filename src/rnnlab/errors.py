"""The errors rnnlab raises on bad input.

The command line prints an ``RnnlabError`` as one line on stderr and exits with code 2;
``--debug`` shows the traceback instead. Any other exception is a bug.
"""


class RnnlabError(Exception):
    """Base class: a problem the user can fix, with a message that says how."""


class ConfigError(RnnlabError, ValueError):
    """An option or argument has an invalid value (unknown name, non-positive size, ...)."""


class DataError(RnnlabError):
    """A dataset is missing, empty, unreadable or too small for the requested batches."""


class DatasetNotFound(DataError):
    """A dataset file is neither on disk nor downloadable (offline, or downloads not allowed)."""

    def __init__(self, message: str, dataset: str, filename: str) -> None:
        super().__init__(message)
        self.dataset = dataset
        self.filename = filename


class MissingExtra(RnnlabError):
    """An optional dependency is not installed; the message names the extra to install."""


class CheckpointError(RnnlabError):
    """A run directory or checkpoint is missing, incomplete or does not fit the model."""
