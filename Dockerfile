# syntax=docker/dockerfile:1
# meshgate in a container: `docker compose up` (docker-compose.yml) runs it with PostgreSQL.
# Build stage: install meshgate and its dependencies into a virtualenv (wheels only, no compiler).
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m venv /opt/meshgate \
 && /opt/meshgate/bin/pip install --only-binary=:all: . \
 && find /opt/meshgate -name '__pycache__' -prune -exec rm -rf {} +

# Run stage: the interpreter and the virtualenv, nothing else (no compiler, no pip cache, no curl).
FROM python:3.11-slim-bookworm
ENV PATH=/opt/meshgate/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MESHGATE_DATA_DIR=/data \
    MESHGATE_LOG_FORMAT=json \
    HOST=0.0.0.0 \
    PORT=3000
COPY --from=build /opt/meshgate /opt/meshgate
# A fixed uid/gid without a login shell; the data dir is its only writable place (a volume).
RUN groupadd --system --gid 10001 meshgate \
 && useradd --system --uid 10001 --gid meshgate --home-dir /data --shell /usr/sbin/nologin meshgate \
 && install -d -o meshgate -g meshgate -m 0700 /data
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 3000
# No curl in the image: the interpreter that is there anyway asks /health/live.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '3000')}/health/live\", timeout=4)"]
# Exec form: meshgate is PID 1 and gets SIGTERM itself (it finishes in-flight requests, then exits 0).
ENTRYPOINT ["meshgate"]
CMD ["serve"]
