"""Tests of pipeline/events/."""
