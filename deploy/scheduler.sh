#!/bin/sh
# The compose stack's scheduler (trainer image): keeps a model published, then runs the
# periodic jobs on one loop, one job at a time.
#   every CONSUME_EVERY seconds: `recserve consume --once` (new events -> training data)
#   every SEGMENT_EVERY seconds: `recserve segment` (RFM segments -> Feast)
#   every BUILD_EVERY seconds:   `recserve build --data $RECSERVE_DATA` (features + new model;
#                                the API's model poller picks the new version up)
#   every PRECOMPUTE_EVERY s:    `recserve precompute` (in its quiet hours only: the most active
#                                users' lists into the shared cache tier, for the next peak)
# With no dataset at RECSERVE_DATA, a synthetic shop is generated there first (the demo).
# Locking: build, segment and `data rollback` each hold HOME/batch.lock (flock) while they run,
# so two of them never overlap, whether started here or by hand; the second exits 3 at once.
# A failed job is logged and retried: a failed or refused build after RETRY_EVERY seconds
# (it left the last good data and model in use), the others on their next turn. The loop
# never exits on its own; `recserve status` tells the last build's outcome.
set -u

: "${RECSERVE_DATA:=${RECSERVE_HOME:-/var/lib/recserve}/source/shop}"
: "${CONSUME_EVERY:=60}"
: "${SEGMENT_EVERY:=3600}"
: "${BUILD_EVERY:=86400}"
: "${RETRY_EVERY:=900}"
: "${PRECOMPUTE_EVERY:=3600}"

log() { printf '{"ts":"%s","level":"INFO","logger":"scheduler","msg":"%s"}\n' "$(date -u +%FT%T)" "$*"; }

run() {
    log "start: recserve $*"
    if recserve "$@"; then
        log "done: recserve $*"
    else
        rc=$?
        log "failed ($rc): recserve $*"
        return "$rc"
    fi
}

if [ ! -e "$RECSERVE_DATA" ]; then
    run generate --out "$(dirname "$RECSERVE_DATA")" --name "$(basename "$RECSERVE_DATA")"
fi
models="${RECSERVE_MODELS_DIR:-${RECSERVE_HOME:-/var/lib/recserve}/models}"
if [ ! -e "$models/CURRENT" ]; then
    run build --data "$RECSERVE_DATA"
fi
[ "${1:-}" = "--bootstrap" ] && exit 0

now() { date +%s; }
next_consume=0
next_segment=0
next_precompute=0
next_build=$(( $(now) + BUILD_EVERY ))
while :; do
    t=$(now)
    if [ "$t" -ge "$next_consume" ]; then run consume --once; next_consume=$(( t + CONSUME_EVERY )); fi
    if [ "$t" -ge "$next_segment" ]; then run segment; next_segment=$(( t + SEGMENT_EVERY )); fi
    if [ "$t" -ge "$next_precompute" ]; then run precompute; next_precompute=$(( t + PRECOMPUTE_EVERY )); fi
    if [ "$t" -ge "$next_build" ]; then
        if run build --data "$RECSERVE_DATA"; then
            next_build=$(( t + BUILD_EVERY ))
        else
            next_build=$(( t + RETRY_EVERY ))
        fi
    fi
    sleep 5
done
