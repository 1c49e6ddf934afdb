#!/usr/bin/env bash
# The learning study of a pipeline preset on one GPU, as one prepared command:
#
#   evals/gpu_study.sh OUT [--preset gpu] [--run DIR] [--wheels DIR [--install-only]] [--time-limit SECONDS]
#                          [--allow-cpu]
#
# 1. With --wheels DIR, installs the wheels in DIR and this checkout into build/offline-site, without an
#    index or dependencies (a machine with CUDA PyTorch and no network: `python -m
#    foveate.evals.offline_wheels` downloads them elsewhere; README.md). What is installed there stays:
#    wheels can come in several folders, one call each with --install-only but the last.
# 2. Writes OUT/env.json (training/machine.py): Python, the CPU and torch's CPU kernels, CUDA, the GPU, and the versions
#    of Foveate's dependencies.
# 3. Runs `foveate train pipeline PRESET -o RUN --json` (RUN: runs/PRESET in this checkout) under
#    the time limit (default: none). Stopped at the limit, it exits 124; the same command again resumes
#    the run after its last finished stage (pretraining from its last saved step).
# 4. Copies what the run has so far into OUT: pipeline.log (its stderr: stages, losses, seconds),
#    results.json (the --json line, once the run is finished), stages.json (seconds per finished stage),
#    pretrain_metrics.json, selection.json and report.md, grpo_reward.png.
#
# It refuses to start without a CUDA GPU unless --allow-cpu is given (a small YAML preset, to try it).
set -euo pipefail

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; }

out="" preset="gpu" run="" wheels="" limit=0 allow_cpu=0 install_only=0
while [ $# -gt 0 ]; do
    case "$1" in
        -h | --help) usage; exit 0 ;;
        --preset) preset="${2:?--preset needs a value}"; shift 2 ;;
        --run) run="${2:?--run needs a folder}"; shift 2 ;;
        --wheels) wheels="${2:?--wheels needs a folder}"; shift 2 ;;
        --time-limit) limit="${2:?--time-limit needs seconds}"; shift 2 ;;
        --allow-cpu) allow_cpu=1; shift ;;
        --install-only) install_only=1; shift ;;
        -*) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) [ -z "$out" ] || { echo "error: one OUT folder, got $out and $1" >&2; exit 2; }; out="$1"; shift ;;
    esac
done
[ -n "$out" ] || { usage >&2; exit 2; }
case "$limit" in '' | *[!0-9]*) echo "error: --time-limit takes whole seconds, got $limit" >&2; exit 2 ;; esac
repo="$(cd "$(dirname "$0")/.." && pwd)"
run="${run:-$repo/runs/$(basename "${preset%.yaml}")}"
mkdir -p "$out"
python="${PYTHON:-python3}"
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"  # the pipeline builds its models here; nothing to download

site="$repo/build/offline-site"
if [ -n "$wheels" ]; then
    [ -d "$wheels" ] && compgen -G "$wheels/*.whl" > /dev/null \
        || { echo "error: $wheels holds no .whl files" >&2; exit 2; }
    "$python" -m pip install -q --root-user-action=ignore --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
        "$wheels"/*.whl
    "$python" -m pip install -q --root-user-action=ignore --no-index --no-deps --no-build-isolation --no-compile --upgrade --target "$site" \
        "$repo"
    echo "installed $(ls "$wheels"/*.whl | wc -l) wheels and foveate into $site" >&2
    [ "$install_only" = 1 ] && exit 0
fi
[ -d "$site" ] && export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
"$python" -c "import foveate.training.pipeline" 2> /dev/null || {
    echo "error: foveate does not import with $python: install it (pip install -e .), or pass --wheels DIR" >&2
    "$python" -c "import foveate.training.pipeline" 2>&1 | tail -1 >&2
    exit 1
}

"$python" - "$out/env.json" "$allow_cpu" << 'EOF'
import json, sys

import torch

from foveate.training.machine import machine_record

cuda = torch.cuda.is_available()
env = machine_record()
with open(sys.argv[1], "w") as f:
    json.dump(env, f, indent=1)
print(json.dumps(env), file=sys.stderr)
if not cuda and sys.argv[2] != "1":
    sys.exit("error: no CUDA GPU visible to torch (pass --allow-cpu to run anyway)")
EOF

collect() {
    [ -f "$run/stages.json" ] && cp "$run/stages.json" "$out/stages.json"
    [ -f "$run/pretrain/metrics.json" ] && cp "$run/pretrain/metrics.json" "$out/pretrain_metrics.json"
    [ -f "$run/grpo/selection.json" ] && cp "$run/grpo/selection.json" "$out/selection.json"
    [ -f "$run/report/report.md" ] && cp "$run/report/report.md" "$out/report.md"
    [ -f "$run/report/grpo_reward.png" ] && cp "$run/report/grpo_reward.png" "$out/grpo_reward.png"
    tail -n 1 "$out/pipeline.json" 2> /dev/null | grep -q '^{' && tail -n 1 "$out/pipeline.json" > "$out/results.json"
    rm -f "$out/pipeline.json"
    return 0
}

cmd=("$python" -m foveate.cli train pipeline "$preset" -o "$run" --json)
[ "$limit" -gt 0 ] && cmd=(timeout --signal=INT --kill-after=60 "$limit" "${cmd[@]}")
echo "running: ${cmd[*]}" | tee -a "$out/pipeline.log" >&2
# stdout (the --json line) to pipeline.json, stderr to the terminal and the log; at the time limit, SIGINT
# as a terminal's Ctrl-C: the pipeline stops its workers and keeps what it finished
set +e
{ "${cmd[@]}" 2>&1 1>&3 3>&- | tee -a "$out/pipeline.log" >&2; } 3> "$out/pipeline.json"
status=${PIPESTATUS[0]}
set -e
collect
case "$status" in
    0) echo "done: $out/results.json" >&2 ;;
    124) echo "stopped at the time limit (${limit} s): run the same command again to resume $run" >&2 ;;
    *) echo "the pipeline failed (exit $status): see $out/pipeline.log" >&2 ;;
esac
exit "$status"
