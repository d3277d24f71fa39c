"""The test suite: folders mirror pipeline/; loopback fakes in fakes/, data in data/."""
