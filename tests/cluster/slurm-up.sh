#!/usr/bin/env bash
# Bring up a single-node Slurm (slurmctld + slurmd + munge) in a scratch folder, with one fake GPU, for
# `make test-cluster`. Needs root and Debian's packages slurmctld slurmd slurm-client munge (installed here if
# missing). Prints the SLURM_CONF to export; tests/cluster/slurm-down.sh stops it. Facts: ../shared/notes/slurm-single-node.md
set -euo pipefail
DIR=${1:?usage: slurm-up.sh SCRATCH_DIR}
mkdir -p "$DIR"/{state,spool,log}
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurmctld slurmd slurm-client munge >"$DIR/log/apt.log" 2>&1
fi
HOST=$(hostname -s)
MEM=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) * 9 / 10 / 1024 ))   # MB that jobs may ask for
cat >"$DIR/slurm.conf" <<CONF
ClusterName=ci
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
ReturnToService=2
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$MEM Gres=gpu:1 State=UNKNOWN
PartitionName=gpu Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
echo "NodeName=$HOST Name=gpu Count=1 File=/dev/null" >"$DIR/gres.conf"
mkdir -p /run/munge /var/log/munge /var/lib/munge /etc/munge
[ -s /etc/munge/munge.key ] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; chmod 400 /etc/munge/munge.key; }
pgrep -x munged >/dev/null || munged --force
export SLURM_CONF="$DIR/slurm.conf"
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for _ in $(seq 60); do
  if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed)'; then echo "SLURM_CONF=$SLURM_CONF"; exit 0; fi
  sleep 1
done
echo "slurm did not come up; logs in $DIR/log" >&2; sinfo >&2 || true; exit 1
