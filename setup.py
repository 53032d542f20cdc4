"""Kept for tools that still look for setup.py; the package metadata lives in pyproject.toml."""

from setuptools import setup

setup()
