#!/bin/sh
# Runs each fabric test in a fabric of its own, with a time limit so that a
# hang is a failure and not a stuck CI job.
out=$1; shift
failed=0
# Registrations count against RLIMIT_MEMLOCK, as on MPSS 4: all the room we may
# have (the tests size their windows to fit it: check.h's test_mib).
ulimit -l "$(ulimit -H -l)" 2>/dev/null || true
for t in "$@"; do
	dir=$(mktemp -d "${TMPDIR:-/tmp}/scif-fabric-test.XXXXXX")
	# SCIF_TEST_WRAP: a command to run each test under (make test-valgrind).
	if SCIF_NET_FABRIC="$dir" timeout 120 $SCIF_TEST_WRAP "$out/$t"; then
		echo "ok - kernel/$t"
	else
		echo "not ok - kernel/$t"
		failed=1
	fi
	rm -rf "$dir"
done
exit $failed
