#!/usr/bin/env bash
# A real, throwaway one-node SLURM cluster on this machine, to run lhcflow through profiles/slurm with
# snakemake-executor-plugin-slurm exactly as on a site (CI does; so can a developer).
# Debian/Ubuntu, as root, no systemd needed (the daemons are started directly).
#
#   bash .ci/slurm.sh up       install slurm-wlm + munge if missing, configure, start, smoke-test
#   bash .ci/slurm.sh status   daemons, node, partition, queue
#   bash .ci/slurm.sh down     cancel what is still queued, stop the daemons (by pidfile)
#
# `up` is idempotent: a healthy cluster with the same configuration is left running; a changed
# configuration (or a dead daemon) restarts it from a clean state.
#
# The cluster, sized from the machine:
#   node      this host, CPUs = nproc, RealMemory = physical memory less 1 GiB for the OS; no GPU
#             (no Gres), so a job that asks for `gpu` is rejected by sbatch here, as on a CPU-only site
#   partition `cpu`, the default partition, no time limit
#   CPUs and memory are both consumable (CR_CPU_Memory): like `--cores N` locally, at most N
#             single-CPU jobs run at once, and every job's --mem is checked against the node
#   no accounting (no slurmdbd): `sacct` and `sacctmgr` do not work, so the Snakemake SLURM executor
#             needs --slurm-status-command squeue and --slurm-no-account (profiles/slurm-ci)
#   MinJobAge 900 s: finished jobs stay visible to `squeue --states=all` that long. The executor
#             polls at most every 180 s and falls back to sacct when MinJobAge < 3 x its first
#             poll delay; a job that left squeue before it was polled would look "running" forever.
#   job completion records (jobcomp/filetxt) in /var/log/slurm/jobcomp.log: without accounting the
#             only history of finished jobs; CI reads it to prove each job ran through sbatch.
set -euo pipefail

PARTITION=cpu                     # profiles/slurm-ci/partitions.yaml names it too
CONF=/etc/slurm/slurm.conf
LOGDIR=/var/log/slurm
JOBCOMP=$LOGDIR/jobcomp.log       # .ci/run reads it
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
MUNGE_PID=/run/munge/munged.pid
MUNGE_OURS=/run/munge/started-by-lhcflow

running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop() {  # stop the daemon whose pidfile is $1 and wait until it has exited
  running "$1" || return 0
  local pid; pid=$(cat "$1")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -9 "$pid" 2>/dev/null || true
}

write_conf() {  # the configuration for this machine, on stdout
  local host cpus mem
  host=$(hostname -s)
  cpus=$(nproc)
  mem=$(( $(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo) - 1024 ))
  cat <<EOF
# Written by lhcflow's .ci/slurm.sh: a one-node test cluster (no accounting, no GPU).
ClusterName=lhcflow
SlurmctldHost=${host}
SlurmUser=slurm
AuthType=auth/munge
MpiDefault=none
MailProg=/bin/true
# No cgroups without systemd: plain process tracking, no CPU binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
# A job without --mem gets its share of memory per CPU, not the whole node.
DefMemPerCPU=$(( mem / cpus ))
ReturnToService=2
MinJobAge=900
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=${CTLD_PID}
SlurmdPidFile=${SLURMD_PID}
SlurmctldLogFile=${LOGDIR}/slurmctld.log
SlurmdLogFile=${LOGDIR}/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=${JOBCOMP}
NodeName=${host} CPUs=${cpus} RealMemory=${mem} State=UNKNOWN
PartitionName=${PARTITION} Nodes=${host} Default=YES MaxTime=INFINITE State=UP
EOF
}

install() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
    && command -v munged >/dev/null && return 0
  echo "installing slurm-wlm and munge"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # The packages try to start their services; without systemd that fails harmlessly.
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null 2> >(grep -v "^debconf: " >&2)
}

start_munge() {
  mkdir -p /run/munge && chown munge:munge /run/munge
  [ -s /etc/munge/munge.key ] || runuser -u munge -- mungekey --create
  # Left running by `down` if it was running before (it may serve something else).
  running "$MUNGE_PID" || { runuser -u munge -- /usr/sbin/munged; touch "$MUNGE_OURS"; }
  munge -n | unmunge >/dev/null
}

healthy() {  # daemons up and the node taking jobs (idle, or busy with some: a running CI job stays)
  running "$CTLD_PID" && running "$SLURMD_PID" || return 1
  sinfo -h -p "$PARTITION" -o %t 2>/dev/null | grep -Eq '^(idle|mix|alloc|comp)$'
}

up() {
  install
  local host; host=$(hostname -s)
  # slurmctld and slurmd find each other by the host's name.
  getent hosts "$host" >/dev/null || echo "127.0.0.1 $host" >> /etc/hosts
  mkdir -p "$(dirname "$CONF")" /var/spool/slurmctld /var/spool/slurmd "$LOGDIR"
  chown slurm:slurm /var/spool/slurmctld "$LOGDIR"
  touch "$JOBCOMP" && chown slurm:slurm "$JOBCOMP"
  start_munge

  local new; new=$(write_conf)
  if [ -f "$CONF" ] && [ "$new" = "$(cat "$CONF")" ] && healthy; then
    echo "one-node SLURM already up: partition $PARTITION on $host"
    return 0
  fi
  # (Re)start from a clean state: an earlier cluster's saved state (another ClusterName, stale
  # jobs) stops slurmctld or would run old jobs.
  stop "$SLURMD_PID"; stop "$CTLD_PID"
  printf '%s\n' "$new" > "$CONF"
  rm -rf /var/spool/slurmctld/* /var/spool/slurmd/*
  /usr/sbin/slurmctld
  /usr/sbin/slurmd
  for _ in $(seq 60); do healthy && break; sleep 0.5; done
  # A node that was down on an earlier start comes back only when told.
  healthy || scontrol update nodename="$host" state=resume 2>/dev/null || true
  for _ in $(seq 20); do healthy && break; sleep 0.5; done
  if ! healthy; then
    echo "SLURM did not come up; see $LOGDIR/slurmctld.log and slurmd.log" >&2
    sinfo >&2 || true
    exit 1
  fi

  # Smoke test: one job through sbatch to completion.
  local jid out=/tmp/lhcflow-slurm-smoke.out
  jid=$(sbatch --parsable --job-name lhcflow-smoke --mem 100 -t 1 -o "$out" --wrap 'hostname')
  for _ in $(seq 120); do
    scontrol show job "$jid" 2>/dev/null | grep -q 'JobState=COMPLETED' && break
    sleep 0.5
  done
  scontrol show job "$jid" | grep -q 'JobState=COMPLETED' \
    || { echo "smoke-test job $jid did not complete:" >&2; scontrol show job "$jid" >&2; exit 1; }
  echo "one-node SLURM up: partition $PARTITION on $host ($(nproc) CPUs), smoke-test job ran on $(cat "$out")"
}

status() {
  local entry name pidfile
  for entry in "munged $MUNGE_PID" "slurmctld $CTLD_PID" "slurmd $SLURMD_PID"; do
    read -r name pidfile <<< "$entry"
    if running "$pidfile"; then echo "$name: running (pid $(cat "$pidfile"))"; else echo "$name: stopped"; fi
  done
  running "$CTLD_PID" || return 1
  sinfo -N -o '%N %P %T %c %m'   # node, partition, state, CPUs, memory (MB)
  squeue -o '%i %j %T %M %R'
}

down() {
  # Jobs still queued or running would outlive slurmd as orphaned job steps: cancel them first.
  if running "$CTLD_PID"; then scancel --user "$(id -un)" 2>/dev/null || true; sleep 1; fi
  stop "$SLURMD_PID"; stop "$CTLD_PID"
  if [ -e "$MUNGE_OURS" ]; then stop "$MUNGE_PID"; rm -f "$MUNGE_OURS"; fi
  echo "one-node SLURM down"
}

case ${1:-up} in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|status|down" >&2; exit 2 ;;
esac
