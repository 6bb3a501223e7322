"""After a restart every browser opens its stream again at once (issue 26): a stream that may
open is answered before Flask's request machinery (StreamOpenings), the openings take turns
behind whatever else is ready (precedence.Lane), and meanwhile a query's short wait keeps the
loop (precedence.install). The storm itself is measured in bench/storm.py."""
import gc
import subprocess
import sys
import textwrap
import threading

import pytest
from sqlalchemy.engine import make_url

from sendauth_dashboard import precedence
from sendauth_dashboard.precedence import Lane
from tests.support.helpers import send_request, wait_until


def test_a_stream_that_may_open_never_reaches_flasks_request_machinery(app, client, auth,
                                                                      stream_people):
    hana, _, uma = stream_people
    reached = []
    app.before_request(lambda: reached.append(1))
    auth.login(hana)
    reached.clear()
    send_request(app, hana, uma)

    stream = client.get("/transactions/stream?after=0", buffered=False)
    first = next(iter(stream.response))
    assert stream.status_code == 200 and reached == []
    assert stream.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert stream.headers["Cache-Control"] == "no-cache"
    assert stream.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert "Set-Cookie" not in stream.headers  # opening a stream is not using the session
    # The opening frame and what the browser missed go out in one write.
    assert first.startswith(b"retry: ") and b'"kind":"transaction.created"' in first
    stream.close()

    # What may not open is the view's to answer, as before: through the whole app.
    def through_the_app(url):
        before = len(reached)
        response = client.get(url)
        response.close()
        assert len(reached) == before + 1, url
        return response.status_code

    assert through_the_app("/transactions/stream?after=x") == 200
    auth.logout()
    assert through_the_app("/transactions/stream") == 401
    client.set_cookie("session", "forged.cookie.value")
    assert through_the_app("/transactions/stream") == 401


def test_turns_are_taken_one_at_a_time_in_the_order_asked():
    lane = Lane(pause_collector=True)
    assert gc.isenabled()
    first_holds, let_go = threading.Event(), threading.Event()
    order = []

    def opening(name, hold=False):
        with lane.turn():
            order.append(name)
            if hold:
                first_holds.set()
                assert let_go.wait(10)

    holder = threading.Thread(target=opening, args=("first", True))
    holder.start()
    assert first_holds.wait(10)
    waiting = []
    for name in ("second", "third", "fourth"):
        waiting.append(threading.Thread(target=opening, args=(name,)))
        waiting[-1].start()
        wait_until(lambda: len(lane._waiting) == len(waiting), timeout=10, interval=0.001)
    assert lane.crowded and order == ["first"]
    assert not gc.isenabled()  # the collector waits while openings do
    let_go.set()
    for thread in (holder, *waiting):
        thread.join(10)
    assert order == ["first", "second", "third", "fourth"]
    assert not lane.crowded and not lane._held
    assert gc.isenabled()


def test_a_turn_that_never_comes_is_not_waited_for_forever():
    lane = Lane(patience=0.05, pause_collector=True)
    stuck = lane.turn().__enter__()  # an opening stuck holding its turn
    assert stuck.held
    with lane.turn() as late:
        assert not late.held
    assert not lane.crowded and lane._held  # still the stuck one's
    assert gc.isenabled()  # not left paused by a turn never given back


PRECEDENCE = precedence.__file__


def run_under_gevent(script, **values):
    """``script`` in a fresh interpreter patched by gevent, as gunicorn's worker is."""
    prelude = textwrap.dedent(f"""\
        from gevent import monkey
        monkey.patch_all()
        import importlib.util
        spec = importlib.util.spec_from_file_location("precedence", {str(PRECEDENCE)!r})
        precedence = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(precedence)
        """)
    source = prelude + textwrap.dedent(script).format(**values)
    done = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_under_gevent_a_request_ready_during_a_storm_goes_between_openings():
    """100 openings ready, then a request that waits 10 times for something (its database,
    say): each time it is ready again it goes before the next opening, so it is done after
    about 10 of them rather than after all 100."""
    out = run_under_gevent("""
        import gevent
        lane, opened, finished_after = precedence.Lane(), [], []

        def opening(n):
            with lane.turn():
                sum(range(20_000))  # an opening's work
                opened.append(n)

        def request():
            for _ in range(10):
                gevent.sleep(0)  # ready again at once, as a quick query's answer is
            finished_after.append(len(opened))

        openings = [gevent.spawn(opening, n) for n in range(100)]
        gevent.joinall([*openings, gevent.spawn(request)])
        print(finished_after[0], opened == sorted(opened))
    """)
    finished_after, in_order = out.split()
    assert int(finished_after) <= 12 and in_order == "True"


@pytest.mark.postgres
def test_under_gevent_a_query_keeps_the_loop_while_streams_open(postgres_server):
    """While openings wait for turns, a quick query does not give the loop away (other
    greenlets do not run meanwhile); a slow one does, after its hold; with none waiting,
    every query waits through gevent as before. Results and errors come through unchanged.
    (The product holds 2 ms; a longer hold here keeps a busy machine from failing it.)"""
    url = make_url(postgres_server.create("_precedence")).set(drivername="postgresql")
    out = run_under_gevent("""
        import greenlet, psycopg

        crowded = [False]
        # A hold long enough for any round trip on a busy machine; pg_sleep well past it.
        precedence.install(crowded=lambda: crowded[0], hold=0.25)
        conn = psycopg.connect({url!r}, autocommit=True)
        me = greenlet.getcurrent()

        def switches_during(sql):
            count = [0]
            def trace(event, args):
                if args[0] is me:
                    count[0] += 1
            old = greenlet.settrace(trace)  # a switch away: the wait gave the loop away
            try:
                value = conn.execute(sql).fetchone()[0]
            finally:
                greenlet.settrace(old)
            return count[0], value

        print(*switches_during("select 1"))
        crowded[0] = True
        print(*switches_during("select 2"))
        print(*switches_during("select 3 from pg_sleep(0.6)"))
        try:
            conn.execute("select 1 / 0")
        except psycopg.errors.DivisionByZero:
            print("refused")
    """, url=url.render_as_string(hide_password=False))
    calm, crowded, slow, error = out.splitlines()
    assert int(calm.split()[0]) >= 1 and calm.split()[1] == "1"
    assert crowded == "0 2"
    assert int(slow.split()[0]) >= 1 and slow.split()[1] == "3"
    assert error == "refused"
