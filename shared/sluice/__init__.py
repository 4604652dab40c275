"""sluice: LLM memory on Redis with an asynchronous, correct write path."""

from sluice.errors import SluiceError
from sluice.facade.client import Client
from sluice.settings import Settings

__all__ = ["Client", "Settings", "SluiceError"]
__version__ = "0.1.0"
