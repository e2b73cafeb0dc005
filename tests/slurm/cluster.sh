#!/usr/bin/env bash
# A real one-node SLURM cluster for tests/slurm/test_real_slurm.py (root; Debian/Ubuntu apt).
#   tests/slurm/cluster.sh start WORK   apt-installs slurm-wlm + munge if absent, writes WORK/slurm.conf and
#                                       starts munged, slurmctld and slurmd with their state, sockets, pid and
#                                       log files all under WORK; prints `export SLURM_CONF=...` for a shell
#   tests/slurm/cluster.sh stop WORK    stops exactly the daemons this script started (their pid files in WORK)
# No cgroups needed: proctrack/linuxproc, task/none. Ports default to 16817/16818 (XT_SLURM_PORT_BASE) so a
# site's own slurmctld/slurmd on 6817/6818 is left alone; munged listens on WORK/munge.socket, not the system's.
set -euo pipefail
cmd=${1:?usage: cluster.sh start|stop WORK}
work=${2:?usage: cluster.sh start|stop WORK}
mkdir -p "$work"
work=$(cd "$work" && pwd)
port=${XT_SLURM_PORT_BASE:-16817}

stop_pidfile() {   # stop the daemon whose pid file is $1, if it is still running, and wait for it to go
  local f=$1 pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$f"
}

if [ "$cmd" = stop ]; then
  stop_pidfile "$work/slurmd.pid"
  stop_pidfile "$work/slurmctld.pid"
  stop_pidfile "$work/munged.pid"
  exit 0
fi
[ "$cmd" = start ] || { echo "cluster.sh: unknown command '$cmd' (start|stop)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "cluster.sh: needs root (it starts slurmd and munged)" >&2; exit 2; }

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >"$work/apt.log" 2>&1 \
    || { echo "cluster.sh: apt-get install slurm-wlm munge failed (see $work/apt.log)" >&2; exit 1; }
fi

host=$(hostname -s)
cpus=$(nproc)
mem_mb=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
mkdir -p "$work/state" "$work/spool" "$work/log"
chmod 0700 "$work/state" "$work/spool"
if [ ! -f "$work/munge.key" ]; then
  dd if=/dev/urandom of="$work/munge.key" bs=1024 count=1 status=none
  chmod 0600 "$work/munge.key"
fi
cat >"$work/slurm.conf" <<EOF
ClusterName=xt-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$work/munge.socket
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
ReturnToService=2
MpiDefault=none
KillWait=30
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

munged --force --socket="$work/munge.socket" --key-file="$work/munge.key" --pid-file="$work/munged.pid" \
  --log-file="$work/log/munged.log" --seed-file="$work/munged.seed"
export SLURM_CONF=$work/slurm.conf
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for _ in $(seq 100); do
  if sinfo -h -o %T 2>/dev/null | grep -qx idle; then
    echo "export SLURM_CONF=$SLURM_CONF"
    exit 0
  fi
  sleep 0.2
done
echo "cluster.sh: the node did not come up idle in 20 s (logs in $work/log)" >&2
sinfo >&2 || true
exit 1
