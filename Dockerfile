# One image for every topcoins component; the Kubernetes Deployment (or `docker run`)
# picks the component with the first argument:
#   docker run topcoins:0.1.0 pricing|ranking|worker|web
# Settings are environment variables (see the README); API keys are passed at run time,
# never baked into the image.
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

# Install the package (and its dependencies) from a throwaway copy of the source.
COPY pyproject.toml README.md LICENSE /tmp/src/
COPY topcoins/ /tmp/src/topcoins/
COPY producers/ /tmp/src/producers/
COPY streams/ /tmp/src/streams/
COPY web/ /tmp/src/web/
COPY schemas/ /tmp/src/schemas/
RUN pip install /tmp/src && rm -rf /tmp/src

WORKDIR /app
USER 10001:10001

# web (WEB_PORT), then the health/metrics ports of pricing, ranking and worker.
EXPOSE 6667 9101 9102 9103

ENTRYPOINT ["topcoins"]
