"""Records reach the monitor in batches; when it is down they are dropped and counted, never waited for."""

import asyncio
import json

from aiohttp import web
from aiohttp.test_utils import TestServer

from modelops_services.forwarding import MonitorForwarder


def test_records_arrive_in_batches_with_the_drop_count():
    async def run():
        got = []

        async def observe(request):
            got.append(json.loads(await request.read()))
            return web.json_response({})

        app = web.Application()
        app.router.add_post("/observe", observe)
        async with TestServer(app, host="127.0.0.1") as srv:
            fw = MonitorForwarder(str(srv.make_url("/")), queue_size=1000, batch_max=50)
            fw._unreported = 7  # drops from an earlier outage, to be reported
            for i in range(120):
                assert fw.submit({"id": i})
            for _ in range(100):
                await asyncio.sleep(0.02)
                if fw.sent == 120:
                    break
            await fw.close()
        return got, fw

    got, fw = asyncio.run(run())
    ids = [r["id"] for b in got for r in b["records"]]
    assert ids == list(range(120))
    assert max(len(b["records"]) for b in got) <= 50
    assert sum(b["dropped"] for b in got) == 7 and fw.dropped == 0


def test_dead_monitor_costs_drops_not_waiting():
    async def run():
        drops = []
        fw = MonitorForwarder("http://127.0.0.1:9", queue_size=10, flush_s=0, backoff_s=5.0, on_drop=drops.append)
        accepted = [fw.submit({"id": i}) for i in range(50)]  # no await: the queue fills
        await asyncio.sleep(0.5)  # the first POST fails; its batch is dropped too
        await fw.close()
        return accepted, fw, drops

    accepted, fw, drops = asyncio.run(run())
    assert accepted.count(True) == 10 and accepted.count(False) == 40
    assert fw.dropped == 50 and sum(drops) == 50 and fw.sent == 0


def test_records_go_through_the_pods_socket_when_it_is_named():
    import tempfile
    from pathlib import Path

    async def run(sock):
        got = []

        async def observe(request):
            got.append(json.loads(await request.read()))
            return web.json_response({})

        app = web.Application()
        app.router.add_post("/observe", observe)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.UnixSite(runner, sock).start()
        try:
            # The URL (the monitor's TCP port) is not used for records.
            fw = MonitorForwarder("http://127.0.0.1:9", flush_s=0, socket_path=sock)
            for i in range(3):
                fw.submit({"id": i})
            for _ in range(100):
                await asyncio.sleep(0.02)
                if fw.sent == 3:
                    break
            await fw.close()
        finally:
            await runner.cleanup()
        return got, fw

    with tempfile.TemporaryDirectory(prefix="mo-") as d:
        got, fw = asyncio.run(run(str(Path(d) / "monitor.sock")))
    assert [r["id"] for b in got for r in b["records"]] == [0, 1, 2] and fw.dropped == 0
