"""What every test app would otherwise compile again: SQL statements and URL builders.

Each test builds a fresh app, so a fresh SQLAlchemy engine and a fresh Werkzeug URL map. An
engine keeps its compiled statements in a cache of its own, keyed by its own dialect object,
so every test compiled every query it ran anew (44% of the role table's time); each URL map
compiles two Python functions per route (a tenth of an app's making). The product compiles
each once per process; here they are compiled once per test session, and each test still gets
its own engine, connections, map and app.

Both caches are keyed by everything the compiled result depends on, so a test that changes a
query, a route or the database server still gets its own compile.
"""
from sqlalchemy.util import LRUCache
from werkzeug.routing.rules import Rule


class SharedCompiledCache(LRUCache):
    """An engine's ``compiled_cache`` shared by every engine of the session: the dialect object
    in SQLAlchemy's key is replaced by what the compiled SQL depends on (the dialect's class
    and the server's version), so two engines for the same kind of database share entries."""

    @staticmethod
    def _shared(key):
        dialect, *rest = key
        return (type(dialect), dialect.server_version_info, *rest)

    def get(self, key, default=None):
        return super().get(self._shared(key), default)

    def __getitem__(self, key):
        return super().__getitem__(self._shared(key))

    def __setitem__(self, key, value):
        super().__setitem__(self._shared(key), value)

    def __contains__(self, key):
        return super().__contains__(self._shared(key))


COMPILED_SQL = SharedCompiledCache(capacity=20_000)


def share_url_builders():
    """Werkzeug compiles each rule's two URL builders from the rule's text, its trace and its
    defaults (``Rule._compile_builder``); the functions take the rule as an argument, so one
    compiled function serves every app's copy of the rule. Does nothing if Werkzeug changes
    that method (its version is pinned in constraints.txt)."""
    original = getattr(Rule, "_compile_builder", None)
    if original is None or getattr(original, "shared", False):
        return
    builders = {}

    def compile_builder(rule, append_unknown=True):
        key = (rule.rule, tuple(rule._trace), repr(sorted((rule.defaults or {}).items())),
               append_unknown)
        builder = builders.get(key)
        if builder is None:
            builder = builders[key] = original(rule, append_unknown)
        return builder

    compile_builder.shared = True
    Rule._compile_builder = compile_builder
