"""The statements every API request runs, planned once per database connection instead of once per request.

Django's PostgreSQL cursors bind parameters on the client (psycopg's ``ClientCursor``): the server parses
and plans every statement it receives. The token lookup (with the user's permissions) and the trial
summary run on every dashboard request, and planning them costs more than running them: warm, on the
benchmark database, the summary takes 1.9 ms planned each time and 0.8 ms prepared, the token lookup 0.44 ms
and 0.12 ms (``bench/README.md``). ``planned_once()`` is Django's cursor, with its checks, logging, execute
wrappers and error translation, over a psycopg cursor that binds on the server, so psycopg prepares
each statement at its first run on a connection (``prepare_threshold`` 0 in settings; Django's own cursors
bind on the client and never prepare) and keeps a connection's prepared statements (the 100 last used)
until a rollback on it (a refused write), after which each is prepared again at its next run; PostgreSQL
plans a prepared statement again by itself when a table it reads changes (a migration that changes the
type of a column one returns makes it fail until the connection is replaced: restart the web workers after
such a migration). With persistent connections (``DB_CONN_MAX_AGE``, 60 s by default) that spans requests.
Django's query log shows these statements with ``$1``-style placeholders, without their values. Only statements written
for it use it: plain SQL whose parameters are all values (never a name, never inside a literal). Django's
own ``server_side_binding`` option would move every query the ORM builds to server-side binding; this moves
only these two, which their tests run on PostgreSQL. On SQLite it is Django's cursor.
"""

from contextlib import contextmanager

import psycopg
from django.db import connection
from psycopg.pq import Format

__all__ = ["planned_once"]

_TIMESTAMPTZ = psycopg.adapters.types["timestamptz"].oid


class _ServerBindingCursor(psycopg.Cursor):
    """psycopg's cursor, keeping a prepared statement's text where Django's query log reads it (psycopg leaves
    it unset when it runs a prepared statement; ``tests/core/test_statements.py`` holds it)."""

    def _send_query_prepared(self, name, pgq, *, binary=None):
        self._query = pgq
        super()._send_query_prepared(name, pgq, binary=binary)


@contextmanager
def planned_once():
    """A cursor (``with planned_once() as cursor:``) whose statements PostgreSQL plans once per connection."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            client, server = cursor.cursor, _ServerBindingCursor(connection.connection)
            # Times are read as Django's own cursor reads them: Django gives its cursor a loader of its own
            # when the connection's zone is not Django's (after a settings override), so that one is used.
            loader = client.adapters.get_loader(_TIMESTAMPTZ, Format.TEXT)
            if loader is not connection.connection.adapters.get_loader(_TIMESTAMPTZ, Format.TEXT):
                server.adapters.register_loader(_TIMESTAMPTZ, loader)
            client.close()
            cursor.cursor = server
        yield cursor
