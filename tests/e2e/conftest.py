def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: end-to-end scenario with real model servers (tests/e2e)")


def pytest_collection_finish(session):
    # Prometheus is built from source the first time (minutes): before the tests, so it
    # does not count against the first scenario's timeout (`make test` builds it first).
    if session.config.option.collectonly or not any(i.get_closest_marker("e2e") for i in session.items):
        return
    from ..prom import prometheus_binary

    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter:
        reporter.write_line("modelops: hack/build-prometheus.sh (builds Prometheus once)")
    prometheus_binary()
