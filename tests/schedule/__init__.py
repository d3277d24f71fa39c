"""Tests of pipeline/schedule/."""
