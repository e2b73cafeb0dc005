"""The report of a run, built from its results and predictions files alone (no jax is imported here):

    rows        the report's tables as rows          markdown   report.md rendered from the rows
    build       build_report: every file, written in one rename; results_table; load_benchmarks
    stats       means, spreads, the paired bootstrap  claims     the seed study's findings and deviations
    efficiency  learning curves, steps and FLOPs to a target, shared cost, sample efficiency
    plots       the figures (PDF, SVG, 300-dpi PNG)   latex      booktabs tables; summary  the XTREME-style table
    published   the papers' reference numbers
"""
from repro.report.build import ReportError, build_report, load_benchmarks, results_table

__all__ = ["ReportError", "build_report", "load_benchmarks", "results_table"]
