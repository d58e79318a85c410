"""Error type for everything that can go wrong while loading data."""


class DataError(ValueError):
    """Raised when a dataset cannot be loaded or a data file is malformed.

    It subclasses ``ValueError`` so callers that already catch bad-value errors keep working,
    while callers that want to report data problems specifically can catch just this.
    """
