"""service/access_log.py writes the lines gunicorn's own logger writes."""
from __future__ import annotations

import datetime
import logging

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger

from service.access_log import AccessLogger

FORMATS = [  # (format, what its line says)
    ('%(h)s %(l)s %(u)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(D)sus',  # service/gunicorn.conf.py's, less time and pid
     '10.0.0.1 - - "POST /generate?x=1 HTTP/1.1" 200 321 "-" "tool \\"quoted\\"/1.0" 1234us'),
    ('%({x-request-id}i)s %({X-Compute-Time}o)s %({Missing}i)s %(missing)s %({remote_addr}e)s %(L)s',
     "abc 0.012 - - 10.0.0.1 0.001234"),
]


class _Request:
    method, uri, path, query, version = "POST", "/generate?x=1", "/generate", "x=1", (1, 1)
    headers = [("HOST", "h"), ("USER-AGENT", 'tool "quoted"/1.0'), ("X-REQUEST-ID", "abc")]


class _Response:
    status, sent, response_length = "200 OK", 321, 321
    headers = [("Content-Type", "application/json"), ("x-compute-time", "0.012")]


def line(logger_class: type[Logger], access_format: str) -> str:
    cfg = Config()
    cfg.set("accesslog", "-")
    cfg.set("access_log_format", access_format)
    logger = logger_class(cfg)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger.access_log.handlers = [handler]
    environ = {"REMOTE_ADDR": "10.0.0.1", "REQUEST_METHOD": "POST", "RAW_URI": "/generate?x=1",
               "SERVER_PROTOCOL": "HTTP/1.1", "QUERY_STRING": "x=1", "PATH_INFO": "/generate",
               "HTTP_USER_AGENT": 'tool "quoted"/1.0', "HTTP_X_REQUEST_ID": "abc"}
    logger.access(_Response(), _Request(), environ, datetime.timedelta(microseconds=1234))
    [record] = records
    return record.getMessage()


@pytest.mark.parametrize("access_format, expected", FORMATS)
def test_the_same_line_as_gunicorns_logger(access_format, expected):
    assert line(AccessLogger, access_format) == line(Logger, access_format) == expected
