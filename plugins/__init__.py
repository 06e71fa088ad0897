"""Bundled sources, loaded through the `wallboard` entry-point group like third-party plugins."""
