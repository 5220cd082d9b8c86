"""Embeds R (through rpy2) in the pytest process, with the rmsprop R package loaded.

R's reticulate then runs on this very Python interpreter, so an optimizer made
in R is the same kind of Python object as one made here, and values can be
compared bit for bit.

Exit: with a current reticulate, the interpreter can hang at exit inside rpy2's
atexit handler (R's exit finalizers). Once pytest has printed its summary we
therefore leave with os._exit and pytest's own exit status.
"""

import os
import sys
import warnings

import pytest


with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import rpy2.rinterface_lib.callbacks as callbacks
    # rpy2 prints a banner about an old reticulate bug (fixed in >= 1.31,
    # which setup installs); R's own warnings go to the captured log instead.
    callbacks.consolewrite_warnerror = lambda text: sys.stderr.write(text)
    import rpy2.robjects as robjects

_exit_status = {"code": None}


def pytest_configure(config):
    # reticulate, embedded in this process, finds the running interpreter
    # through the path the process was started with; a relative one
    # (`.venv/bin/python -m pytest`) makes it try to load the executable as a
    # library and fail. Start again through the absolute path, before R is
    # used, with pytest's output capture undone so the new run can print.
    if not os.path.isabs(sys.orig_argv[0]):
        capture = config.pluginmanager.getplugin("capturemanager")
        if capture is not None:
            capture.stop_global_capturing()
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, [sys.executable] + sys.orig_argv[1:])


def pytest_sessionfinish(session, exitstatus):
    _exit_status["code"] = int(exitstatus)


def pytest_unconfigure(config):
    code = _exit_status["code"]
    if code is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


@pytest.fixture(scope="session")
def r():
    """Evaluate R code in the embedded R session (rmsprop attached)."""
    robjects.r("suppressPackageStartupMessages(library(rmsprop))")
    return robjects.r


@pytest.fixture(scope="session")
def from_r(r):
    """from_r("expr") -> the Python object an R expression evaluates to."""
    import __main__

    def fetch(expression):
        r(f"reticulate::py_set_attr(reticulate::import_main(convert = FALSE), '_from_r', "
          f"({expression}))")
        value = getattr(__main__, "_from_r")
        delattr(__main__, "_from_r")
        return value
    return fetch


@pytest.fixture(scope="session")
def to_r(r):
    """to_r("name", python_object): bind a Python object to an R variable as is."""
    import __main__

    def bind(name, value):
        __main__._to_r = value
        r(f"{name} <- reticulate::py_get_attr(reticulate::import_main(), '_to_r')")
        del __main__._to_r
    return bind
