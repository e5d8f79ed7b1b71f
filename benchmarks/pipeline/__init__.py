"""Pipeline benchmark: the whole stack, as `make run` runs it, for M minutes, measured from outside.

    python -m benchmarks.pipeline --symbols 100 --minutes 20 --lanes l2,diffs
    python -m benchmarks.pipeline --symbols 50 --minutes 15 --lanes all --json /tmp/b.json
    python -m benchmarks.pipeline --symbols 2 --minutes 1.5 --interval 30 \\
        --set capture.file_seconds=10 --keep /tmp/obp-pipeline     # a tiny run, kept

The issue's targets: no client drop and no stall resync; bronze -> silver, gap windows, marts
and checks within 2 x the refresh interval (p95) for the hour in progress and within 5 minutes
of an hour's end once it closes; orchestration under half a core; a bounded run queue;
DAGSTER_HOME growing by at most 1 MB per stream-day; the UI's catalog and partition-status
queries under a second; Ctrl-C stopping everything within 10 s without a failed run.

Method. Four processes, each in a session of its own as scripts/run.sh starts them, on
127.0.0.1 with free ports, in a fresh OBP_HOME (DAGSTER_HOME under it): the bundled exchange,
`dagster code-server start`, `dagster-daemon run` and `dagster-webserver`, with the repository's
orderbook_pipeline.yaml and OBP__ overrides (symbols, lanes, sim port, refresh interval). The
sensors then run the product: overlapping capture bursts and hourly refreshes, each in a run
worker the code server starts (a `multiprocessing` child; its run is found by its pid). Every
process carries a marker variable in its environment, so none is missed or left behind.

While it runs: every 2 s the CPU time (utime+stime) and RSS of every marked process, per
component (run workers by their run's job); every 15 s the bronze files that landed (name and
mtime, directories re-listed only when their mtime changed) and the silver `_parts.json` states;
every 30 s the run queue, runs by job and status, DAGSTER_HOME's size and event-log rows, and the
latency of the UI's asset catalog and partition-status GraphQL queries. Bronze is read only at
the end. Then the stop of scripts/run.sh on Ctrl-C: SIGINT to each process group, SIGTERM to
whatever is left 7 s later, SIGKILL 1 s after that, timing until every marked process is gone.

Freshness of a bronze file: from its landing (mtime) to the first `_parts.json` state (its
mtime) that holds it whole (its recorded largest time below the state's cut); for gap windows,
marts and checks, to the first event of a refresh of its hour whose `judged_until` is past the
file's largest time. Files that landed within 2 x the interval of the end are not judged (their
lag could not be seen up to the target); older files never consumed count with their age, a
lower bound. Client drops: the exchange's sent log against the union of every burst's bronze
diff lane, per symbol, over the span the bursts were reading.
"""
