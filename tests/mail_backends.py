"""Mail backends for the reminder tests. The integration tests point a worker subprocess at them by dotted
path (EMAIL_BACKEND), so they take their knobs from the environment and keep state in files."""

import os
import smtplib
import time
from pathlib import Path

from django.core.mail.backends.filebased import EmailBackend as FileBackend
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend


class FailingThenLocmem(LocmemBackend):
    """Raises like an unreachable SMTP server ``failures_left`` times, then delivers to ``mail.outbox``."""

    failures_left = 0

    def send_messages(self, messages):
        if FailingThenLocmem.failures_left > 0:
            FailingThenLocmem.failures_left -= 1
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        return super().send_messages(messages)


class SlowFileBackend(FileBackend):
    """Writes ``STARTED-<pid>-<n>`` when a send begins, sleeps ``TEST_MAIL_DELAY`` seconds, then writes the
    message file: a worker killed during the sleep has sent nothing."""

    def send_messages(self, messages):
        folder = Path(self.file_path)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"STARTED-{os.getpid()}-{time.monotonic_ns()}").write_text("", encoding="utf-8")
        time.sleep(float(os.environ.get("TEST_MAIL_DELAY", "0")))
        return super().send_messages(messages)


class CountingLocmem(LocmemBackend):
    """Delivers to ``mail.outbox``, counts the connections opened, and refuses any message whose subject contains
    ``refuse_subjects``' words, as an SMTP server refusing one recipient would."""

    opened = 0
    refuse_subjects: tuple[str, ...] = ()
    unreachable = False

    def open(self):
        CountingLocmem.opened += 1
        if CountingLocmem.unreachable:
            raise TimeoutError("timed out connecting to the SMTP server")
        return super().open()

    def send_messages(self, messages):
        for message in messages:
            if any(word in message.subject for word in CountingLocmem.refuse_subjects):
                raise smtplib.SMTPRecipientsRefused({message.to[0]: (550, b"mailbox unavailable")})
        return super().send_messages(messages)
