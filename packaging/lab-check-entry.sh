#!/bin/sh
# The lab image's entry point: lab up, lab check (extra arguments passed on), lab down.
set -u
blockprobe lab up || exit 2
blockprobe lab check --report /out/lab-check.json --junit /out/lab-check.xml "$@"
status=$?
blockprobe lab down
exit $status
