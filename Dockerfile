# An Airbyte custom connector image of this package: `source-amplemarket` speaks the
# Airbyte protocol (spec, check, discover, read). Untested on the development machine (no
# Docker engine there); .ci/run builds and runs it wherever a Docker engine answers.
#   docker build -t source-amplemarket:0.1.0 .
#   docker run --rm source-amplemarket:0.1.0 spec
FROM python:3.11-slim

WORKDIR /airbyte/integration_code
COPY pyproject.toml README.md ./
COPY tap_amplemarket ./tap_amplemarket
RUN pip install --no-cache-dir . && useradd --create-home airbyte
USER airbyte

# Airbyte on Kubernetes starts the connector through this variable, not the ENTRYPOINT.
ENV AIRBYTE_ENTRYPOINT="source-amplemarket"
ENTRYPOINT ["source-amplemarket"]

# io.airbyte.version must match the package version in pyproject.toml (a test checks it).
LABEL io.airbyte.name="airbyte/source-amplemarket"
LABEL io.airbyte.version="0.1.0"
