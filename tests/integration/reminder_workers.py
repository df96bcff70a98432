"""Real Celery worker subprocesses for the reminder tests, a private redis-server, and the mail they write."""

import os
import re
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
KEY_HEADER = re.compile(r"^X-Reminder-Key: (.+)$", re.MULTILINE)


def database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def start_worker(name: str, mail_dir: Path, log_dir: Path, **env) -> subprocess.Popen:
    """``celery worker --pool=solo`` on the test database, writing mail to ``mail_dir`` (SlowFileBackend)."""
    environment = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "EMAIL_BACKEND": "tests.mail_backends.SlowFileBackend",
        "EMAIL_FILE_PATH": str(mail_dir),
        **env,
    }
    log = (log_dir / f"{name}.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo", "--loglevel=WARNING",
         f"--hostname={name}@%h", "--without-mingle", "--without-gossip"],
        cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def workers(*processes: subprocess.Popen):
    try:
        yield processes
    finally:
        for process in processes:
            stop(process)


def sent_keys(mail_dir: Path) -> list[str]:
    """The X-Reminder-Key of every message the workers' backend wrote, one entry per message."""
    keys: list[str] = []
    for path in sorted(mail_dir.glob("*.log")):
        keys += KEY_HEADER.findall(path.read_text(encoding="utf-8"))
    return keys


def wait_for(predicate, *, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


class PrivateRedis:
    """A redis-server of this test's own on a spare port, so stopping it never touches the shared one."""

    def __init__(self, port: int, workdir: Path):
        self.port, self.workdir = port, workdir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        server = shutil.which("redis-server")
        assert server, "redis-server is not installed"
        self.process = subprocess.Popen(
            [server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(self.ping, timeout=15, what=f"redis-server on port {self.port}")

    def ping(self) -> bool:
        result = subprocess.run(
            ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True, check=False, timeout=5
        )
        return result.stdout.strip() == "PONG"

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
