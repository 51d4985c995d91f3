# One image for every topcoins component; the Kubernetes Deployment (or `docker run`)
# picks the component with the first argument:
#   docker run topcoins:0.1.0 pricing|ranking|worker|web
# Settings are environment variables (see the README); API keys are passed at run time,
# never baked into the image. Dependencies come from the lock files with their hashes
# (`scripts/lock` refreshes them), so a rebuild installs the same files.

# Build stage: the topcoins wheel, without the development-only modules (local brokers,
# `topcoins dev`, the emulator and its recorded data: scripts/runtime_wheel.py).
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements-build.lock /tmp/
RUN pip install --require-hashes -r /tmp/requirements-build.lock
COPY pyproject.toml README.md LICENSE /src/
COPY topcoins/ /src/topcoins/
COPY producers/ /src/producers/
COPY streams/ /src/streams/
COPY web/ /src/web/
COPY schemas/ /src/schemas/
COPY scripts/runtime_wheel.py /src/scripts/
RUN pip wheel --no-deps --no-build-isolation --wheel-dir /tmp/wheel /src \
    && python /src/scripts/runtime_wheel.py /tmp/wheel/topcoins-*.whl /wheel

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# An unprivileged user with a fixed id, so Kubernetes can check runAsNonRoot.
RUN groupadd --system --gid 10001 topcoins \
    && useradd --system --uid 10001 --gid topcoins --home-dir /app --shell /usr/sbin/nologin topcoins \
    && mkdir /app \
    && chown topcoins:topcoins /app

# The locked dependencies (pip refuses any file whose hash is not in the lock, and any
# dependency the lock does not pin), then the wheel alone; pip check proves they fit.
COPY requirements.lock /tmp/
RUN pip install --require-hashes -r /tmp/requirements.lock && rm /tmp/requirements.lock
COPY --from=build /wheel/ /tmp/wheel/
RUN pip install --no-deps /tmp/wheel/*.whl && pip check && rm -rf /tmp/wheel

WORKDIR /app
USER 10001:10001

# web (WEB_PORT), then the health/metrics ports of pricing, ranking and worker.
EXPOSE 6667 9101 9102 9103

ENTRYPOINT ["topcoins"]
