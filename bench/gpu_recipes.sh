#!/usr/bin/env bash
# The GPU figures of docs/results.md (logged in docs/experiments.md), in one call of a lent GPU (a 15-minute lease, all told):
#   1. the recipe table: every recipe x 2 seeds at 63,488 images on the Quality protocol
#      (python -m bench.experiments.quality), all runs at once: the GPU idles between a small
#      net's kernels, so they share it well; their FIDs do not depend on sharing, their wall times do.
#   2. the equal-time GPU row: `quality` trained alone for the minutes left (at most 10), then scored.
# Usage, from the repo root: bench/gpu_recipes.sh FACES_ZIP RESULTS_DIR SECONDS [FIELD=VALUE ...]
#   SECONDS: the whole script's budget; FIELD=VALUE: the sweep's best trial, on the course preset.
# TABLE=0 skips the table. A device call lasts at most 10 minutes, so 10 minutes of training plus
# scoring take two calls: KEEP=DIR keeps the timed run there and a second call with the same KEEP
# continues it (the device keeps ignored files between calls while it is warm), scoring each time;
# MINUTES=M sets the timed run's minutes outright (SECONDS is then unused):
#   TABLE=0 KEEP=bench/results/keep-gpu MINUTES=6 bench/gpu_recipes.sh ZIP OUT1 0   # 6 minutes, scored
#   TABLE=0 KEEP=bench/results/keep-gpu MINUTES=4 bench/gpu_recipes.sh ZIP OUT2 0   # 10 in all, scored
# PY picks the interpreter (default python3); IMAGES the images per table run (default 63488);
# N the held-out images and samples per FID (default 2000); EXTRA more FIELD=VALUE for every
# table run. A dry run on a CPU:
#   PY=.venv/bin/python IMAGES=128 N=64 EXTRA=epoch_images=128 bench/gpu_recipes.sh "$FACEGAN_FACES" /tmp/g 100 lr_d=1e-4
set -u
FACES=$1 RES=$2 BUDGET=$3
shift 3
SWEEP=("$@")
PY=${PY:-python3}
IMAGES=${IMAGES:-63488}
START=$(date +%s)
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
mkdir -p "$RES/logs" "$RES/grids"
Q=("$PY" -m bench.experiments.quality --faces "$FACES" --skip-defaults --n "${N:-2000}")

# The split and the held-out features once, before the runs race to build them.
"${Q[@]}" --images 0 --out "$RES/warmup.json" >"$RES/logs/warmup.log" 2>&1

table_run() {  # LABEL IMAGE_SIZE PRESET [FIELD=VALUE ...]
    local label=$1 size=$2
    shift 2
    "${Q[@]}" --images "$IMAGES" --image-size "$size" --out "$RES/$label.json" --run "$label" "$@" keep_checkpoints=0 ${EXTRA:-} \
        >"$RES/logs/$label.log" 2>&1
}
if [ "${TABLE:-1}" != 0 ]; then
    for s in 0 1; do
        table_run "dcgan-paper-s$s" 64 course "seed=$s" &
        table_run "quality-s$s" 64 quality "seed=$s" &
        table_run "udacity32-s$s" 32 course arch=udacity conv_dim=32 "seed=$s" &
        table_run "keras128-s$s" 128 course arch=keras d_norm=none "seed=$s" &
        table_run "g2-s$s" 64 course g_steps=2 "seed=$s" &
        table_run "g5-s$s" 64 course g_steps=5 "seed=$s" &
        table_run "progressive-s$s" 64 course grow_from=8 "seed=$s" &
        [ ${#SWEEP[@]} -gt 0 ] && table_run "sweep-best-s$s" 64 course "${SWEEP[@]}" "seed=$s" &
    done
    wait
    echo "table done after $(($(date +%s) - START)) s"
fi

# The timed run alone: the minutes left after scoring (~90 s) are its budget, at most 10.
LEFT=$((BUDGET - ($(date +%s) - START) - 90))
MIN=${MINUTES:-$("$PY" -c "print(round(max(0.5, min(10, $LEFT / 60)), 2))")}
echo "timed quality run: $MIN minutes"
nvidia-smi --query-gpu=name,memory.used,utilization.gpu --format=csv >"$RES/logs/nvidia-smi.txt" 2>&1
KEPT=()
if [ -n "${KEEP:-}" ]; then
    KEPT=(--keep "$KEEP")
    [ -d "$KEEP/quality-gpu-s0" ] && KEPT+=(--resume "$KEEP")
fi
"${Q[@]}" "${KEPT[@]}" --images 100000000 --out "$RES/quality-gpu-s0.json" --run quality-gpu-s0 quality seed=0 "minutes=$MIN" \
    >"$RES/logs/quality-gpu-s0.log" 2>&1
cp bench/results/quality/*.png "$RES/grids/" 2>/dev/null
echo "all done after $(($(date +%s) - START)) s"
