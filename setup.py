"""execnet-bridge: remote execnet interpreters import modules installed only on the master."""
import io
import os

import setuptools
from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))


def version():
    with io.open(os.path.join(HERE, "bridge", "__init__.py"), encoding="utf-8") as stream:
        for line in stream:
            if line.startswith("__version__"):
                return line.split("=")[1].strip().strip('"')
    raise RuntimeError("no __version__ in bridge/__init__.py")


def license_metadata():
    # setuptools 77 writes an SPDX License-Expression (PEP 639) and deprecates the
    # License classifiers; the older ones, the only ones on 2.7 and 3.6, know only the
    # free-text License field and would warn about an unknown option.
    if int(setuptools.__version__.split(".")[0]) >= 77:
        return {"license_expression": "MIT"}
    return {"license": "MIT"}


setup(
    name="execnet-bridge",
    version=version(),
    description="Remote execnet interpreters import modules that only the master has",
    long_description=io.open(os.path.join(HERE, "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    # The slave world lives in the top-level compat/ folder; installed, it is
    # bridge.compat, so no generic top-level name lands in site-packages.
    packages=["bridge", "bridge.compat"],
    package_dir={"bridge": "bridge", "bridge.compat": "compat"},
    python_requires=">=2.7, !=3.0.*, !=3.1.*, !=3.2.*, !=3.3.*, !=3.4.*, !=3.5.*",
    install_requires=[
        "execnet>=1.9",
        "packaging>=20",
        "six>=1.12",
    ],
    classifiers=[
        "Programming Language :: Python :: 2",
        "Programming Language :: Python :: 2.7",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.6",
        "Programming Language :: Python :: 3.7",
        "Programming Language :: Python :: 3.8",
        "Programming Language :: Python :: 3.9",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Programming Language :: Python :: 3.14",
        "Programming Language :: Python :: 3.15",
        "Programming Language :: Python :: Implementation :: CPython",
        "Programming Language :: Python :: Implementation :: PyPy",
        "Topic :: Software Development :: Libraries",
        "Topic :: System :: Distributed Computing",
    ],
    **license_metadata()
)
