"""The serving room: the request path from an HTTP parse to a logged answer.

Routes (parse, models, health), the micro-batcher, parsing, the model registry, the guard
middleware and the request log. Nothing here imports ``app.operating``.
"""
