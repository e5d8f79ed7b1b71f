"""The probe suite: the capture tried as a hostile environment would (issue 11).

Each probe arms a fault of the bundled exchange (or of the disk, S3, the clock, the operator)
and checks that the burst ends on time with every file final, and that the fault is named: a
clear message, a counter in the summary, a non-zero exit where nothing was captured. The
capture as a process of its own: orderbook_pipeline_tests/cli_capture.py.
"""

from __future__ import annotations

from orderbook_pipeline_tests.capture.conftest import simulator  # noqa: F401 (fixture)
