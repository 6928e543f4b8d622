"""gunicorn settings, from environment variables: ``gunicorn -c service/gunicorn.conf.py``.

Reload: ``kill -HUP <master pid>`` loads the model file again (see ``on_reload``).

RNNLM_BIND (default 0.0.0.0:8000), RNNLM_METRICS_BIND (unset), RNNLM_WORKERS (default: one per usable core),
RNNLM_THREADS (default: the engine's batch and queue places, RNNLM_MAX_BATCH + RNNLM_MAX_QUEUE,
plus 8) and RNNLM_LOG_LEVEL (default INFO); the service's own variables are read by service.config.

Metrics: every worker keeps its own counters, so prometheus-client runs in multiprocess mode:
PROMETHEUS_MULTIPROC_DIR is set here, before the app (and prometheus_client) is loaded, to a
fresh temporary folder where each process writes its values; /metrics adds them up, whichever
worker answers. ``child_exit`` marks a dead worker's files (and drops its in-flight count); the
folder is removed when the master exits.
"""
import os
import shutil
import tempfile

# One BLAS thread per worker. A generation step is one product of a few dozen rows with V: too
# small to gain from several BLAS threads, while N workers x M cores' worth of BLAS threads would
# fight over the CPU, and a thread pool started in the master would be forked into every worker.
# OpenBLAS/MKL read these variables once, when NumPy is first imported; this file runs before
# the app (and so NumPy) is loaded, so they must be set here, at the top, and not later.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import atexit  # noqa: E402
import sys  # noqa: E402

from models.cores import available_cores  # noqa: E402  (no NumPy)
from service.config import (  # noqa: E402  (no NumPy)
    DEFAULT_BIND, ConfigError, ServiceConfig, bind_port, env_int, env_log_level, env_str,
)

try:
    bind = [env_str(os.environ, "RNNLM_BIND", DEFAULT_BIND)]
    _config = ServiceConfig.from_env()
    # RNNLM_METRICS_BIND: a second listener, where alone GET /metrics is answered (service/metrics_bind.py)
    _metrics_bind = _config.metrics_bind
    if _metrics_bind is not None:
        if bind_port(_metrics_bind, "RNNLM_METRICS_BIND") == bind_port(bind[0], "RNNLM_BIND") is not None:
            raise ConfigError(f"RNNLM_METRICS_BIND ({_metrics_bind}) must use another port than RNNLM_BIND ({bind[0]})")
        bind.append(_metrics_bind)
    # One worker per core: a worker's engine thread uses one core at most (its GIL), and more
    # workers than cores split the requests into smaller batches, dearer per word, whose engine
    # threads then wait for a core while holding their GIL (docs/measurements.md: two workers
    # against three on two cores).
    workers = env_int(os.environ, "RNNLM_WORKERS", available_cores(), minimum=1)
    # threads > 1 selects the gthread worker. A request holds its thread while it waits in the
    # engine's queue, and one waiting in gunicorn for a free thread is neither counted nor
    # refused; so each worker gets a thread for every place in its batch and queue, and a few more
    # for /health, /metrics and the requests refused at once.
    threads = env_int(os.environ, "RNNLM_THREADS", _config.max_batch + _config.max_queue + 8, minimum=1)
    loglevel = env_log_level(os.environ, "RNNLM_LOG_LEVEL", "INFO").lower()
except ConfigError as _exc:
    # sys.exit gets past gunicorn's `except Exception` around this file, which adds a traceback
    sys.exit(f"rnnlm service cannot start: bad configuration: {_exc}")

# a folder of our own each start: values left by an earlier run must not be added in. gunicorn
# runs this file again on SIGHUP (a reload): the master keeps the folder it made then.
_master_pid = os.getpid()
if os.environ.get("_RNNLM_METRICS_MASTER") != str(_master_pid):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="rnnlm-metrics-")
    os.environ["_RNNLM_METRICS_MASTER"] = str(_master_pid)
_metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]


@atexit.register
def _remove_metrics_dir() -> None:
    """Remove the folder when the master ends, however it ends (workers exit too: not them)."""
    if os.getpid() == _master_pid:
        shutil.rmtree(_metrics_dir, ignore_errors=True)


wsgi_app = "service.wsgi:app"
# gthread, serving a kept-alive connection's next request on the thread that answered the last,
# and spreading connections evenly over the workers (service/thread_worker.py)
worker_class = "service.thread_worker.ServiceThreadWorker"
# load the model once in the master, before forking: a bad model file stops gunicorn with one
# error line instead of every worker failing to boot, and workers share the model's memory pages
preload_app = True
timeout = 30
graceful_timeout = 10
accesslog = "-"  # stdout
errorlog = "-"  # stderr
# the default format plus the worker's pid and the request time in microseconds
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" pid=%(p)s %(D)sus'
# gunicorn's logger, quoting only the atoms the format names (service/access_log.py)
logger_class = "service.access_log.AccessLogger"
# gunicorn >= 25 opens a control socket in $HOME or $XDG_RUNTIME_DIR by default; the service
# does not use it, and two instances on one host would fight over the same path
control_socket_disable = True


def on_reload(server):
    """SIGHUP (the documented reload): load RNNLM_MODEL again in the master before the new workers
    fork from it; with preload_app they would otherwise inherit the model loaded at start. A file
    that cannot be used is refused (one error line) and the old model keeps serving. The old
    workers finish their requests and exit (graceful_timeout), so no request fails."""
    from service.app import reload_model

    reload_model(server.app.wsgi())


def child_exit(server, worker):
    """A worker has exited (the master runs this): forget its in-flight requests, live gauges and connections."""
    from service.app import forget_worker
    from service.thread_worker import forget_worker as forget_worker_connections

    forget_worker(server.app.wsgi(), worker.pid)
    forget_worker_connections(worker.pid)
