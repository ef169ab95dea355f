#!/usr/bin/env bash
# The onboard install profile alone, as a bus installs it: a fresh venv with
# `pip install -e '.[onboard,test-onboard]'` (PyPI only) must hold no web framework, database
# or numerics, import every module under onboard/, run `bibo onboard ...`, refuse a server
# command in one line, and pass the onboard tests (those that start the real backend skip and
# say why). `.ci/run` runs it after the main suite; about a minute.
set -euo pipefail
cd "$(dirname "$0")/../.."

python=${PYTHON:-python3}
venv=$(mktemp -d "${TMPDIR:-/tmp}/bibo-onboard-profile.XXXXXX")
trap 'rm -rf "$venv"' EXIT

echo "onboard profile: installing '.[onboard,test-onboard]' into a fresh venv"
"$python" -m venv "$venv"
"$venv/bin/pip" install -q -e '.[onboard,test-onboard]'

echo "onboard profile: no server or numerics installed; every onboard module imports"
"$venv/bin/python" - <<'EOF'
import importlib
import importlib.util
import pkgutil
import sys

FORBIDDEN = ("fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "psycopg")
FORBIDDEN += ("scipy", "numpy", "matplotlib", "rich")
present = [name for name in FORBIDDEN if importlib.util.find_spec(name) is not None]
if present:
    sys.exit(f"the onboard profile installed {', '.join(present)}")

import onboard

modules = [m.name for m in pkgutil.walk_packages(onboard.__path__, "onboard.")]
for name in modules:
    importlib.import_module(name)
foreign = sorted(
    name
    for name in sys.modules
    if name.split(".")[0] in ("backend", "simulator", "fare_engine")
)
if foreign:
    sys.exit(f"onboard modules imported {', '.join(foreign)}")
print(f"  {len(modules)} modules: {' '.join(m.removeprefix('onboard.') for m in modules)}")
EOF

echo "onboard profile: the bibo command"
bibo="$venv/bin/bibo"
"$bibo" --help >/dev/null
"$bibo" onboard run --help >/dev/null
"$bibo" onboard status --help >/dev/null
set +e
refusal=$("$bibo" serve 2>&1)
rc=$?
set -e
if [ "$rc" -ne 2 ] || [[ "$refusal" != *"pip install 'bibo[server]'"* ]]; then
  echo "bibo serve without the server: expected exit 2 naming bibo[server], got $rc: $refusal" >&2
  exit 1
fi
echo "  bibo --help, bibo onboard run --help, bibo onboard status --help: exit 0"
echo "  bibo serve: exit 2: $refusal"

echo "onboard profile: pytest tests/onboard tests/test_wire.py"
"$venv/bin/python" -m pytest -q -p no:cacheprovider tests/onboard tests/test_wire.py
