#!/usr/bin/env bash
# How often the simulator catches each planted bug: for every bug, the share of seeds in a sweep
# whose run reports a violation (or a non-linearizable history). Each bug runs in the workload
# that exercises it; everything else is the sweep's default (swarm: each seed draws its faults).
#   bench/catch_rates.sh [SYNOD] [SEEDS] [extra sim flags...]
#   bench/catch_rates.sh build/synod 1..1000
#   bench/catch_rates.sh old/synod 1..1000 --faults all     # a fixed mix instead of the swarm
set -u
synod="${1:-build/synod}"
seeds="${2:-1..1000}"
shift 2 || true
extra=("$@")
bugs=(
  "vote-without-log-check|"
  "vote-before-persist|"
  "read-index-without-quorum|"
  "commit-previous-term|"
  "unfenced-lock|--workload lock"
  "extra-permit|--workload semaphore"
  "lessor-keeps-deadlines|--workload lock"
  "watch-resume-gap|--watchers 2"
  "watch-resume-duplicate|--watchers 2"
  "skip-phase1-on-round-change|--engine multipaxos"
  "answer-before-persist|--engine multipaxos"
  "ignore-promised-values|--engine multipaxos"
)
printf "%-26s %s\n" "bug" "seeds caught (of $seeds)"
for entry in "${bugs[@]}"; do
  bug="${entry%%|*}"
  # shellcheck disable=SC2206
  opts=(${entry#*|})
  line=$("$synod" sim --seeds "$seeds" --bug "$bug" "${opts[@]}" "${extra[@]}" 2>/dev/null |
    grep -a "^swept seeds")
  failed=$(sed -E 's/.* ([0-9]+) failed/\1/' <<<"$line")
  printf "%-26s %s\n" "$bug" "$failed"
done
