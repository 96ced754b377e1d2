"""The operator console: server-rendered pages under ``/console`` (sign-in, traffic, review
queue, corrections, training, versions) and the JSON routes behind them
(:func:`app.operating.console.setup.install_console`); ``slotfill user`` in ``cli``."""
