"""Tests launch the dashboard with the benchmarks' launcher (bench/support.py): one launcher, two callers."""

from bench.support import CHROMIUM, CHROMIUM_ARGS, SAMPLE, Dashboard, free_port, running_dashboard, wait_until_healthy

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "SAMPLE", "Dashboard", "free_port", "running_dashboard", "wait_until_healthy"]
