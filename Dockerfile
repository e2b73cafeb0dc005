# xtreme-transfer in one image:  docker run -v "$PWD/results:/results" IMAGE [PRESET]  runs  run_all.sh PRESET.
# Build with BuildKit (build secrets), e.g.
#   DOCKER_BUILDKIT=1 docker build -t xtreme-transfer --build-arg JAX_EXTRA=cuda \
#     [--build-arg BASE_IMAGE=...] [--secret id=ca,src=corp.pem | --build-arg EXTRA_CA_CERT="$(cat corp.pem)"] .
# docs/docker.md has the details; docker/test_image.sh builds and runs it end to end.
ARG BASE_IMAGE=python:3.12-slim-bookworm

# ---- build: a venv with the package and its pinned run-time dependencies (no torch) ----------------
FROM ${BASE_IMAGE} AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# cpu | cuda | tpu: the JAX wheels (cuda and tpu are pyproject extras; cpu is plain jax).
ARG JAX_EXTRA=cpu
ARG EXTRA_CA_CERT=""
ARG PIP_VERSION=26.3
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_CERT=/opt/xt-build-ca.pem \
    PIP_CONSTRAINT=/app/docker/constraints.txt \
    PYTHONDONTWRITEBYTECODE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    XT_NO_VENV=1 \
    XDG_CACHE_HOME=/opt/xt-state
WORKDIR /app

COPY docker/ca_bundle.sh docker/requirements.py docker/constraints.txt docker/
RUN --mount=type=secret,id=ca,required=false docker/ca_bundle.sh "$PIP_CERT" \
    && case "$JAX_EXTRA" in \
         cpu) extra="" ;; \
         cuda|tpu) extra=$JAX_EXTRA ;; \
         *) echo "JAX_EXTRA must be cpu, cuda or tpu, not '$JAX_EXTRA'" >&2; exit 1 ;; \
       esac \
    && mkdir -p /opt/xt-state/xtreme-transfer && printf '%s' "$extra" > /opt/xt-state/jax-extra \
    && python3 -m venv /opt/venv \
    && pip install --no-cache-dir "pip==${PIP_VERSION}"

# Dependencies first: this layer only changes with pyproject.toml.
COPY pyproject.toml README.md ./
RUN python3 docker/requirements.py pyproject.toml "$(cat /opt/xt-state/jax-extra)" > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt

# The source, installed the way run_all.sh does it (scripts/setup_env.sh), so that its stamp is in place
# and run_all.sh installs nothing at run time.
COPY . .
RUN XT_JAX_EXTRA="$(cat /opt/xt-state/jax-extra)" scripts/setup_env.sh run \
    && python -c "import flax_models, data_prep, repro" \
    && find /opt/venv /app -name __pycache__ -type d -prune -exec rm -rf {} +

# ---- runtime: the venv and the source, a non-root user, results and HF cache as volumes -------------
FROM ${BASE_IMAGE} AS runtime
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG EXTRA_CA_CERT=""
ARG UID=1000
# The checkout's commit (the image has no .git): docker build --build-arg GIT_COMMIT="$(git rev-parse HEAD)".
ARG GIT_COMMIT=unknown
LABEL org.opencontainers.image.title="xtreme-transfer" org.opencontainers.image.revision="${GIT_COMMIT}"
RUN groupadd --gid "$UID" xt \
    && useradd --uid "$UID" --gid "$UID" --create-home --shell /bin/bash xt \
    && mkdir -p /results /hf-cache \
    && chown xt:xt /results /hf-cache
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/xt-state /opt/xt-state
COPY --from=build /app /app
# The CA bundle of the running container: the base image's plus EXTRA_CA_CERT (not the build secret).
# /opt/xt-state holds setup_env.sh's stamp; any user may add caches next to it.
# Presets write to runs/<preset> under the checkout: that is the /results volume here.
RUN /app/docker/ca_bundle.sh /etc/xtreme-transfer/ca.pem \
    && chmod 1777 /opt/xt-state \
    && ln -s /results /app/runs
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    XT_NO_VENV=1 \
    XDG_CACHE_HOME=/opt/xt-state \
    XT_GIT_COMMIT=${GIT_COMMIT} \
    HF_HOME=/hf-cache \
    MPLCONFIGDIR=/tmp/matplotlib \
    PYTHONUNBUFFERED=1 \
    SSL_CERT_FILE=/etc/xtreme-transfer/ca.pem \
    REQUESTS_CA_BUNDLE=/etc/xtreme-transfer/ca.pem
VOLUME ["/results", "/hf-cache"]
USER ${UID}:${UID}
WORKDIR /app
ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["smoke"]
