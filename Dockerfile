# rnnlm: trains the default model during the build and serves it on port 8000: nginx in front of
# gunicorn (service/deploy/nginx.conf says why).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends nginx-light \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# The dependencies exactly as locked, every file checked against its SHA-256 (requirements.lock,
# made from pyproject.toml by pip-compile: see the README's Container section), then the project
# itself with the locked setuptools and nothing else.
COPY requirements.lock ./
RUN pip install --require-hashes --only-binary :all: -r requirements.lock
COPY pyproject.toml README.md ./
COPY models ./models
COPY training ./training
COPY service ./service
RUN pip install --no-deps --no-build-isolation . && rm -rf build *.egg-info

# The default corpus comes from Debian's r-cran-janeaustenr; the lists and the corpus are
# removed again in the same step, so the image keeps only the trained model.
RUN apt-get update -qq \
    && python training/fetch_corpus.py --data-dir /tmp/data \
    && python training/train.py --data-dir /tmp/data --out /app/artifacts/model.joblib \
    && rm -rf /tmp/data /var/lib/apt/lists/*

RUN useradd --system --no-create-home --shell /usr/sbin/nologin rnnlm
USER rnnlm

# nginx and gunicorn write only under /tmp (nginx's pid and buffers, gunicorn's socket and worker
# files, the metrics folder), so the container can run with a read-only root and a tmpfs there:
# docker run --read-only --tmpfs /tmp. RNNLM_BIND is where nginx listens (service/deploy/start.sh).
ENV RNNLM_MODEL=/app/artifacts/model.joblib \
    RNNLM_BIND=0.0.0.0:8000 \
    TMPDIR=/tmp
EXPOSE 8000
# asks /health wherever RNNLM_BIND puts the service, through nginx (service/healthcheck.py)
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-m", "service.healthcheck"]
CMD ["service/deploy/start.sh"]
