"""Measuring: the timing loop, statistics, monitors, comparison, profiling, suites, fleets, reports."""
