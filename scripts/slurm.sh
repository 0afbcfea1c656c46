#!/usr/bin/env bash
# A private one-node Slurm cluster on this machine, for running main's steps as Slurm jobs (Debian's slurmctld,
# slurmd and munge packages).
#   scripts/slurm.sh start DIR [PORT]   write DIR/slurm.conf for this host's CPUs and memory (partition `debug`),
#                                       start munged, slurmctld and slurmd on 127.0.0.1 (ports PORT and PORT+1),
#                                       wait until the node is idle; print the line SLURM_CONF=DIR/slurm.conf
#   scripts/slurm.sh stop DIR           stop them
# Everything lives in DIR (its own munge key and socket, state, logs, pids): /etc/slurm and a system munged are
# left alone. Slurm's clients (sinfo, sbatch, ...) find this cluster through SLURM_CONF=DIR/slurm.conf.
# Runs as root (slurmd starts jobs as their user); as another user it asks sudo.
set -euo pipefail
cmd=${1:?usage: $0 start|stop DIR [PORT]}
dir=$(realpath -m "${2:?usage: $0 start|stop DIR [PORT]}")
port=${3:-6817}
if [[ $(id -u) != 0 ]]; then exec sudo "$0" "$@"; fi
for tool in munged slurmctld slurmd sinfo; do
  if ! command -v "$tool" >/dev/null && [[ ! -x /usr/sbin/$tool ]]; then
    echo "error: Slurm is not installed (Debian: apt-get install slurmctld slurmd munge)" >&2
    exit 2
  fi
done
export PATH="$PATH:/usr/sbin" SLURM_CONF="$dir/slurm.conf"
stop_pid() {  # stop the daemon whose pid is in $1, waiting up to 20 s
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || { rm -f "$1"; return 0; }
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$1"
}

case "$cmd" in
  start)
    mkdir -p "$dir"/{munge,state,spool,log}
    chmod 755 "$dir" "$dir/munge"
    if [[ ! -s "$dir/munge/munge.key" ]]; then
      (umask 077; head -c 128 /dev/urandom > "$dir/munge/munge.key")
    fi
    node=$(slurmd -C | head -1)  # NodeName=<host> CPUs=... RealMemory=... as slurmd sees this machine
    host=${node#NodeName=}; host=${host%% *}
    cat > "$dir/slurm.conf" <<EOF
# written by scripts/slurm.sh: one node, this machine
ClusterName=distill
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
MinJobAge=3600
KillWait=30
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    sed -i -E 's/ UpTime=[^ ]*//' "$dir/slurm.conf"
    if ! munge -n --socket="$dir/munge/munge.socket" >/dev/null 2>&1; then
      munged --force --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed"
    fi
    [[ -s "$dir/slurmctld.pid" ]] && kill -0 "$(cat "$dir/slurmctld.pid")" 2>/dev/null || slurmctld -f "$dir/slurm.conf"
    [[ -s "$dir/slurmd.pid" ]] && kill -0 "$(cat "$dir/slurmd.pid")" 2>/dev/null || slurmd -f "$dir/slurm.conf"
    for _ in $(seq 120); do  # up to 60 s
      state=$(sinfo -h -n "$host" -o %T 2>/dev/null || true)
      [[ "$state" == idle ]] && break
      sleep 0.5
    done
    if [[ "$state" != idle ]]; then
      echo "error: node $host is ${state:-unreachable}, not idle; see $dir/log" >&2
      exit 1
    fi
    echo "SLURM_CONF=$dir/slurm.conf"
    ;;
  stop)
    stop_pid "$dir/slurmd.pid"
    stop_pid "$dir/slurmctld.pid"
    stop_pid "$dir/munge/munged.pid"
    ;;
  *)
    echo "error: unknown command $cmd (start or stop)" >&2
    exit 2
    ;;
esac
