# syntax=docker/dockerfile:1
# A small image for the passes: `docker build -t ctrip .` then `docker run ctrip status`.
# Stage 1 builds the ctrip wheel; stage 2 installs the dependencies exactly as pinned,
# hash-checked, in requirements.lock, then ctrip itself without resolving anything.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY ctrip_cli ./ctrip_cli
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CTRIP_CHAINS_FILE=/etc/ctrip/chains.yaml \
    CTRIP_LOG_FORMAT=json
RUN groupadd --system --gid 10001 ctrip \
 && useradd --system --uid 10001 --gid ctrip --home-dir /home/ctrip --create-home ctrip
COPY requirements.lock /tmp/requirements.lock
RUN pip install --no-cache-dir --require-hashes --only-binary=:all: \
        -r /tmp/requirements.lock \
 && rm /tmp/requirements.lock
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --no-deps /wheels/*.whl && rm -rf /wheels
# The shipped chains; Kubernetes mounts its ConfigMap over /etc/ctrip instead.
COPY chains.yaml /etc/ctrip/chains.yaml
USER 10001:10001
WORKDIR /home/ctrip
ENTRYPOINT ["ctrip"]
CMD ["--help"]
