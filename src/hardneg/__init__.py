"""hardneg: find and fix false negatives in retrieval training data."""

from hardneg.data.records import Instance, Passage
from hardneg.errors import HardnegError, InputError

__version__ = "0.1.0"

__all__ = ["HardnegError", "InputError", "Instance", "Passage", "__version__"]
