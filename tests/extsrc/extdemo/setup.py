import os

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
INCLUDE = [HERE]  # add.h: the test fixture copies it into the build tree

setup(
    name="extdemo",
    version="1.0",
    packages=["extdemo"],
    ext_modules=[
        Extension("extdemo._single", ["src/_single.c"], include_dirs=INCLUDE),
        Extension("extdemo._multi", ["src/_multi.c"], include_dirs=INCLUDE),
        Extension("extdemo.both", ["src/both.c"], include_dirs=INCLUDE),
    ],
)
