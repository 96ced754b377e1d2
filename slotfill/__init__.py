"""The ``slotfill`` command: composes the offline (training) and online (app) commands."""
