# syntax=docker/dockerfile:1
# The rollguard controller image: `rollguard controller` (the Helm chart's default command).
#
# Two stages. The first builds rollguard's wheel and a wheel for every dependency; the
# second installs exactly those wheels, offline, into a bare Python image and runs as a
# non-root user. Nothing else (no compiler, no build front end, no source tree) reaches
# the final image. The base image is pinned to an exact patch release; a release
# workflow (examples/ci/release-image.yml) may pin it by digest too.
#
#   docker build -t rollguard:dev .
#   docker run --rm rollguard:dev --help

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# rollguard's wheel, then the wheels of its dependencies (binary wheels only: no compiler).
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && pip wheel --no-cache-dir --only-binary=:all: --wheel-dir /wheels /wheels/rollguard-*.whl

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="rollguard" \
      org.opencontainers.image.description="Automated rollback: watch a release, decide, roll back, keep an audit trail." \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# Only the wheels built above, installed offline; the mount leaves no layer behind.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels /wheels/rollguard-*.whl \
    && groupadd --system --gid 10001 rollguard \
    && useradd --system --uid 10001 --gid rollguard --home-dir /home/rollguard --create-home rollguard
# The chart's pod runs as this user (runAsUser 10001) on a read-only root file system.
USER 10001:10001
WORKDIR /home/rollguard
EXPOSE 8080
ENTRYPOINT ["rollguard"]
CMD ["controller", "--help"]
