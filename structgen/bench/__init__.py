"""Benchmarks: ``structgen bench masks|testsuite|generate|report``.

* :mod:`structgen.bench.maskbench`: the MaskBench method (compile, walk every
  test instance token by token, classify, time TTFM and TBM) in a worker
  process with time and memory limits, resumable.
* :mod:`structgen.bench.testsuite`: the JSON Schema Test Suite through the same walk.
* :mod:`structgen.bench.generate`: end-to-end constrained vs unconstrained generation.
* :mod:`structgen.bench.engines`: adapters for structgen, llguidance, xgrammar
  and outlines-core behind one interface.
* :mod:`structgen.bench.report`: tables, per-schema files, plot, machine info.

Command line: ``structgen bench ...`` or ``python -m structgen.bench ...``
(see ``benchmarks/README.md``).
"""

from __future__ import annotations

__all__ = ["run_masks", "run_testsuite"]


def run_masks(*args, **kwargs):
    from structgen.bench.maskbench import run_masks as _run

    return _run(*args, **kwargs)


def run_testsuite(*args, **kwargs):
    from structgen.bench.testsuite import run_testsuite as _run

    return _run(*args, **kwargs)
