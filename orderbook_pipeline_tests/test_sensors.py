from __future__ import annotations

import dagster as dg

from orderbook_pipeline.jobs import capture_job
from orderbook_pipeline.sensors import capture_sensor


def test_capture_sensor_requests_a_run_when_none_is_active():
    with dg.instance_for_test() as instance:
        result = capture_sensor(dg.build_sensor_context(instance=instance))
        assert isinstance(result, dg.RunRequest)
        assert result.run_key.startswith("capture-")


def test_capture_sensor_skips_while_a_capture_run_is_active():
    with dg.instance_for_test() as instance:
        for status in (dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTED):
            run = instance.create_run_for_job(job_def=capture_job, status=status)
            result = capture_sensor(dg.build_sensor_context(instance=instance))
            assert isinstance(result, dg.SkipReason)
            assert run.run_id in result.skip_message
            instance.delete_run(run.run_id)
        finished = instance.create_run_for_job(
            job_def=capture_job, status=dg.DagsterRunStatus.SUCCESS
        )
        assert finished
        assert isinstance(capture_sensor(dg.build_sensor_context(instance=instance)), dg.RunRequest)
