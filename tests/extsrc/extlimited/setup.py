import os

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))

setup(
    name="extlimited",
    version="1.0",
    packages=["extlimited"],
    ext_modules=[
        Extension("extlimited._limited", ["src/_limited.c"],
                  include_dirs=[HERE],  # add.h, copied in by the test fixture
                  define_macros=[("Py_LIMITED_API", "0x03060000")], py_limited_api=True),
    ],
)
