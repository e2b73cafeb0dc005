"""The report of a run, built from its results files alone (no jax is imported here):

    rows       the report's tables as rows         markdown   report.md rendered from the rows
    build      build_report: every file, written in one rename; results_table; load_benchmarks
    claims     the seed study's claims, checked    stats      means, spreads and intervals
    plots      the report's figures                published  the papers' reference numbers
"""
from repro.report.build import ReportError, build_report, load_benchmarks, results_table

__all__ = ["ReportError", "build_report", "load_benchmarks", "results_table"]
