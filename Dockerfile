# source-amplemarket, this package's Airbyte source, as an Airbyte custom connector image:
#   docker build -t source-amplemarket:0.1.0 .
#   docker run --rm source-amplemarket:0.1.0 spec
# `make image-test` builds it on a machine without a registry (BASE_IMAGE made locally, pip
# installing wheels built on the host) and runs spec, check, discover and read in it.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
# More pip options; `make image-test`: "--no-index --find-links wheelhouse" (no network here).
ARG PIP_OPTIONS=""
WORKDIR /src
COPY . .
# The versions uv.lock pins (constraints.txt is its export for pip), as every other install of
# this package; then pip and setuptools go: the connector never installs anything.
RUN python3 -m venv /opt/source-amplemarket \
    && /opt/source-amplemarket/bin/python -m pip install --no-cache-dir \
       --disable-pip-version-check $PIP_OPTIONS -c constraints.txt . \
    && /opt/source-amplemarket/bin/python -m pip uninstall --yes --quiet \
       --disable-pip-version-check pip setuptools

FROM ${BASE_IMAGE}
COPY --from=build /opt/source-amplemarket /opt/source-amplemarket
# Airbyte's Python connector images run as uid 1000 ("airbyte"), from this directory; USER is
# the number, which Kubernetes' runAsNonRoot can check. What the connector never uses goes, as
# a scanner would flag it: the base's pip and setuptools (wheels for venvs too), and the
# setuid/setgid bits (su, passwd, mount...: nothing in here changes user).
RUN useradd --create-home --uid 1000 airbyte \
    && rm -rf /usr/share/python-wheels /usr/local/bin/pip* /usr/local/lib/python3*/ensurepip \
       /usr/local/lib/python3*/site-packages/pip /usr/local/lib/python3*/site-packages/pip-* \
       /usr/local/lib/python3*/site-packages/setuptools* \
       /usr/local/lib/python3*/site-packages/_distutils_hack \
       /usr/local/lib/python3*/site-packages/distutils-precedence.pth \
    && find / -xdev -type f -perm /6000 -exec chmod ug-s {} +
WORKDIR /airbyte/integration_code
USER 1000
ENV PATH="/opt/source-amplemarket/bin:$PATH"

# Airbyte on Kubernetes starts the connector through this variable, not the ENTRYPOINT.
ENV AIRBYTE_ENTRYPOINT="source-amplemarket"
ENTRYPOINT ["source-amplemarket"]

# io.airbyte.name is metadata.yaml's dockerRepository and io.airbyte.version the package
# version in pyproject.toml (tests/test_connector_metadata.py checks both).
LABEL io.airbyte.name="amplemarket-tap/source-amplemarket"
LABEL io.airbyte.version="0.1.0"
