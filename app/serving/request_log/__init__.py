"""The request log: what a row holds and how its text is redacted (``rows``), and the writer
that stores rows off the request path (``writer``, with its spill files in ``spill``)."""
