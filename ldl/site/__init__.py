"""The course website: executed lessons, the claims dashboard, the crosswalk, the API reference.

- :mod:`ldl.site.build`: ``make site`` (``python -m ldl.site``), Sphinx with MyST-NB;
- :mod:`ldl.site.source`: the website's source folder, staged from ``build/`` and the repository;
- :mod:`ldl.site.dashboard`: the claims dashboard page, from ``build/report.json``.

The submodules are imported where they are used, so ``import ldl.site`` loads no Sphinx.
"""

__all__ = ["build", "dashboard", "source"]
