"""Offline trainer and evaluator. Imports ``models/`` only, never ``app/``."""
