"""Settings for every test run: notebooks run in smoke mode and figures render off-screen."""
import os

os.environ.setdefault("CNNLIB_SMOKE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
