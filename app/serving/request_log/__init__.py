"""The request log: what a row holds and how its text is redacted (``rows``), what it may
store (``bounds``), and the writer that stores rows off the request path (``writer``, with its
spill files in ``spill``, the journal that survives a crash in ``journal``, and what it loses
or keeps aside in ``failures``)."""
