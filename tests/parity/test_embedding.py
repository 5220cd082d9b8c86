"""R embedded in a Python process started through a relative path.

reticulate (1.47) attaches R to the running Python by comparing the path the
process was started with (glibc's dladdr() reports argv[0] for the
executable's symbols) against Py_GetProgramFullPath() (src/python.cpp,
main_process_python_info_unix()); when the start path is relative the two
differ and it takes the executable for libpython and dlopen()s it, which
fails. It does so before consulting RETICULATE_PYTHON or use_python()
(R/config.R, py_discover_config()). The package cannot change what reticulate reads
there, so it turns the failure into a clear error that says how to start
Python instead of reticulate's "cannot dynamically load executable".
(This suite itself restarts through the absolute path: see conftest.py.)
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CODE = r'''
import os, sys
import rpy2.robjects as ro
out = ro.r("""tryCatch({rmsprop::optimizer_rmsprop(); "ok"},
              error = function(e) paste(class(e)[1], conditionMessage(e)))""")[0]
sys.stdout.write("RESULT:" + out)  # rpy2 prints its own notices first
sys.stdout.flush()
os._exit(0)
'''


def test_relative_start_under_rpy2_works_or_says_how_to_start():
    relative = os.path.relpath(sys.executable, ROOT)
    assert not os.path.isabs(relative)
    result = subprocess.run([relative, "-c", CODE], cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    assert "RESULT:" in result.stdout, result.stdout + result.stderr
    out = result.stdout.split("RESULT:", 1)[1]
    if out != "ok":  # reticulate may learn to attach; until then, a clear error
        assert out.startswith("rmsprop_python_error"), out
        assert f"started through the relative path {relative}" in out, out
        assert str(ROOT / relative) in out, out
        assert "cannot dynamically load" not in out, out
