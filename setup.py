"""execnet-bridge: remote execnet interpreters import modules installed only on the master."""
import io
import os

from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))


def version():
    with io.open(os.path.join(HERE, "bridge", "__init__.py"), encoding="utf-8") as stream:
        for line in stream:
            if line.startswith("__version__"):
                return line.split("=")[1].strip().strip('"')
    raise RuntimeError("no __version__ in bridge/__init__.py")


setup(
    name="execnet-bridge",
    version=version(),
    description="Remote execnet interpreters import modules that only the master has",
    long_description=io.open(os.path.join(HERE, "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
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
        "Programming Language :: Python :: 2.7",
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: MIT License",
        "Topic :: Software Development :: Libraries",
        "Topic :: System :: Distributed Computing",
    ],
)
