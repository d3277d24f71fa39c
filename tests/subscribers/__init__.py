"""Tests of pipeline/subscribers/."""
