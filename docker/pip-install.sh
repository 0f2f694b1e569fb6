#!/bin/sh
# `pip install "$@"` inside an image build (docker/Dockerfile.*), with what the build was given and nothing
# of it left in the image: pip's PIP_* build arguments (empty ones dropped), and the BuildKit secrets the
# RUN step mounts for this command only:
#   ca_certs  extra CA certificates (PEM), appended to the image's bundle (a TLS-intercepting proxy)
#   pip_conf  a pip configuration file (an index URL with credentials stays out of the image's history)
set -eu
for name in PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_FIND_LINKS PIP_TRUSTED_HOST PIP_CONSTRAINT; do
  eval "value=\${$name:-}"
  if [ -z "$value" ]; then unset "$name"; fi
done
if [ -s /run/secrets/pip_conf ]; then export PIP_CONFIG_FILE=/run/secrets/pip_conf; fi
bundle=""
if [ -s /run/secrets/ca_certs ]; then
  system=/etc/ssl/certs/ca-certificates.crt
  [ -f "$system" ] || system=$(python -c 'from pip._vendor import certifi; print(certifi.where())')
  bundle=$(mktemp)
  cat "$system" /run/secrets/ca_certs > "$bundle"
  export PIP_CERT="$bundle"
fi
status=0
python -m pip install --no-cache-dir --disable-pip-version-check "$@" || status=$?
if [ -n "$bundle" ]; then rm -f "$bundle"; fi
exit "$status"
