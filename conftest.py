"""Settings for every test run: chapter notebooks run in smoke mode (CNNLIB_SMOKE=1) unless told otherwise.

Kernels started by nbval inherit this environment, so nothing here may change how a notebook shows figures.
"""
import os

os.environ.setdefault("CNNLIB_SMOKE", "1")
