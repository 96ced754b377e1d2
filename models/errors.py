"""Errors of the model layer that callers catch without importing torch (the CLI's
dispatcher, the server's supervisor process)."""


class ArtifactError(Exception):
    """An artifact is missing, corrupt, truncated or of another format."""
