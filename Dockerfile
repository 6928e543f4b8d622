# rnnlm: trains the default model during the build and serves it on port 8000: nginx in front of
# gunicorn (deploy/nginx.conf says why).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends nginx-light \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY models ./models
COPY training ./training
COPY service ./service
COPY deploy ./deploy
RUN pip install .

# The default corpus comes from Debian's r-cran-janeaustenr; the lists and the corpus are
# removed again in the same step, so the image keeps only the trained model.
RUN apt-get update -qq \
    && python training/fetch_corpus.py --data-dir /tmp/data \
    && python training/train.py --data-dir /tmp/data --out /app/artifacts/model.joblib \
    && rm -rf /tmp/data /var/lib/apt/lists/*

RUN useradd --system --no-create-home --shell /usr/sbin/nologin rnnlm
USER rnnlm

ENV RNNLM_MODEL=/app/artifacts/model.joblib
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status != 200)"
CMD ["deploy/start.sh"]
