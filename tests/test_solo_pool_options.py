"""Pool options users reach from the command line and the config file: --suggest-diff
(checked on the wire), --cert (a private CA for stratum+ssl://) and --no-verify."""
from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
import threading

import pytest

from sgm.miner import Miner, MinerConfig, PoolConfig
from sgm.pool import PoolThread
from tests.conftest import wait_until
from tests.solo_helpers import sgm


def _parse(*argv: str):
    from sgm.miner_cli import _parser, build_config

    return build_config(_parser().parse_args(list(argv)))


class RecordingProxy:
    """A TCP proxy on 127.0.0.1 in front of a pool, recording what the miner sends
    (optionally terminating TLS with ``server_ctx``)."""

    def __init__(self, upstream_port: int, server_ctx: ssl.SSLContext | None = None) -> None:
        self.upstream_port = upstream_port
        self.server_ctx = server_ctx
        self.sent = bytearray()
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def start(self) -> RecordingProxy:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def lines(self) -> list[dict]:
        out = []
        for line in bytes(self.sent).splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()

        async def pump(reader, writer, record: bool) -> None:
            try:
                while data := await reader.read(65536):
                    if record:
                        self.sent.extend(data)
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.close()

        async def handle(reader, writer) -> None:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            await asyncio.gather(pump(reader, up_w, True), pump(up_r, writer, False))

        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=self.server_ctx)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stop.wait()
        server.close()


@pytest.fixture
def pool():
    p = PoolThread(difficulty_bits=12, jobs=None, job_interval=60).start()
    yield p
    p.stop()


@pytest.fixture
def tls_cert(tmp_path):
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command is needed to make a test certificate: "
                    "apt-get install openssl (scripts/setup.sh installs it)", pytrace=False)
    cert, key = tmp_path / "ca.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


# ----------------------------------------------------------------------- parsing
def test_suggest_diff_cert_no_verify_from_the_command_line(tls_cert):
    cert, _ = tls_cert
    cfg, extras = _parse("-o", "stratum+tcp://h:1", "--suggest-diff", "0.001")
    assert cfg.suggest_difficulty == 0.001 and cfg.ssl_verify and cfg.ssl_cafile is None
    cfg, extras = _parse("-o", "stratum+ssl://h:1", "--cert", str(cert))
    assert cfg.ssl_cafile == str(cert) and cfg.ssl_verify and extras["warnings"] == []
    cfg, extras = _parse("-o", "stratum+ssl://h:1", "--no-verify")
    assert not cfg.ssl_verify and any("not checked" in w for w in extras["warnings"])
    cfg, extras = _parse("-o", "stratum+tcp://h:1", "--no-verify")
    assert any("no effect" in w for w in extras["warnings"])


def test_the_same_keys_in_the_config_file(tmp_path, tls_cert):
    cert, _ = tls_cert
    path = tmp_path / "sgm.json"
    path.write_text(json.dumps({"pools": [{"url": "stratum+ssl://h:1"}], "suggest-diff": 0.25,
                                "cert": str(cert)}))
    cfg, _ = _parse("-c", str(path))
    assert cfg.suggest_difficulty == 0.25 and cfg.ssl_cafile == str(cert)
    path.write_text(json.dumps({"pools": [{"url": "stratum+ssl://h:1"}], "suggest-diff": 3,
                                "no-verify": True}))
    cfg, _ = _parse("-c", str(path))
    assert cfg.suggest_difficulty == 3.0 and not cfg.ssl_verify
    # the command line wins over the file
    cfg, _ = _parse("-c", str(path), "--suggest-diff", "7.5")
    assert cfg.suggest_difficulty == 7.5


@pytest.mark.parametrize("argv,pattern", [
    (["--suggest-diff", "0"], "positive"),
    (["--suggest-diff", "-2"], "positive"),
    (["--suggest-diff", "abc"], "not a number"),
    (["--suggest-diff", "inf"], "positive"),
    (["--suggest-diff", "nan"], "positive"),
    (["--cert", "/nonexistent/ca.pem"], "no such file"),
    (["--cert", "__NOT_PEM__"], "not a usable CA certificate"),
    (["--cert", "__CA__", "--no-verify"], "contradict"),
])
def test_bad_values_exit_2_with_a_message(argv, pattern, capsys, tmp_path, tls_cert):
    import re

    from sgm.cli import main

    not_pem = tmp_path / "junk.pem"
    not_pem.write_text("this is no certificate\n")
    argv = [str(not_pem) if a == "__NOT_PEM__" else str(tls_cert[0]) if a == "__CA__" else a
            for a in argv]
    try:
        code = main(["-o", "stratum+ssl://127.0.0.1:1", *argv])
    except SystemExit as exc:      # argparse's own errors
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert re.search(pattern, err), err


@pytest.mark.parametrize("content,pattern", [
    ({"suggest-diff": 0}, "suggest-diff must be a positive number"),
    ({"suggest-diff": -1.5}, "suggest-diff must be a positive number"),
    ({"suggest-diff": "2"}, "suggest-diff must be a positive number, got a string"),
    ({"suggest-diff": True}, "suggest-diff must be .*boolean"),
    ({"suggest-diff": 10 ** 400}, "suggest-diff must be a positive number"),
    ({"cert": 5}, "cert must be a string, got 5"),
    ({"cert": "/nonexistent.pem"}, "no such file"),
    ({"no-verify": "yes"}, "no-verify must be true or false"),
    ({"solo": 1}, "solo must be true or false"),
    ({"coinbase-addr": ["x"]}, "coinbase-addr must be a string, got a list"),
])
def test_bad_config_values_exit_2(tmp_path, capsys, content, pattern):
    import re

    from sgm.cli import main

    path = tmp_path / "sgm.json"
    data = dict(content)
    if "coinbase-addr" in data:
        data["solo"] = True
    path.write_text(json.dumps(data))
    assert main(["-c", str(path), "-o", "stratum+tcp://127.0.0.1:1"] if "solo" not in data
                else ["-c", str(path), "-o", "http://u:p@127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert re.search(pattern, err), err


# ------------------------------------------------------------------------ on the wire
@pytest.mark.parametrize("where", ["flag", "config"])
def test_suggest_diff_is_sent_to_the_pool(pool, tmp_path, where):
    proxy = RecordingProxy(pool.port).start()
    try:
        url = f"stratum+tcp://127.0.0.1:{proxy.port}"
        args = ["-o", url, "-u", "w", "-p", "x", "-t", "1", "--time-limit", "2", "-q"]
        if where == "flag":
            args += ["--suggest-diff", "0.0625"]
            want = 0.0625
        else:
            path = tmp_path / "sgm.json"
            path.write_text(json.dumps({"suggest-diff": 512}))
            args += ["-c", str(path)]
            want = 512
        r = sgm(*args)
        assert r.returncode == 0, r.stderr
    finally:
        proxy.stop()
    sent = proxy.lines()
    suggest = [m for m in sent if m.get("method") == "mining.suggest_difficulty"]
    assert suggest, f"no mining.suggest_difficulty among {[m.get('method') for m in sent]}"
    assert suggest[0]["params"] == [want]
    assert any(m.get("method") == "mining.authorize" for m in sent)


def test_no_suggest_diff_sends_none(pool):
    proxy = RecordingProxy(pool.port).start()
    miner = Miner(MinerConfig(pools=[PoolConfig(f"stratum+tcp://127.0.0.1:{proxy.port}", "w")],
                              threads=1))
    miner.start()
    try:
        assert wait_until(lambda: any(m.get("method") == "mining.authorize" for m in proxy.lines()), 20)
    finally:
        miner.stop()
        proxy.stop()
    assert not any(m.get("method") == "mining.suggest_difficulty" for m in proxy.lines())
    summary = miner.summary()          # the solo counters are there in pool mode too
    assert summary["blocks_found"] == 0 and summary["blocks_accepted"] == 0


# ------------------------------------------------------------------------------ TLS
def _tls_proxy(pool, cert, key) -> RecordingProxy:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    return RecordingProxy(pool.port, server_ctx).start()


def _mine_tls(port: int, **cfg) -> Miner:
    miner = Miner(MinerConfig(pools=[PoolConfig(f"stratum+ssl://127.0.0.1:{port}", "tls")],
                              threads=1, **cfg))
    miner.start()
    return miner


def test_cert_trusts_a_private_ca(pool, tls_cert):
    cert, key = tls_cert
    proxy = _tls_proxy(pool, cert, key)
    miner = _mine_tls(proxy.port, ssl_cafile=str(cert))
    try:
        assert wait_until(lambda: miner.summary()["accepted"] >= 1, 30), "no share through TLS"
    finally:
        miner.stop()
        proxy.stop()


def test_no_verify_connects_without_a_ca_and_the_default_refuses(pool, tls_cert):
    cert, key = tls_cert
    proxy = _tls_proxy(pool, cert, key)
    try:
        miner = _mine_tls(proxy.port, ssl_verify=False)
        try:
            assert wait_until(lambda: miner.summary()["accepted"] >= 1, 30)
        finally:
            miner.stop()
        checked = _mine_tls(proxy.port)        # the self-signed certificate is not trusted
        try:
            assert not wait_until(lambda: checked.summary()["accepted"] >= 1, 2)
            assert checked.client is not None and not checked.client.connected
        finally:
            checked.stop()
    finally:
        proxy.stop()
