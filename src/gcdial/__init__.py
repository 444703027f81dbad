"""gcdial: place outbound calls on behalf of Genesys Cloud agents, safely.

The public surface is what ``__all__`` lists; everything else is implementation.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
