"""Load generator: N concurrent Tillit chats, real encryption, every message checked.

It starts the server (`tillit serve`, pinned to core 0 with `taskset`) on 127.0.0.1,
pins itself to core 1, creates counselor accounts (by default one per counselor
socket, `--accounts`) and logs each in, opens N chats (a visitor socket each; counselor
sockets holding `--chats-per-counselor` chats each) and sends real
AES-256-GCM envelopes (docs/protocol.md section 2, ~400 characters of ciphertext) made
with tests/protocol_client.py. It measures, on the other side of each chat:

* delivered messages per second, and latency from send to receipt (p50/p95/p99);
* that every acknowledged message arrived exactly once and in id order
  (`rate_limited`/`busy` refusals are counted: shed visibly, never lost; a message
  refused with `busy` or `unavailable` is sent again after 1, 2, 4, 8, 15 and 30 s, as
  the visitor's page does, and its latency counts from the first try);
* server CPU (utime+stime from /proc/<pid>/stat) and RSS per open chat.

Modes: `--mode rate` (each side sends one message every `--interval` seconds),
`--mode saturation` (each side keeps `--window` messages in flight), `--mode bare`
(the same saturation against bench/bare_relay.py) and `--mode compare` (saturation
and bare in one run, printing the ratio). `--soak-minutes M` runs rate mode for M
minutes and samples RSS each minute. `--store sqlite|redis` picks the store.

The clients speak Engine.IO 4 / Socket.IO 5 text frames over plain aiohttp
WebSockets: 2 000 python-socketio clients in one process would saturate the
generator before the server. Traffic goes only to 127.0.0.1, bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import itertools
import json
import os
import random
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.twofactor.totp import TOTP

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from protocol_client import (  # noqa: E402 - the shared, independent protocol client
    derive_epoch_keys,
    encode_public_key,
    generate_key_pair,
    make_plaintext,
    open_envelope,
    pow_solve,
    seal,
    shared_secret,
)

DRAIN_LIMIT_S = 30.0
# Like tillit/static/chat-session.js: codes that mean "later", and the waits before each new try.
RETRY_LATER = ("busy", "unavailable")
RETRY_DELAYS_S = (1, 2, 4, 8, 15, 30)
TEXT_CHARS = 236  # -> about 400 characters of base64url ciphertext
BENCH_CONFIG = """
{counselor}
[queue]
max_length = 100000
[abuse]
# The generator solves the chat:start proof-of-work, at 8 bits and without the steps:
# the bench measures the relay, and 1 000 chats set up in seconds would climb the
# rate steps (bench/README.md).
pow_bits_base = 8
pow_fill_steps = []
pow_rate_steps = []
[limits]
max_connections = 100000
# One socket per 4 chats: 1 000 chats open 250 counselor sockets (default cap 200).
max_staff_connections = 100000
{limits}
"""
ROOMY_LIMITS = """events_per_s = 1000000
events_burst = 1000000
chat_messages_per_s = 1000000
chat_messages_burst = 1000000
shed_loop_lag_ms = 0
shed_store_backlog = 0"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- process stats


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


# --------------------------------------------------------------------------- the server


class Served:
    """A process on core 0 (`tillit serve`, bare_relay.py or redis-server), stopped at exit."""

    def __init__(self, argv: list[str], port: int, env: dict[str, str] | None = None,
                 core: str = "0") -> None:
        self.port = port
        cmd = ["taskset", "-c", core, *argv] if shutil.which("taskset") else argv
        # BENCH_SERVER_STDERR: a file that gets the processes' stderr (warnings, errors).
        log = os.environ.get("BENCH_SERVER_STDERR")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                     stderr=open(log, "ab") if log else subprocess.DEVNULL)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_port(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if self.proc.poll() is not None:
                raise SystemExit(f"process exited with {self.proc.returncode}")
            time.sleep(0.1)
        raise SystemExit("process did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def shared_key_files(tmp: Path, env: dict[str, str]) -> None:
    """The notes' and TOTP keys in files of their own, named for every process (with
    server.database_url they must be the same everywhere): `tillit keys generate`, or,
    on a version without it, the server creates them on first use."""
    keys = tmp / "keys"
    keys.mkdir()
    for name, setting in (("notes.key", "TILLIT_NOTES_KEY_FILE"),
                          ("totp.key", "TILLIT_CONSOLE_TOTP_KEY_FILE")):
        subprocess.run([sys.executable, "-m", "tillit", "keys", "generate", "--output",
                        str(keys / name)], capture_output=True, cwd=ROOT, env=env)
        env[setting] = str(keys / name)


def shipped_max_parallel() -> int:
    """`counselor.max_parallel_chats` as shipped (tillit/config/default.toml)."""
    import tomllib

    with open(ROOT / "tillit" / "config" / "default.toml", "rb") as f:
        return int(tomllib.load(f)["counselor"]["max_parallel_chats"])


def chats_per_account(chats: int, per_socket: int, accounts: int) -> list[int]:
    """How many chats each account holds: counselor socket k (chats k*per .. k*per+per-1)
    is logged in as account k mod `accounts`."""
    held = [0] * accounts
    for k in range(-(-chats // per_socket)):
        held[k % accounts] += min(per_socket, chats - k * per_socket)
    return held


def start_tillit(store: str, roomy: bool, tmp: Path, processes: int = 1,
                 database_url: str = "", redis_core: str = "0", accounts: int = 1,
                 max_held: int = 0,
                 ) -> tuple[list[Served], list[str], Served | None, list[dict[str, str]], str]:
    """`tillit serve` with a bench config; with Redis, a redis-server of its own on
    `redis_core` (core 0 unless told); `accounts` counselor accounts made before it
    starts (bench/bench_accounts.py), returned with their TOTP secrets and the password.
    `counselor.max_parallel_chats` stays as shipped unless an account must hold more
    (`max_held`, e.g. the one-account shape).

    Without `database_url`, several processes share the Redis store and the data
    directory (one durable SQLite database on this host). With it (PostgreSQL), each
    process has a data directory of its own and nothing on disk is shared, as on two
    machines. Process k runs on core k mod 2, so the second shares core 1 with the
    generator.
    """
    counselor = (f"[counselor]\nmax_parallel_chats = {max_held}"
                 if max_held > shipped_max_parallel() else "")
    (tmp / "bench.toml").write_text(BENCH_CONFIG.format(
        counselor=counselor, limits=ROOMY_LIMITS if roomy else ""))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TILLIT_")}
    # Plain http on 127.0.0.1, like `make serve`: production-only checks (e.g. a required
    # server.public_origins) do not apply.
    env["TILLIT_SERVER_DEVELOPMENT"] = "true"
    # BENCH_SERVER_PYTHONPATH: a folder put first on the server's path (e.g. a profiling
    # sitecustomize); empty by default.
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (os.environ.get("BENCH_SERVER_PYTHONPATH", ""), str(ROOT)) if p)
    redis_proc = None
    if store == "redis":
        rport = free_port()
        redis_proc = Served(["redis-server", "--port", str(rport), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no"], rport, core=redis_core)
        redis_proc.wait_port()
        env["TILLIT_STORE"] = "redis"
        env["TILLIT_REDIS_URL"] = f"redis://127.0.0.1:{rport}/0"
    data = tmp / "data"
    if database_url:
        env["TILLIT_DATABASE_URL"] = database_url
        shared_key_files(tmp, env)
    password = "bench-lösenord-kanel-97"
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_accounts.py"), "--count", str(accounts),
         "--data-dir", str(data), "--config", str(tmp / "bench.toml")],
        input=(password + "\n").encode(), capture_output=True, cwd=ROOT, env=env, check=True,
    )
    creds = [json.loads(line) for line in out.stdout.decode().splitlines() if line.strip()]
    srvs: list[Served] = []
    for k in range(processes):
        port = free_port()
        own = data if k == 0 or not database_url else tmp / f"data{k}"
        srvs.append(Served([sys.executable, "-m", "tillit", "serve", "--port", str(port),
                            "--data-dir", str(own), "--config", str(tmp / "bench.toml"),
                            "--log-level", "WARNING"], port, env, core=str(k % 2)))
        if k == 0:
            srvs[0].wait_port()  # the first creates what is missing (keys, schema) alone
    for srv in srvs:
        srv.wait_port()
    bases = [f"http://127.0.0.1:{srv.port}" for srv in srvs]
    return srvs, bases, redis_proc, creds, password


async def login_all(http: aiohttp.ClientSession, base: str, creds: list[dict[str, str]],
                    password: str) -> list[str]:
    """Each account logs in through the real `/api/console/login` (password and a TOTP
    code made just before its request); returns the session cookies in order. The server
    checks `console.login_concurrent_checks` passwords at once, as shipped."""
    gate = asyncio.Semaphore(8)

    async def one(cred: dict[str, str]) -> str:
        async with gate:
            code = TOTP(base64.b32decode(cred["totp_secret"]), 6, hashes.SHA1(),
                        30).generate(time.time()).decode()
            async with http.post(f"{base}/api/console/login", json={
                    "username": cred["username"], "password": password, "totp": code}) as resp:
                if resp.status != 200:
                    raise SystemExit(f"login refused: {resp.status} {await resp.text()}")
                return resp.headers["Set-Cookie"].split(";")[0]

    return list(await asyncio.gather(*(one(c) for c in creds)))


# --------------------------------------------------------------------------- Socket.IO client


class SioSocket:
    """One Engine.IO 4 / Socket.IO 5 connection to one namespace, text frames only."""

    def __init__(self, http: aiohttp.ClientSession, namespace: str) -> None:
        self.http = http
        self.ns = namespace
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.acks: dict[int, Any] = {}
        self.ack_ids = itertools.count(1)
        self.handlers: dict[str, Any] = {}
        self.reader: asyncio.Task[None] | None = None

    async def connect(self, base: str, headers: dict[str, str] | None = None) -> None:
        url = base.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
        self.ws = await self.http.ws_connect(url, headers=headers or {}, compress=0,
                                             max_msg_size=0)
        opened = await self.ws.receive_str()
        assert opened.startswith("0"), opened
        await self.ws.send_str(f"40{self.ns},")
        reply = await self.ws.receive_str()
        if not reply.startswith(f"40{self.ns},"):
            raise ConnectionError(reply)
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        prefix = len(self.ns) + 3  # "42" + ns + ","
        async for msg in self.ws:
            data = msg.data
            if data == "2":
                await self.ws.send_str("3")
                continue
            if data.startswith("42"):
                event, payload = json.loads(data[prefix:])
                handler = self.handlers.get(event)
                if handler is not None:
                    handler(payload)
            elif data.startswith("43"):
                body = data[prefix:]
                cut = body.index("[")
                callback = self.acks.pop(int(body[:cut]), None)
                if callback is not None:
                    callback(json.loads(body[cut:])[0])

    def emit(self, event: str, data: Any, on_ack: Any) -> None:
        ack_id = next(self.ack_ids)
        self.acks[ack_id] = on_ack
        assert self.ws is not None
        frame = f"42{self.ns},{ack_id}" + json.dumps([event, data], separators=(",", ":"))
        asyncio.ensure_future(self.ws.send_str(frame))

    async def call(self, event: str, data: Any) -> Any:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.emit(event, data, lambda ack: fut.done() or fut.set_result(ack))
        return await asyncio.wait_for(fut, 30)

    async def close(self) -> None:
        if self.reader:
            self.reader.cancel()
        if self.ws is not None:
            await self.ws.close()


class BareSocket:
    """The bare relay's client: the same interface, its own tiny framing."""

    def __init__(self, http: aiohttp.ClientSession) -> None:
        self.http = http
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.acks: dict[int, Any] = {}
        self.on_message: Any = None

    async def connect(self, base: str, chat: int, side: str) -> None:
        self.ws = await self.http.ws_connect(f"{base}/ws?chat={chat}&side={side}", compress=0)
        asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            doc = json.loads(msg.data)
            if "ack" in doc:
                callback = self.acks.pop(doc["ack"], None)
                if callback:
                    callback({"ok": True, "id": doc["ack"] + 1})
            elif self.on_message:
                self.on_message(doc)

    def emit_env(self, env: dict[str, Any], on_ack: Any) -> None:
        self.acks[env["seq"]] = on_ack
        assert self.ws is not None
        asyncio.ensure_future(self.ws.send_str(json.dumps(env, separators=(",", ":"))))

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


# --------------------------------------------------------------------------- chats


@dataclass
class Side:
    name: str  # "v2c" or "c2v": the direction this side sends in
    key: bytes = b""
    next_seq: int = 0
    sent_at: dict[int, float] = field(default_factory=dict)  # seq -> perf_counter
    acked: dict[int, int] = field(default_factory=dict)  # seq -> id
    in_flight: int = 0


@dataclass
class Chat:
    index: int
    chat_id: str = ""
    v: Side = field(default_factory=lambda: Side("v2c"))
    c: Side = field(default_factory=lambda: Side("c2v"))
    received: dict[str, list[tuple[int, int]]] = field(
        default_factory=lambda: {"v2c": [], "c2v": []})  # dir -> [(id, seq)] in arrival order


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.delivered = 0
        self.refused: dict[str, int] = {}
        self.gave_up = 0  # refused with busy/unavailable even after every retry
        self.decrypt_failures = 0
        self.measuring = False

    def refusal(self, ack: Any) -> None:
        code = (ack.get("error") or {}).get("code", "?") if isinstance(ack, dict) else "?"
        self.refused[code] = self.refused.get(code, 0) + 1


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.stats = Stats()
        self.chats: list[Chat] = []
        self.sockets: list[Any] = []
        self.stop = False
        self.body = make_plaintext("x" * TEXT_CHARS)

    # -- sending and receiving

    def _envelope(self, chat: Chat, side: Side) -> dict[str, Any]:
        seq = side.next_seq
        side.next_seq += 1
        env = seal(side.key, chat.chat_id or str(chat.index), 1, side.name, seq, self.body)  # type: ignore[arg-type]
        side.sent_at[seq] = time.perf_counter()
        side.in_flight += 1
        return env

    def _on_ack(self, side: Side, seq: int, ack: Any, again: Any,
                resend: Any = None, tries: int = 0) -> None:
        side.in_flight -= 1
        if isinstance(ack, dict) and ack.get("ok"):
            side.acked[seq] = ack["id"]
        else:
            self.stats.refusal(ack)
            code = (ack.get("error") or {}).get("code") if isinstance(ack, dict) else None
            if resend is not None and code in RETRY_LATER and tries < len(RETRY_DELAYS_S):
                # As the visitor's page does: the same envelope again, a little later;
                # latency still counts from the first try.
                side.in_flight += 1
                delay = RETRY_DELAYS_S[tries] * random.uniform(0.5, 1.5)  # as the page
                asyncio.get_running_loop().call_later(delay, resend, tries + 1)
                return
            side.sent_at.pop(seq, None)
            if code in RETRY_LATER:
                self.stats.gave_up += 1
        if again is not None and not self.stop:
            again()

    def _on_message(self, chat: Chat, env: dict[str, Any], direction: str) -> None:
        now = time.perf_counter()
        sender = chat.v if direction == "v2c" else chat.c
        t0 = sender.sent_at.get(env["seq"])
        chat.received[direction].append((env.get("id", env["seq"] + 1), env["seq"]))
        if self.stats.measuring:
            self.stats.delivered += 1
            if t0 is not None:
                self.stats.latencies.append(now - t0)
        if self.args.verify and env.get("id") is not None:
            try:
                open_envelope(sender.key, direction, env)  # type: ignore[arg-type]
            except Exception:  # noqa: BLE001 - counted and reported
                self.stats.decrypt_failures += 1

    # -- setup

    async def open_tillit(self, http: aiohttp.ClientSession, bases: list[str],
                          cookies: list[str]) -> None:
        """N chats; with several processes, visitor i on process i mod P and its counselor
        on another one, so every message crosses processes (fan-out over Redis)."""
        args = self.args
        counselors: list[SioSocket] = []
        sem = asyncio.Semaphore(args.setup_parallel)

        async def one(i: int) -> None:
            async with sem:
                chat = Chat(i)
                visitor = SioSocket(http, "/visitor")
                await visitor.connect(bases[i % len(bases)])
                v_key, c_key = generate_key_pair(), generate_key_pair()
                start = {"pubkey": encode_public_key(v_key), "lang": "sv",
                         "age_group": "over_25"}

                async def solved_start() -> Any:
                    # The proof-of-work as the page does it (docs/protocol.md).
                    ch = await visitor.call("pow:challenge", {})
                    start["pow"] = {"challenge": ch["challenge"],
                                    "nonce": pow_solve(ch["challenge"], ch["bits"])}
                    return await visitor.call("chat:start", start)

                ack = await solved_start()
                for wait_s in RETRY_DELAYS_S:  # a busy server: as the page, try again
                    if (ack.get("error") or {}).get("code") != "busy":
                        break
                    await asyncio.sleep(wait_s)
                    ack = await solved_start()
                assert ack.get("ok"), ack
                chat.chat_id = ack["chat_id"]
                counselor = counselors[i // args.chats_per_counselor]
                ack = await counselor.call("chat:accept", {"chat_id": chat.chat_id,
                                                           "pubkey": encode_public_key(c_key)})
                assert ack.get("ok"), ack
                keys = derive_epoch_keys(shared_secret(c_key, encode_public_key(v_key)),
                                         chat.chat_id, 1)
                chat.v.key, chat.c.key = keys.v2c, keys.c2v
                visitor.handlers["msg:new"] = lambda env: self._on_message(chat, env, "c2v")
                chat.visitor = visitor  # type: ignore[attr-defined]
                chat.counselor = counselor  # type: ignore[attr-defined]
                self.sockets.append(visitor)
                self.chats.append(chat)

        n_counselors = -(-args.chats // args.chats_per_counselor)
        by_chat: dict[str, Chat] = {}
        for k in range(n_counselors):
            sock = SioSocket(http, "/counselor")
            # Counselor k serves chats k*per .. k*per+per-1: their visitors sit on
            # processes i mod P; put the counselor one process further on.
            first_chat = k * args.chats_per_counselor
            await sock.connect(bases[(first_chat + 1) % len(bases)],
                               {"Cookie": cookies[k % len(cookies)]})
            sock.handlers["msg:new"] = lambda env: (
                self._on_message(by_chat[env["chat_id"]], env, "v2c")
                if env["chat_id"] in by_chat else None)
            counselors.append(sock)
            self.sockets.append(sock)
        await asyncio.gather(*(one(i) for i in range(args.chats)))
        for chat in self.chats:
            by_chat[chat.chat_id] = chat

    def send_tillit(self, chat: Chat, side: Side, again: Any = None) -> None:
        env = self._envelope(chat, side)
        sock = chat.visitor if side is chat.v else chat.counselor  # type: ignore[attr-defined]
        seq = env["seq"]

        def attempt(tries: int = 0) -> None:
            sock.emit("msg:send", env,
                      lambda ack: self._on_ack(side, seq, ack, again, attempt, tries))

        attempt()

    async def open_bare(self, http: aiohttp.ClientSession, base: str) -> None:
        key = os.urandom(32)
        for i in range(self.args.chats):
            chat = Chat(i, chat_id=f"bare{i}")
            chat.v.key = chat.c.key = key
            for side in ("v", "c"):
                sock = BareSocket(http)
                await sock.connect(base.replace("http", "ws", 1), i, side)
                incoming = "c2v" if side == "v" else "v2c"
                sock.on_message = (lambda env, c=chat, d=incoming: self._on_message(c, env, d))
                setattr(chat, "visitor" if side == "v" else "counselor", sock)
                self.sockets.append(sock)
            self.chats.append(chat)

    def send_bare(self, chat: Chat, side: Side, again: Any = None) -> None:
        env = self._envelope(chat, side)
        sock = chat.visitor if side is chat.v else chat.counselor  # type: ignore[attr-defined]
        seq = env["seq"]
        sock.emit_env(env, lambda ack: self._on_ack(side, seq, ack, again))

    # -- load shapes

    async def run_rate(self, send: Any, seconds: float) -> None:
        interval = self.args.interval

        async def pace(chat: Chat, side: Side) -> None:
            await asyncio.sleep(random.uniform(0, interval))
            next_at = time.perf_counter()
            while not self.stop:
                send(chat, side)
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

        tasks = [asyncio.create_task(pace(c, s)) for c in self.chats for s in (c.v, c.c)]
        await asyncio.sleep(seconds)
        self.stop = True
        for t in tasks:
            t.cancel()

    async def run_saturation(self, send: Any, seconds: float) -> None:
        for chat in self.chats:
            for side in (chat.v, chat.c):
                def again(c: Chat = chat, s: Side = side) -> None:
                    send(c, s, lambda: again(c, s))
                for _ in range(self.args.window):
                    again()
        await asyncio.sleep(seconds)
        self.stop = True

    # -- verdict

    def outstanding(self) -> int:
        """Messages not settled yet: waiting for an ack (or a retry), or acknowledged and
        not received by the other side."""
        missing = 0
        for chat in self.chats:
            for side in (chat.v, chat.c):
                seqs = {s for _, s in chat.received[side.name]}
                missing += side.in_flight + sum(1 for seq in side.acked if seq not in seqs)
        return missing

    def check(self) -> dict[str, int]:
        lost = dup = disorder = 0
        for chat in self.chats:
            for side in (chat.v, chat.c):
                got = chat.received[side.name]
                ids = [i for i, _ in got]
                seqs = {s for _, s in got}
                dup += len(got) - len(seqs)
                disorder += sum(1 for a, b in itertools.pairwise(ids) if b <= a)
                lost += sum(1 for seq in side.acked if seq not in seqs)
        return {"lost": lost, "duplicates": dup, "out_of_order": disorder}


async def measure(args: argparse.Namespace, kind: str, tmp: Path) -> dict[str, Any]:
    """One run against Tillit (`kind` = "tillit") or the bare relay; returns its figures."""
    bench = Bench(args)
    redis_proc = None
    max_held = 0
    if kind == "bare":
        port = free_port()
        srv = Served([sys.executable, str(ROOT / "bench" / "bare_relay.py"), "--port",
                      str(port)], port)
        srv.wait_port()
        srvs, bases = [srv], [f"http://127.0.0.1:{port}"]
        base = bases[0]
    else:
        max_held = max(chats_per_account(args.chats, args.chats_per_counselor, args.accounts))
        srvs, bases, redis_proc, creds, password = start_tillit(
            args.store, args.mode != "rate", tmp, args.processes, args.database_url,
            args.redis_core, args.accounts, max_held)
        srv = srvs[0]

    def rss_all() -> int:
        return sum(rss_kib(s.pid) for s in srvs)

    def cpu_all() -> float:
        return sum(cpu_seconds(s.pid) for s in srvs)

    try:
        rss_idle = rss_all()
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            login_s = 0.0
            if kind != "bare":  # not part of the set-up: each account logs in first
                t_login = time.perf_counter()
                cookies = await login_all(http, bases[0], creds, password)
                login_s = time.perf_counter() - t_login
            t_setup, cpu_setup, gen_setup = time.perf_counter(), cpu_all(), time.process_time()
            redis_setup = cpu_seconds(redis_proc.pid) if redis_proc is not None else 0.0
            if kind == "bare":
                await bench.open_bare(http, base)
                send = bench.send_bare
            else:
                await bench.open_tillit(http, bases, cookies)
                send = bench.send_tillit
            setup_s = time.perf_counter() - t_setup
            # Who the set-up waited for: the server's and the generator's share of a core.
            setup_cpu = (round(100 * (cpu_all() - cpu_setup) / setup_s),
                         round(100 * (time.process_time() - gen_setup) / setup_s))
            # redis-server shares core 0 with the (first) server process.
            setup_cpu_redis = (round(100 * (cpu_seconds(redis_proc.pid) - redis_setup) / setup_s)
                               if redis_proc is not None else None)
            await asyncio.sleep(1.0)
            rss_open = rss_all()
            saturate = args.mode != "rate" or kind == "bare"
            warm = min(3.0, args.seconds / 5)
            shape = bench.run_saturation if saturate else bench.run_rate
            task = asyncio.create_task(shape(send, warm + args.seconds + (args.soak_minutes * 60)))
            await asyncio.sleep(warm)
            bench.stats.measuring = True
            cpu0, gen0, t0 = cpu_all(), time.process_time(), time.perf_counter()
            rss_samples = [rss_all()]
            total = args.seconds + args.soak_minutes * 60
            while time.perf_counter() - t0 < total:
                await asyncio.sleep(min(60.0, total - (time.perf_counter() - t0)))
                rss_samples.append(rss_all())
            elapsed = time.perf_counter() - t0
            cpu = cpu_all() - cpu0
            gen_cpu = time.process_time() - gen0
            bench.stats.measuring = False
            await task
            # Drain: everything acknowledged must still arrive; what has not after
            # DRAIN_LIMIT_S counts as lost.
            t_drain = time.perf_counter()
            await asyncio.sleep(0.5)
            while bench.outstanding() and time.perf_counter() - t_drain < DRAIN_LIMIT_S:  # noqa: ASYNC110 - polls a count
                await asyncio.sleep(0.5)
            drain_s = time.perf_counter() - t_drain
            rss_end = rss_all()
            verdict = bench.check()
            for sock in bench.sockets:
                await sock.close()
    finally:
        for one in srvs:
            one.stop()
        if redis_proc is not None:
            redis_proc.stop()
    lat = [x * 1000 for x in bench.stats.latencies]
    delivered = bench.stats.delivered
    return {
        "kind": kind if kind == "bare" else f"tillit/{args.store}"
                + (f" x{args.processes} processes" if args.processes > 1 else ""),
        "shape": "saturation" if (args.mode != "rate" or kind == "bare") else
                 f"rate 1/{args.interval:g}s per side",
        "chats": args.chats,
        "accounts": None if kind == "bare" else args.accounts,
        "login_s": None if kind == "bare" else round(login_s, 1),
        # The server's per-account cap: as shipped unless one account must hold more.
        "max_parallel_chats": None if kind == "bare" else max(max_held, shipped_max_parallel()),
        "setup_s": round(setup_s, 1),
        "setup_cpu_pct_server_generator": list(setup_cpu),
        "setup_cpu_pct_redis": setup_cpu_redis,
        "delivered_per_s": round(delivered / elapsed),
        "p50_ms": round(pct(lat, 0.50), 1), "p95_ms": round(pct(lat, 0.95), 1),
        "p99_ms": round(pct(lat, 0.99), 1), "max_ms": round(max(lat, default=0), 1),
        "server_cpu_pct": round(100 * cpu / elapsed), "generator_cpu_pct":
            round(100 * gen_cpu / elapsed),
        "server_us_per_msg": round(1e6 * cpu / max(1, delivered)),
        "rss_idle_mib": round(rss_idle / 1024, 1),
        "kib_per_chat_open": round((rss_open - rss_idle) / max(1, args.chats), 1),
        "kib_per_chat_after": round((rss_end - rss_idle) / max(1, args.chats), 1),
        "rss_samples_mib": [round(r / 1024, 1) for r in rss_samples],
        "refused": bench.stats.refused, "decrypt_failures": bench.stats.decrypt_failures,
        "gave_up": bench.stats.gave_up, "drain_s": round(drain_s, 1),
        **verdict,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["rate", "saturation", "bare", "compare"],
                        default="rate")
    parser.add_argument("--store", choices=["sqlite", "redis"], default="sqlite")
    parser.add_argument("--chats", type=int, default=1000)
    parser.add_argument("--chats-per-counselor", type=int, default=4,
                        help="chats per counselor socket")
    parser.add_argument("--accounts", type=int, default=0,
                        help="counselor accounts, socket k logged in as account k mod N "
                             "(default: one per counselor socket; 1: every socket on one "
                             "account, the shape before 2026-12-01 15:30)")
    parser.add_argument("--interval", type=float, default=1.0,
                        help="rate mode: seconds between two messages of one side")
    parser.add_argument("--window", type=int, default=2,
                        help="saturation: messages in flight per side")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured time")
    parser.add_argument("--redis-core", default="0", choices=["0", "1"],
                        help="the core of the redis-server (1: the generator's)")
    parser.add_argument("--setup-parallel", type=int, default=50,
                        help="chats set up at once (connect, work, start, accept)")
    parser.add_argument("--soak-minutes", type=float, default=0.0)
    parser.add_argument("--verify", action="store_true",
                        help="decrypt every received envelope (costs generator CPU)")
    parser.add_argument("--processes", type=int, default=1, choices=[1, 2],
                        help="server processes (2 needs --store redis)")
    parser.add_argument("--database-url", default="",
                        help="the durable database (PostgreSQL): each process then gets a "
                             "data directory of its own, no shared disk")
    parser.add_argument("--postgres", metavar="URL", default="",
                        help="a PostgreSQL server (postgresql://user@host:port): the run "
                             "creates a throwaway database there and drops it after")
    parser.add_argument("--json", action="store_true", help="print one JSON line per run")
    args = parser.parse_args()
    n_sockets = -(-args.chats // args.chats_per_counselor)
    args.accounts = min(args.accounts or n_sockets, n_sockets)
    if args.postgres:
        with throwaway_database(args.postgres) as url:
            args.database_url = url
            run(parser, args)
    else:
        run(parser, args)


@contextlib.contextmanager
def throwaway_database(server: str) -> Any:
    """A new PostgreSQL database `tillit_bench_<hex>` on `server`, dropped afterwards."""
    from urllib.parse import urlsplit

    parts = urlsplit(server)
    name = f"tillit_bench_{secrets.token_hex(4)}"
    where = ["-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432),
             "-U", parts.username or "postgres"]
    subprocess.run(["createdb", *where, name], check=True)
    try:
        yield f"{server.rstrip('/')}/{name}"
    finally:
        subprocess.run(["dropdb", *where, "--if-exists", name], check=False)


def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.processes > 1 and args.store != "redis":
        parser.error("several processes share chats only over Redis: add --store redis")
    if hasattr(os, "sched_setaffinity") and os.cpu_count() and os.cpu_count() > 1:
        os.sched_setaffinity(0, {1})  # the generator on core 1, servers on core 0
    # The generator stands for thousands of browsers, each with its own small heap: a
    # full collection over all their sockets at once would stall every "browser" and
    # show up as server latency (docs/architecture.md, measured fact 1, on this side of the wire).
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    with tempfile.TemporaryDirectory(prefix="tillit-bench-") as tmpdir:
        tmp = Path(tmpdir)
        kinds = {"rate": ["tillit"], "saturation": ["tillit"], "bare": ["bare"],
                 "compare": ["tillit", "bare"]}[args.mode]
        results = []
        for kind in kinds:
            run_tmp = tmp / kind
            run_tmp.mkdir()
            results.append(asyncio.run(measure(args, kind, run_tmp)))
    for r in results:
        print(json.dumps(r) if args.json else "\n".join(f"{k:>20}: {v}" for k, v in r.items()))
        print()
    if len(results) == 2:
        ratio = results[0]["delivered_per_s"] / max(1, results[1]["delivered_per_s"])
        print(f"ratio tillit/{args.store} to bare relay: {ratio:.2f}")
    worst = statistics.fmean([r["lost"] + r["duplicates"] + r["out_of_order"] for r in results])
    sys.exit(1 if worst else 0)


if __name__ == "__main__":
    main()
