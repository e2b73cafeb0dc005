#!/bin/sh
# The image's entry point: run_all.sh PRESET (default: smoke) with the results under /results.
# The JAX extra the image was built with keys setup_env.sh's stamp, so run_all.sh finds its setup done.
set -eu
XT_JAX_EXTRA=$(cat /opt/xt-state/jax-extra)
export XT_JAX_EXTRA
cd /app
exec ./run_all.sh "$@"
