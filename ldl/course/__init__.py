"""The course machinery: running every notebook, checking the machine, recording claims.

- :mod:`ldl.course.execute`: ``python -m ldl.course execute-all`` (``make execute-all``);
- :mod:`ldl.course.readiness`: what this machine has (memory, data, weights, network);
- :mod:`ldl.course.report`: the metrics a notebook records (``report.record``) and the tests read;
- :mod:`ldl.course.run_report`: ``build/report.json`` and ``build/report.md`` of a whole run;
- :mod:`ldl.course.exercises`: the feedback functions of the notebooks' exercises;
- :mod:`ldl.course.reference`: tonight's run against the profile's kept reference;
- :mod:`ldl.course.claims`: the lessons' headline claims, and when each holds.

The submodules are imported where they are used: ``from ldl.course import report`` costs no
torch import, and the command line starts quickly.
"""

__all__ = ["claims", "exercises", "execute", "readiness", "reference", "report", "run_report"]

