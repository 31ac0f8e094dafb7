# The `issuance` image used by docker-compose.yml: the CLI and its services against real Kafka and PostgreSQL.
# The embedded broker and PostgreSQL (the [embedded] extra) are not installed: compose provides real servers.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY issuance ./issuance
COPY schemas ./schemas
COPY producers ./producers
COPY pipelines ./pipelines
COPY consumers ./consumers
COPY dashboard ./dashboard
RUN pip install . \
    && useradd --create-home --uid 10001 issuance \
    && mkdir -p /var/lib/issuance \
    && chown issuance:issuance /var/lib/issuance

USER issuance
WORKDIR /var/lib/issuance
ENV ISSUANCE_STATE_DIR=/var/lib/issuance/state \
    ISSUANCE_PERSONALIZATION_DIR=/var/lib/issuance/personalization

ENTRYPOINT ["issuance"]
CMD ["--help"]
