"""Delivery events from providers, normalized into one record."""
