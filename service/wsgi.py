"""WSGI entry point: ``gunicorn -c service/gunicorn.conf.py service.wsgi:app``.

A bad setting or an unusable model file ends the process here with exit status 1 and ONE line on
stderr naming the file (or variable) and the problem; a traceback would only hide that line.
With gunicorn's ``preload_app`` this runs once, in the master, so the line shows once.
"""
from __future__ import annotations

import logging
import sys
from typing import NoReturn

from flask import Flask

from models.model_file import ModelFileError
from service.app import create_app
from service.config import ConfigError, ServiceConfig

LOG_FORMAT = "%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s"


def _fail(message: str) -> NoReturn:
    sys.stderr.write(f"rnnlm service cannot start: {message}\n")
    sys.stderr.flush()
    raise SystemExit(1)


def load_app() -> Flask:
    """Configure logging and build the app, or exit with a one-line reason."""
    try:
        config = ServiceConfig.from_env()
    except ConfigError as exc:
        _fail(f"bad configuration: {exc}")
    logging.basicConfig(level=config.log_level, format=LOG_FORMAT)
    try:
        return create_app(config)
    except ModelFileError as exc:
        _fail(f"cannot load model {exc}")


app = load_app()
