"""The ``gcdial`` command line."""
