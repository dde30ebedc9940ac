# shellcheck shell=bash
# .ci/slurm.sh - start a throw-away single-node Slurm on localhost for the
# integration tests in tests/slurm_local.rs, and stop it when CI is done.
#
# SOURCE this file from .ci/run (bash); do not execute it, because it changes
# the calling shell:
#
#     # in .ci/run, before `cargo test`:
#     source "$(dirname "${BASH_SOURCE[0]}")/slurm.sh"
#
# What it does to the calling shell:
# - installs Slurm and munge from Debian's packages unless they are already
#   there, and starts munged, slurmctld and slurmd (all state under
#   $SLURM_LOCAL_DIR, default /tmp/slurm-local; nothing in /etc is changed);
# - exports SLURM_CONF, so sbatch/squeue/scontrol reach that cluster;
# - exports SWEEP_REQUIRE_SLURM=1, so tests/slurm_local.rs fails instead of
#   skipping when it cannot use Slurm;
# - adds an EXIT trap that stops the cluster (after any EXIT trap already set,
#   which keeps working).
# It needs root and apt (see ../shared/notes/slurm.md). It returns non-zero if
# the cluster cannot be started; set SWEEP_SKIP_SLURM=1 to skip all of this, in
# which case the Slurm tests print why they skip and pass.
#
# The helper script lives next to the repository, in ../shared/tools/ relative
# to the repository root; SLURM_LOCAL_SH overrides its path.

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    echo ".ci/slurm.sh must be sourced (source .ci/slurm.sh), not executed" >&2
    exit 2
fi

if [[ ${SWEEP_SKIP_SLURM:-0} == 1 ]]; then
    echo "[ci/slurm] SWEEP_SKIP_SLURM=1: not starting Slurm; the Slurm tests will skip" >&2
    return 0
fi

_sweep_repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SWEEP_SLURM_LOCAL_SH=${SLURM_LOCAL_SH:-$_sweep_repo_root/../shared/tools/slurm-local.sh}
unset _sweep_repo_root
if [[ ! -f $SWEEP_SLURM_LOCAL_SH ]]; then
    echo "[ci/slurm] $SWEEP_SLURM_LOCAL_SH not found; set SLURM_LOCAL_SH to slurm-local.sh, or SWEEP_SKIP_SLURM=1" >&2
    return 1
fi

# Installing runs apt-get update, which takes seconds; skip it when the
# programs are already there (a warm CI image, or a second run).
# (`command -v a b` succeeds if either exists, hence one check per program.)
_sweep_have_slurm=1
for _sweep_prog in slurmctld slurmd sbatch munged; do
    command -v "$_sweep_prog" >/dev/null || _sweep_have_slurm=0
done
if ((_sweep_have_slurm == 0)); then
    bash "$SWEEP_SLURM_LOCAL_SH" install || {
        echo "[ci/slurm] installing Slurm failed" >&2
        return 1
    }
fi
unset _sweep_have_slurm _sweep_prog

_sweep_slurm_stop() {
    bash "$SWEEP_SLURM_LOCAL_SH" stop || echo "[ci/slurm] stopping Slurm failed" >&2
}

# Chain onto an existing EXIT trap instead of replacing it. `trap -p EXIT`
# prints `trap -- 'COMMAND' EXIT`, quoted for reuse, so eval splits it safely.
eval "_sweep_prev_trap=($(trap -p EXIT))"
# shellcheck disable=SC2154  # set by the eval above
if ((${#_sweep_prev_trap[@]} == 4)); then
    trap "_sweep_slurm_stop; ${_sweep_prev_trap[2]}" EXIT
else
    trap _sweep_slurm_stop EXIT
fi
unset _sweep_prev_trap

# `start` stops whatever an earlier, killed run left in the same folder.
bash "$SWEEP_SLURM_LOCAL_SH" start || {
    echo "[ci/slurm] starting Slurm failed; logs are in ${SLURM_LOCAL_DIR:-/tmp/slurm-local}/log" >&2
    return 1
}
eval "$(bash "$SWEEP_SLURM_LOCAL_SH" env)"
export SLURM_CONF
export SWEEP_REQUIRE_SLURM=1
echo "[ci/slurm] local Slurm is up; SLURM_CONF=$SLURM_CONF" >&2
