"""Tests of pipeline/sending/."""
