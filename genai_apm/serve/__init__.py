"""Serving the outputs to people: SQL over the Parquet tables (query), the HTML dashboard
(report, report_data, report_svg) and quantiles merged from the latency histograms (rollups)."""
