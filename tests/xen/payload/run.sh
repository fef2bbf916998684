#!/bin/bash
# run.sh - Xen test host payload, started by hy-dom0-init in dom0 with the payload disk at /mnt.
#
# Runs run-guests.sh (which boots the guests listed in /mnt/guests; see its header) and starts it
# again, up to $PASSES times, if it died of a signal: under the nested L0, dom0 processes
# occasionally crash (bash segfaults have been seen mid-run). run-guests.sh skips the guests an
# earlier pass finished. The exit status is the last pass's.
set -u
PASSES=${PASSES:-3}
pass=1
while :; do
    rc=0
    bash /mnt/run-guests.sh || rc=$?
    if [ "$rc" -lt 128 ] || [ "$pass" -ge "$PASSES" ]; then
        exit "$rc"
    fi
    echo "HY-RUN: WARNING: run-guests.sh died (status $rc) in pass $pass; starting pass $((pass + 1))"
    pass=$((pass + 1))
done
