# The application image used by migrate, web, worker and beat (docker-compose.yml: one image, cohort-manager).
FROM python:3.11-slim

# PYTHONPATH: import the project from /app, not from the copy pip puts in site-packages, because
# BASE_DIR, the protocol files under trial/protocols/ and the collected static files all live here.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    VAR_DIR=/app/var

WORKDIR /app

RUN useradd --create-home --uid 10001 --user-group app

# The pinned versions of requirements/prod.lock, each checked against its hash (no resolution at build
# time: two builds of one commit install the same files), then the project itself with --no-deps.
# The lock is copied alone first, so a change of code does not reinstall the dependencies.
COPY requirements/prod.lock requirements/prod.lock
RUN pip install --require-hashes -r requirements/prod.lock
COPY . .
RUN pip install --no-deps . \
    && rm -rf build ./*.egg-info

# Static files are collected at build time (whitenoise serves them). DEBUG off needs a SECRET_KEY:
# a dummy used only for this step, never at run time.
RUN DEBUG=false SECRET_KEY=build-only-dummy-secret-key-not-used-at-runtime \
    python manage.py collectstatic --noinput \
    && chown -R app:app /app/var

USER app
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "-b", "0.0.0.0:8000", "--workers", "3"]
