# One image for every Python service of Lijia Street: backend, devices, console and the
# one-shot credentials job (docker-compose.yml picks the command). Mosquitto and PostgreSQL run
# from their official images.
#
# Python 3.11 on Debian bookworm: the minor version and the Debian release are pinned, patch
# releases (security fixes) come in on rebuild. Pin a digest (@sha256:...) for bit-for-bit builds.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed uid/gid, so files on volumes have a predictable owner. /credentials is created here,
# owned by that user and world-readable (0755): an empty named volume mounted there takes this
# owner and mode, so the credentials job can write into it and Mosquitto (uid 1883 in its
# image) can read dynamic-security.json (0644: PBKDF2 hashes of 32 random bytes, and rights) in
# it. secrets.json stays 0600, for this user only.
RUN groupadd --system --gid 10001 lijia \
    && useradd --system --uid 10001 --gid lijia --create-home --home-dir /home/lijia \
        --shell /usr/sbin/nologin lijia \
    && install -d -o lijia -g lijia -m 0755 /credentials

WORKDIR /app

# The code stays owned by root: the services cannot modify what they run.
COPY pyproject.toml README.md ./
COPY contracts/ contracts/
COPY adapters/ adapters/
COPY devices/ devices/
COPY backend/ backend/
COPY ui/ ui/
COPY stack/ stack/
COPY broker_config/ broker_config/
COPY .streamlit/ .streamlit/
COPY scenarios/ scenarios/

# Dependencies are bounded in pyproject.toml; `.` is this project, not a package to pin.
RUN pip install --no-cache-dir . \
    && rm -rf build ./*.egg-info

# Numeric, so runtimes can check it is not root (runAsNonRoot) without reading /etc/passwd.
USER 10001:10001

EXPOSE 8000 8501

# docker-compose.yml sets the command of each service; alone, the image serves the API.
CMD ["python", "-m", "backend"]
