# shellcheck shell=bash
# `source toolchain/env.sh`: a shell in which plain `pulumi preview --stack dev`
# and `pulumi up` behave exactly as `make preview` / `make up` do. The Makefile
# reads the same settings from here (one home): the project's pinned tools
# first on PATH, the project's plugin cache, no plugin downloads, the file
# backend under .state unless PULUMI_BACKEND_URL is already set, and the
# `pulumi` of toolchain/shims, which adds the policy pack, the update message,
# and the local stack's passphrase and cluster (for the local stack only).
# direnv users get the same through .envrc.
_astrago_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"
export ASTRAGO_ROOT="$_astrago_root"
case ":$PATH:" in
  *":$_astrago_root/toolchain/shims:"*) ;;
  *) export PATH="$_astrago_root/toolchain/shims:$_astrago_root/.tools/bin:$PATH" ;;
esac
export PULUMI_HOME="$_astrago_root/.tools/pulumi-home"
export PULUMI_SKIP_UPDATE_CHECK=1
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$_astrago_root/.state/backend}"
case "$PULUMI_BACKEND_URL" in file://*) mkdir -p "${PULUMI_BACKEND_URL#file://}" ;; esac
if [ ! -x "$_astrago_root/.tools/bin/pulumi" ]; then
  echo "astrago-deploy: the pinned toolchain is not built yet: run \`make setup\` (then source this file again)" >&2
fi
unset _astrago_root
