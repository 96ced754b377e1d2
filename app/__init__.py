"""HTTP service: FastAPI app factory, model registry, request log. Imports `models/` only."""
