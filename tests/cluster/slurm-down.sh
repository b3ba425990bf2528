#!/usr/bin/env bash
# Stop what tests/cluster/slurm-up.sh started in SCRATCH_DIR.
DIR=${1:?usage: slurm-down.sh SCRATCH_DIR}
for f in slurmd slurmctld; do [ -f "$DIR/$f.pid" ] && kill "$(cat "$DIR/$f.pid")" 2>/dev/null; done
pkill -x munged 2>/dev/null || true
exit 0
