"""`python -m benchmarks.pipeline`: see the package's docstring."""

from benchmarks.pipeline.report import main

raise SystemExit(main())
