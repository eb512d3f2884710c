# One image for the operator and the query runtime.
#   operator:   streamhouse operator
#   query pod:  streamhouse run --query /etc/streamhouse/query.sql
# Build: docker build -t streamhouse:0.1.0 .   (tests/unit/test_dockerfile.py checks it statically)

# -- build: a virtual environment with the project and its dependencies (wheels only) ------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY runtime ./runtime
COPY operator ./operator
RUN python -m venv /opt/streamhouse \
 && /opt/streamhouse/bin/pip install --prefer-binary . \
 && /opt/streamhouse/bin/pip uninstall --yes pip setuptools wheel

# -- final: the virtual environment alone, run as an unprivileged user ----------------------
FROM python:3.11-slim
RUN useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin streamhouse \
 && python -m pip uninstall --yes pip setuptools wheel
COPY --from=build /opt/streamhouse /opt/streamhouse
ENV PATH=/opt/streamhouse/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
WORKDIR /tmp
ENTRYPOINT ["streamhouse"]
CMD ["--help"]
