"""pytest fixtures that start real components, each in its own temporary
directory, on 127.0.0.1 or unix sockets, always stopped afterwards."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from zdtest.pg import Postgres  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _keep_on_failure(request):
    rep = getattr(request.node, "rep_call", None)
    return rep is not None and rep.failed


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def pg(request):
    db = Postgres().start(deadline=30)
    yield db
    failed = _keep_on_failure(request)
    if failed:
        print(db.tail())
    db.stop()
    if not failed:
        db.cleanup()


from zdtest.softhsm import SoftHsm  # noqa: E402
from zdtest.servers import Nsd, Bind, Knot, Unbound, sanitizer_report  # noqa: E402


@pytest.fixture
def softhsm(request):
    t = SoftHsm().init_token()
    yield t
    if not _keep_on_failure(request):
        t.cleanup()


@pytest.fixture
def spawn(request):
    """Start servers with spawn(obj) -> obj.start(); every one is stopped at
    teardown, its log tail printed on failure, its directory kept then."""
    started = []

    def _spawn(server, **kw):
        started.append(server)
        return server.start(**kw)

    yield _spawn
    failed = _keep_on_failure(request)
    for s in reversed(started):
        s.stop()
        if failed:
            print(s.tail())
    findings = sanitizer_report(*started)
    for s in started:
        if not failed and not findings:
            s.cleanup()
    assert not findings, "sanitizer findings in server logs:\n" + "\n".join(findings)


@pytest.fixture
def nsd_factory(spawn):
    return lambda primary_port, zones, **kw: spawn(Nsd(primary_port, zones, **kw))


@pytest.fixture
def bind_factory(spawn):
    return lambda primary_port, zones, **kw: spawn(Bind(primary_port, zones, **kw))


@pytest.fixture
def knot_factory(spawn):
    return lambda zones, **kw: spawn(Knot(zones, **kw))


@pytest.fixture
def unbound_factory(spawn):
    """unbound_factory({zone: port}, trust_anchors, **kw) -> a started Unbound."""
    return lambda stubs, trust_anchors, **kw: spawn(Unbound(stubs, trust_anchors, **kw))
