# slotfill API / training worker image: slim Python 3.11, CPU-only torch, non-root.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    OMP_NUM_THREADS=1 \
    SLOTFILL_MODEL_STORE=/var/lib/slotfill/models \
    SLOTFILL_LOG_SPILL_DIR=/var/lib/slotfill/spill \
    SLOTFILL_LOG_JOURNAL_DIR=/var/lib/slotfill/journal \
    SLOTFILL_DATA_DIR=/var/lib/slotfill/data \
    SLOTFILL_DEMO_DATA_DIR=/var/lib/slotfill/data/demo

WORKDIR /app

# CPU-only torch first, from PyTorch's CPU wheel index, so no CUDA build is pulled in.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

COPY pyproject.toml setup.py README.md ./
COPY app ./app
COPY models ./models
COPY training ./training
COPY slotfill ./slotfill
COPY migrations ./migrations
COPY alembic.ini ./
# The demo data set inside the data folder: a new `data` volume starts as a copy of it.
COPY data/demo /var/lib/slotfill/data/demo
# A C compiler only while pip builds the engine's compiled kernels (setup.py), then removed.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install . \
    && python -c "from models import native; assert native.available()" \
    && apt-get purge -y --auto-remove gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/slotfill slotfill \
    && mkdir -p /var/lib/slotfill/models /var/lib/slotfill/spill /var/lib/slotfill/journal \
    && chown -R slotfill /var/lib/slotfill

USER slotfill
EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/livez', timeout=2).status == 200 else 1)"

# Migrations run as their own step (the compose `migrate` service: `alembic upgrade head`).
CMD ["slotfill", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
