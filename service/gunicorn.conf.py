"""gunicorn settings, from environment variables: ``gunicorn -c service/gunicorn.conf.py``.

RNNLM_BIND (default 0.0.0.0:8000), RNNLM_WORKERS (default 2), RNNLM_THREADS (default 2) and
RNNLM_LOG_LEVEL (default INFO); the service's own variables are read by service.config.
"""
import os

# One BLAS thread per worker. Sampling is a matrix-vector product per word: far too small to
# gain from several BLAS threads, while N workers x M cores' worth of BLAS threads would fight
# over the CPU, and a thread pool started in the master would be forked into every worker.
# OpenBLAS/MKL read these variables once, when NumPy is first imported; this file runs before
# the app (and so NumPy) is loaded, so they must be set here, at the top, and not later.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import sys  # noqa: E402

from service.config import ConfigError, env_int, env_log_level, env_str  # noqa: E402  (no NumPy)

try:
    bind = [env_str(os.environ, "RNNLM_BIND", "0.0.0.0:8000")]
    workers = env_int(os.environ, "RNNLM_WORKERS", 2, minimum=1)
    # threads > 1 selects the gthread worker: /health answers while a worker is generating, and
    # two generations overlap in one worker (NumPy releases the GIL in its products)
    threads = env_int(os.environ, "RNNLM_THREADS", 2, minimum=1)
    loglevel = env_log_level(os.environ, "RNNLM_LOG_LEVEL", "INFO").lower()
except ConfigError as _exc:
    # sys.exit gets past gunicorn's `except Exception` around this file, which adds a traceback
    sys.exit(f"rnnlm service cannot start: bad configuration: {_exc}")

wsgi_app = "service.wsgi:app"
# load the model once in the master, before forking: a bad model file stops gunicorn with one
# error line instead of every worker failing to boot, and workers share the model's memory pages
preload_app = True
timeout = 30
graceful_timeout = 10
accesslog = "-"  # stdout
errorlog = "-"  # stderr
# the default format plus the worker's pid and the request time in microseconds
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" pid=%(p)s %(D)sus'
# gunicorn >= 25 opens a control socket in $HOME or $XDG_RUNTIME_DIR by default; the service
# does not use it, and two instances on one host would fight over the same path
control_socket_disable = True
