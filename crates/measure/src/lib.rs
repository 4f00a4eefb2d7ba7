//! Latency histograms, summaries, SLO checks, Prometheus export and reports.
