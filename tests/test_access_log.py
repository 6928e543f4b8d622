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
    # every other plain atom of gunicorn's (the time and pid atoms differ between calls)
    ('%(m)s %(U)s %(q)s %(H)s %(B)s %(T)s %(M)s %({host}I)s %({CONTENT-TYPE}O)s %({Path_Info}E)s',
     "POST /generate x=1 HTTP/1.1 321 0 1 h application/json /generate"),
]


class _Request:
    method, uri, path, query, version = "POST", "/generate?x=1", "/generate", "x=1", (1, 1)
    headers = [("HOST", "h"), ("USER-AGENT", 'tool "quoted"/1.0'), ("X-REQUEST-ID", "abc")]


class _Response:
    status, sent, response_length = "200 OK", 321, 321
    headers = [("Content-Type", "application/json"), ("x-compute-time", "0.012")]


ENVIRON = {"REMOTE_ADDR": "10.0.0.1", "REQUEST_METHOD": "POST", "RAW_URI": "/generate?x=1",
           "SERVER_PROTOCOL": "HTTP/1.1", "QUERY_STRING": "x=1", "PATH_INFO": "/generate",
           "HTTP_USER_AGENT": 'tool "quoted"/1.0', "HTTP_X_REQUEST_ID": "abc"}


def line(logger_class: type[Logger], access_format: str) -> str:
    cfg = Config()
    cfg.set("accesslog", "-")
    cfg.set("access_log_format", access_format)
    logger = logger_class(cfg)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger.access_log.handlers = [handler]
    logger.access(_Response(), _Request(), ENVIRON, datetime.timedelta(microseconds=1234))
    [record] = records
    return record.getMessage()


@pytest.mark.parametrize("access_format, expected", FORMATS)
def test_the_same_line_as_gunicorns_logger(access_format, expected):
    assert line(AccessLogger, access_format) == line(Logger, access_format) == expected


def test_the_atoms_worked_out_when_read_are_gunicorns():
    """Read one by one or all at once, the atoms are those of gunicorn's dictionary (the
    request's last header of a name wins, as there)."""
    request = _Request()
    request.headers = [*request.headers, ("X-REQUEST-ID", "second")]
    args = (_Response(), request, ENVIRON, datetime.timedelta(seconds=2, microseconds=1234))
    cfg = Config()
    theirs = Logger(cfg).atoms(*args)
    ours = AccessLogger(cfg).atoms(*args)
    assert {key: ours[key] for key in theirs if key != "t"} == {key: v for key, v in theirs.items() if key != "t"}
    assert dict(ours).keys() == theirs.keys() and len(ours) == len(theirs)
    assert ours["{x-request-id}i"] == "second"
    with pytest.raises(KeyError):
        ours["{absent}i"]


def test_the_time_is_the_requests_end_even_when_formatted_later(monkeypatch):
    logger = AccessLogger(Config())
    monkeypatch.setattr(logger, "now", lambda: "[at the end]")
    atoms = logger.atoms(_Response(), _Request(), ENVIRON, datetime.timedelta(microseconds=1234))
    monkeypatch.setattr(logger, "now", lambda: "[later]")  # e.g. a MemoryHandler's flush
    assert atoms["t"] == dict(atoms)["t"] == "[at the end]"
