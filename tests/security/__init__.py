"""Security checks: secrets never shown, private files, no plain http, loud insecure settings."""
