#!/usr/bin/env bash
# Install LocalStack's Python core into .tools/localstack, a venv of its own: its pins
# (cryptography < 44, pyopenssl < 24.3, ...) must not touch the project's .venv. Idempotent:
# does nothing when the pinned set is already there. The local stack and the tests start it
# without Docker (local/localstack.py), the way LocalStack's container image starts it.
#
#   bash scripts/install-localstack.sh        # then: .tools/localstack/bin/python -m localstack.runtime.main
#
# Why these pins (checked on Python 3.11, 2026-11; see ../shared/AWS.md): localstack-core 4.4.0
# is the last line that runs on Python 3.11 (4.14 and 2026.x use PEP 695 syntax), and newer
# cbor2, pyopenssl, cryptography, service_identity or psutil releases break its start.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS="${LOCALSTACK_TOOLS:-.tools/localstack}"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
STAMP="$TOOLS/.installed"
WANT="localstack-core[runtime]==4.4.0 cbor2<5.7 pyopenssl<24.3 cryptography>=42,<44 service_identity<24.2 psutil<7"

installed() { [[ -x "$TOOLS/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; }
installed && exit 0

# Two first uses at once (make test and a pytest run, two sessions) must not both install.
mkdir -p "$(dirname "$TOOLS")"
exec 9>"$TOOLS.lock"
flock 9
installed && exit 0

echo "installing LocalStack ($WANT) into $TOOLS" >&2
test -x "$TOOLS/bin/python" || "$PYTHON" -m venv "$TOOLS"
"$TOOLS/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
# One pip call, so the resolver sees the pins together with localstack-core's own requirements.
# shellcheck disable=SC2086  # word splitting of $WANT is intended
"$TOOLS/bin/python" -m pip install -q --disable-pip-version-check $WANT
"$TOOLS/bin/python" -c "import localstack.runtime.main" # fails here, not at first start
echo "$WANT" >"$STAMP"
