"""Tests of pipeline/preflight/."""
