# Shared by the results scripts: run from anywhere, write under runs/results/ (gitignored).
# Usage in a script:  . "$(dirname "$0")/_common.sh"
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
DATA="${CONVLENS_SHARED_DATA:-$ROOT/../shared/data}"
RESULTS="${RESULTS:-$ROOT/runs/results}"
mkdir -p "$RESULTS"
CONVLENS="${CONVLENS:-python -m convlens}"

# run NAME ARGS...: train with --json into $RESULTS/NAME/ and keep the JSON report as $RESULTS/NAME.json
run() {
    local name="$1"; shift
    if [ -e "$RESULTS/$name/last.json" ]; then
        echo "== $name: resuming $RESULTS/$name" >&2
        $CONVLENS train --resume "$RESULTS/$name" --json > "$RESULTS/$name.json"
    else
        echo "== $name: $*" >&2
        $CONVLENS train "$@" --out "$RESULTS/$name" --json > "$RESULTS/$name.json"
    fi
    python - "$RESULTS/$name.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
val = r["val_accuracy"]
val = "no validation split" if val is None else f"best validation {val:.2%}"
print(f"{sys.argv[1]}: test accuracy {r['test_accuracy']:.2%}, {val}, {r['epochs']} epochs, "
      f"{r['seconds'] / 60:.1f} min")
PY
}
