# The engine on the embedded store by default (one process, its SQLite file in the
# /data volume), or on Redis when BATTLES_STORE says so (docker-compose.yml).
#   docker build -t battles .
#   docker run -p 8000:8000 -v battles-data:/data -e BATTLES_PUBLIC_URL=http://192.168.1.20:8000 battles
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The dependencies first, in a layer of their own that a change to the source does
# not rebuild: pyproject.toml's runtime dependencies (not the test and bench extras), at
# the versions of requirements.lock, the one lock every install takes (docs/operations.md,
# "The lock"): an image built next year gets these, not whatever is newest then.
COPY requirements.lock pyproject.toml ./
RUN python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" \
        > runtime.txt \
    && pip install -c requirements.lock -r runtime.txt \
    && rm runtime.txt

# Then the engine itself: a regular install (static/ and templates/ go to
# share/battles/ with it), no editable link back to /app.
COPY README.md ./
COPY src ./src
COPY static ./static
COPY templates ./templates
RUN pip install --no-deps .

# A user of its own, and the one place it writes: the /data volume. /app stays
# root's and read-only to it.
RUN useradd --system --uid 10001 --no-create-home --home-dir /data battles \
    && mkdir /data && chown battles /data
VOLUME /data
USER battles
WORKDIR /data
ENV BATTLES_STORE=sqlite:////data/battles.sqlite3

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=3)"]
CMD ["battles", "serve", "--host", "0.0.0.0", "--port", "8000"]
