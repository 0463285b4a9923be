#!/usr/bin/env bash
# Builds the npm package (scripts/build-web.sh) and the static page into www/demo/dist (relative asset paths, the
# embedded demo model copied under demo/): deployable to any static host, under any sub-path.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-web.sh "$@"
(cd www/demo && npx vite build --logLevel warn)
echo "built www/demo/dist"
