# xtreme-transfer in one image: run_all.sh with the results in /results (docs/docker.md has the details).
#   docker build -t xtreme-transfer --build-arg GIT_COMMIT="$(git rev-parse HEAD)" .                          # CPU JAX
#   docker build -t xtreme-transfer:cuda --build-arg JAX_EXTRA=cuda --build-arg GIT_COMMIT="$(git rev-parse HEAD)" .
#   mkdir -p results && docker run --rm --user "$(id -u):$(id -g)" -v "$PWD/results:/results" xtreme-transfer
# Plain Dockerfile syntax (no RUN --mount, no heredocs): it builds the same with BuildKit (buildx) and with
# the legacy builder of a client that has no buildx.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---- build: a venv with the package and its pinned run-time dependencies (no torch) ----------------
FROM ${BASE_IMAGE} AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# cpu | cuda | tpu: the JAX wheels (cuda and tpu are pyproject extras; cpu is plain jax).
ARG JAX_EXTRA=cpu
# PEM text of the CA of a TLS-intercepting proxy, for pip in this stage only: the runtime stage starts
# again from BASE_IMAGE, so it does not reach the image (EXTRA_CA_CERT below does, on purpose).
ARG BUILD_CA_CERT=""
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

# The image's defaults, read by docker/entrypoint.py: the JAX extra (setup_env.sh's stamp key) and the
# device run_all.sh insists on (an accelerator image stops at once when it has none).
COPY docker/ca_bundle.sh docker/requirements.py docker/constraints.txt docker/
RUN docker/ca_bundle.sh "$PIP_CERT" \
    && case "$JAX_EXTRA" in \
         cpu) extra="" device=cpu ;; \
         cuda) extra=cuda device=gpu ;; \
         tpu) extra=tpu device=tpu ;; \
         *) echo "JAX_EXTRA must be cpu, cuda or tpu, not '$JAX_EXTRA'" >&2; exit 1 ;; \
       esac \
    && mkdir -p /opt/xt-state/xtreme-transfer \
    && printf '%s' "$extra" > /opt/xt-state/jax-extra && printf '%s' "$device" > /opt/xt-state/device \
    && python3 -m venv /opt/venv \
    && pip install --no-cache-dir "pip==${PIP_VERSION}"

# Dependencies first: this layer only changes with pyproject.toml (README.md, its `readme`, comes with the
# source below: an edit of it must not reinstall the dependencies).
COPY pyproject.toml ./
RUN python3 docker/requirements.py pyproject.toml "$(cat /opt/xt-state/jax-extra)" > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt

# The source (.dockerignore is an allow-list), installed the way run_all.sh does it (scripts/setup_env.sh),
# so that its stamp is in place and run_all.sh installs nothing at run time.
COPY . .
RUN XT_JAX_EXTRA="$(cat /opt/xt-state/jax-extra)" scripts/setup_env.sh run \
    && python -c "import flax_models, data_prep, repro" \
    && find /opt/venv /app -name __pycache__ -type d -prune -exec rm -rf {} +

# ---- runtime: the venv and the source, a non-root user, /results and /hf-cache for mounts ------------
FROM ${BASE_IMAGE} AS runtime
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG EXTRA_CA_CERT=""
ARG UID=1000
# The checkout's commit (the image has no .git): docker build --build-arg GIT_COMMIT="$(git rev-parse HEAD)".
ARG GIT_COMMIT=unknown
LABEL org.opencontainers.image.title="xtreme-transfer" org.opencontainers.image.revision="${GIT_COMMIT}"
# /results and /hf-cache are mount points. Not VOLUMEs: an anonymous volume would swallow the results of a
# run without -v (entrypoint.py warns instead). Mode 1777 so that any --user can run without mounts too.
RUN groupadd --gid "$UID" xt \
    && useradd --uid "$UID" --gid "$UID" --create-home --shell /bin/bash xt \
    && mkdir -p /results /hf-cache \
    && chown xt:xt /results /hf-cache \
    && chmod 1777 /results /hf-cache
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/xt-state /opt/xt-state
COPY --from=build /app /app
# The CA bundle of the running container: the base image's plus EXTRA_CA_CERT.
# /opt/xt-state holds setup_env.sh's stamp; any user may add caches next to it.
# Presets write to runs/<preset> under the checkout: that is /results here.
RUN /app/docker/ca_bundle.sh /etc/xtreme-transfer/ca.pem \
    && chmod 1777 /opt/xt-state \
    && ln -s /results /app/runs
# TRANSFORMERS_NO_ADVISORY_WARNINGS: the image has no torch on purpose; transformers would say so on every start.
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    XT_NO_VENV=1 \
    XDG_CACHE_HOME=/opt/xt-state \
    XT_GIT_COMMIT=${GIT_COMMIT} \
    HF_HOME=/hf-cache \
    MPLCONFIGDIR=/tmp/matplotlib \
    PYTHONUNBUFFERED=1 \
    TRANSFORMERS_NO_ADVISORY_WARNINGS=1 \
    SSL_CERT_FILE=/etc/xtreme-transfer/ca.pem \
    REQUESTS_CA_BUNDLE=/etc/xtreme-transfer/ca.pem
USER ${UID}:${UID}
WORKDIR /app
ENTRYPOINT ["/app/docker/entrypoint.py"]
