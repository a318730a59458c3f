# The ambiance service. Build context: the repository root.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AMBIANCE_HOST=0.0.0.0 \
    AMBIANCE_DATA_DIR=/data

WORKDIR /src
COPY pyproject.toml README.md ./
COPY ambiance ambiance
COPY api api
COPY scenes scenes
RUN pip install --no-cache-dir . && rm -rf /src \
    && useradd --system --uid 1000 --home-dir /data ambiance \
    && mkdir -p /data && chown ambiance /data

USER ambiance
WORKDIR /data
VOLUME /data
EXPOSE 8321
HEALTHCHECK --interval=30s --timeout=5s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8321/api/v1/health', timeout=4)"
# Reads /data/config.yaml when it exists; otherwise the embedded default (virtual lights).
CMD ["ambiance", "serve"]
