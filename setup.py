"""Packages for setuptools: every folder under services/, installed as lanesight.*.

Everything else about the project is in pyproject.toml; this file exists only because a
package list renamed through ``package-dir`` cannot be discovered from pyproject.toml.
"""

from setuptools import find_namespace_packages, setup

setup(
    packages=[
        "lanesight" + name.removeprefix("services")
        for name in find_namespace_packages(include=["services", "services.*"])
        if "__pycache__" not in name
    ]
)
