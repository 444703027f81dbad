"""gcdial.emulator: a local Genesys Cloud (OAuth, users, calls, notifications) for tests and demos.

It imports nothing from gcdial's client side: it is an independent implementation of the contract.
"""

from gcdial.emulator.app import create_app
from gcdial.emulator.config import EmulatorConfig
from gcdial.emulator.fixtures import FixtureError
from gcdial.emulator.server import EmulatorError, EmulatorServer

__all__ = ["EmulatorConfig", "EmulatorError", "EmulatorServer", "FixtureError", "create_app"]
