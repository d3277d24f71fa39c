"""Tests of pipeline/content/."""
