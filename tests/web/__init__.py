"""Tests of pipeline/web/."""
