"""Tests of pipeline/feeds/."""
