#!/usr/bin/env bash
# Install the template tools (aws-sam-cli and cfn-lint into .tools/sam, checkov into
# .tools/checkov), apart from the project's .venv: aws-sam-cli and checkov pin many packages
# (boto3, jsonschema, pydantic ...) that would clash with the project's own pins. Idempotent: does nothing when the pinned versions are already there.
#
#   bash scripts/install-sam-tools.sh        # then: .tools/sam/bin/sam, .tools/sam/bin/cfn-lint
set -euo pipefail
cd "$(dirname "$0")/.."

SAM_VERSION="${SAM_VERSION:-1.170.*}"
CHECKOV_VERSION="${CHECKOV_VERSION:-3.3.30}"
CHECKOV=.tools/checkov
CFN_LINT_VERSION="${CFN_LINT_VERSION:-1.*}"
TOOLS=.tools/sam
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
STAMP="$TOOLS/.installed"
WANT="aws-sam-cli==$SAM_VERSION cfn-lint==$CFN_LINT_VERSION"

# checkov has pins of its own too: a third environment.
if [[ ! -x "$CHECKOV/bin/checkov" || "$(cat "$CHECKOV/.installed" 2>/dev/null)" != "$CHECKOV_VERSION" ]]; then
    echo "installing checkov==$CHECKOV_VERSION into $CHECKOV" >&2
    test -x "$CHECKOV/bin/python" || "$PYTHON" -m venv "$CHECKOV"
    "$CHECKOV/bin/python" -m pip install -q --disable-pip-version-check "checkov==$CHECKOV_VERSION"
    echo "$CHECKOV_VERSION" >"$CHECKOV/.installed"
fi

if [[ -x "$TOOLS/bin/sam" && -x "$TOOLS/bin/cfn-lint" && -f "$STAMP" ]] \
    && [[ "$(cat "$STAMP")" == "$WANT" ]]; then
    exit 0
fi

echo "installing $WANT into $TOOLS" >&2
test -x "$TOOLS/bin/python" || "$PYTHON" -m venv "$TOOLS"
"$TOOLS/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
# shellcheck disable=SC2086  # word splitting of $WANT is intended
"$TOOLS/bin/python" -m pip install -q --disable-pip-version-check $WANT
"$TOOLS/bin/sam" --version >&2
"$TOOLS/bin/cfn-lint" --version >&2
echo "$WANT" >"$STAMP"
