# Test doubles of qlink-sim, qkmd and qlinkd for the demo orchestrator's tests: same command lines,
# announcements, ready files, telemetry and ETSI 014 (mutual TLS) as the real programs, trivial insides.
#   fake_daemons.py sim|qkmd|qlinkd <the real program's arguments>
# The simulated pass lasts FAKE_PASS_S simulated seconds (environment, default 40); the ground link
# is down for the fourth tenth of it (a "fade"), during which the space side holds user data back.
import base64, hashlib, http.server, json, math, os, socket, ssl, sys, threading, time, tomllib, uuid

PASS_S = float(os.environ.get("FAKE_PASS_S", "40"))


def arg(name, default=None):
    a = sys.argv
    return a[a.index(name) + 1] if name in a else default


def write_ready(path, obj):
    with open(path + ".tmp", "w") as f:
        json.dump(obj, f)
    os.rename(path + ".tmp", path)


def http_server(port, handler_cls, tls=None):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler_cls)
    if tls:
        srv.socket = tls.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


class quiet_handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, code, body, ctype="application/json"):
        b = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)


# ------------------------------------------------------------------ qlink-sim serve --pass
def run_sim():
    speed = float(arg("--speed", "1"))
    air = socket.create_server(("127.0.0.1", 0))
    qkd = socket.create_server(("127.0.0.1", 0))
    print("air-port", air.getsockname()[1], flush=True)
    print("qkd-port", qkd.getsockname()[1], flush=True)
    if arg("--control-port") is not None:
        # The control port's line protocol, enough for the demo's scripted cloud (logged to stdout).
        ctl = socket.create_server(("127.0.0.1", 0))
        print("control-port", ctl.getsockname()[1], flush=True)

        def control():
            while True:
                c, _ = ctl.accept()
                line = c.makefile("rb").readline().decode().strip()
                print("control:", line, flush=True)
                c.sendall(b"OK cloud 1.000 2.000\n" if line.startswith("cloud ") else b"ERR unknown command\n")
                c.close()

        threading.Thread(target=control, daemon=True).start()
    print("pass start 2026-01-01T00:00:00Z aos 2026-01-01T00:00:01Z los 2026-01-01T00:00:%02dZ max-elevation 60.00"
          " duration-s %.1f speed %s downlink-bps 1000000 return-bps 10000 pulse-rate-hz 1e+08" % (PASS_S - 2, PASS_S, speed),
          flush=True)
    print("ready", flush=True)
    peers = {}
    ready = threading.Event()

    def accept():
        while True:
            c, _ = air.accept()
            role = c.makefile("rb").readline().decode().strip()
            peers[role] = c
            if "space" in peers and "ground" in peers:
                ready.set()

    threading.Thread(target=accept, daemon=True).start()
    ready.wait()
    t0 = time.time()
    for c in peers.values():
        c.sendall(("START %.6f %.3f\n" % (t0, speed)).encode())
    # Relay the space side's bytes to the ground side (the "downlink").
    src, dst = peers["space"], peers["ground"]
    while True:
        b = src.recv(65536)
        if not b:
            break
        dst.sendall(b)
    time.sleep(3600)


# ------------------------------------------------------------------ qkmd
def run_qkmd():
    cfg = tomllib.load(open(arg("--config"), "rb"))
    kme = cfg["kme"]["id"]
    alice = kme == "KME_A"
    served, lock = set(), threading.Lock()
    counter = [0]

    def material(kid):
        return base64.b64encode(hashlib.sha256(b"fake-qkd" + kid.encode()).digest()).decode()

    class etsi(quiet_handler):
        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(n) or b"{}")
            if self.path.endswith("/enc_keys"):
                keys = []
                with lock:
                    for _ in range(int(body.get("number", 1))):
                        counter[0] += 1
                        kid = str(uuid.UUID(int=(counter[0] << 1) | (0 if alice else 1)))
                        served.add(kid)
                        keys.append({"key_ID": kid, "key": material(kid)})
                return self.reply(200, json.dumps({"keys": keys}))
            if self.path.endswith("/dec_keys"):
                ids = [k["key_ID"] for k in body.get("key_IDs", [])]
                with lock:
                    if any(i in served for i in ids):
                        return self.reply(400, json.dumps({"message": "key already served"}))
                    served.update(ids)
                return self.reply(200, json.dumps({"keys": [{"key_ID": i, "key": material(i)} for i in ids]}))
            self.reply(404, "{}")

    class metrics(quiet_handler):
        def do_GET(self):
            self.reply(200, 'qkmd_keys_stored{state="active"} 42\nqkmd_qber 0.031\nqkmd_secret_key_rate_bps 1500\n',
                       "text/plain")

    e = cfg["etsi014"]
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(e["cert"], e["key"])
    tls.load_verify_locations(e["ca"])
    tls.verify_mode = ssl.CERT_REQUIRED
    es = http_server(int(e["port"]), etsi, tls)
    ms = http_server(int(cfg["metrics"]["port"]), metrics)
    peer = socket.create_server(("127.0.0.1", int(cfg["source"].get("peer_port", 0)) if alice else 0))
    write_ready(arg("--ready-file"), {"etsi014_port": es.server_address[1], "metrics_port": ms.server_address[1],
                                      "peer_port": peer.getsockname()[1] if alice else 0})
    print("qkmd", kme, "running", flush=True)
    time.sleep(3600)


# ------------------------------------------------------------------ qlinkd
def run_qlinkd():
    cfg = tomllib.load(open(arg("--config"), "rb"))
    role = cfg["link"]["role"]
    rotate = float(cfg.get("security", {}).get("rotate_every_s", 30))
    st = {"t0": None, "speed": 1.0, "in": 0, "out": 0}
    users = []

    def sim_time():
        return (time.time() - st["t0"]) * st["speed"] if st["t0"] else None

    def state(t):
        if t is None:
            return "idle"
        if t >= PASS_S:
            return "ended"
        return "down" if 0.4 * PASS_S <= t < 0.5 * PASS_S else "up"

    air = socket.create_connection(("127.0.0.1", int(cfg["air"]["port"])))
    if os.environ.get("FAKE_QAIR"):
        return run_qlinkd_qair(cfg, role, rotate, air)
    air.sendall((role + "\n").encode())
    f = air.makefile("rb")
    start = f.readline().decode().split()
    st["t0"], st["speed"] = float(start[1]), float(start[2])

    class telemetry(quiet_handler):
        def do_GET(self):
            t = sim_time()
            tt = t or 0.0
            rot = int(tt // rotate)
            s = {"role": role, "sim_time": t, "link_state": state(t), "pat_state": "n/a",
                 "elevation_deg": 10 + 50 * math.sin(math.pi * min(tt, PASS_S) / PASS_S),
                 "rx_power_dbm": -95.0 if state(t) == "down" else -60.0, "esn0_db": 9.5,
                 "frames": {"tx": int(tt * 100), "rx_ok": int(tt * 99), "rx_crc_fail": int(tt // 7),
                            "rs_corrected": int(tt * 30), "ldpc_iterations": None, "decode_fail": int(tt // 11)},
                 "bits": {"rx_channel_errors_est": int(tt * 240)},
                 "arq": {"retransmissions": 0 if tt < 0.5 * PASS_S else 17, "in_flight": 4,
                         "bytes_delivered": st["out"], "bytes_acked": st["in"]},
                 "keys": {"active_key_id": (100 if role == "space" else 500) + rot, "rotations": rot,
                          "keys_consumed": 2 * (rot + 1), "pool_level": 42},
                 "qkd": {"qber": 0.031, "secret_key_rate_bps": 1500.0},
                 "user": {"bytes_in": st["in"], "bytes_out": st["out"]}}
            if self.path == "/status":
                return self.reply(200, json.dumps(s))
            if self.path == "/metrics":
                return self.reply(200, "qlinkd_downlink_bps 1000000\nqlinkd_return_bps 10000\n", "text/plain")
            self.reply(404, "{}")

    tel = http_server(int(cfg.get("telemetry", {}).get("port", 0)), telemetry)
    user = socket.create_server(("127.0.0.1", int(cfg.get("user", {}).get("tcp_port", 0))))
    write_ready(arg("--ready-file"), {"telemetry_port": tel.server_address[1], "user_tcp_port": user.getsockname()[1],
                                      "user_udp_port": 0})
    print("telemetry-port", tel.server_address[1], flush=True)
    print("ready", flush=True)

    def accept():
        while True:
            c, _ = user.accept()
            users.append(c)
            if role == "space":
                threading.Thread(target=uplink, args=(c,), daemon=True).start()

    def uplink(c):
        while True:
            b = c.recv(4096)
            if not b:
                return
            st["in"] += len(b)
            while state(sim_time()) == "down":  # the fade: ARQ holds the data back
                time.sleep(0.01)
            air.sendall(b)

    threading.Thread(target=accept, daemon=True).start()
    die_at = os.environ.get("FAKE_GROUND_DIES_AT")
    if role == "ground" and die_at:
        def die():
            while (sim_time() or 0) < float(die_at):
                time.sleep(0.01)
            print("ground side giving up", file=sys.stderr, flush=True)
            os._exit(7)
        threading.Thread(target=die, daemon=True).start()
    if role == "ground":
        while True:
            b = f.read1(65536)
            if not b:
                break
            while not users:
                time.sleep(0.01)
            users[-1].sendall(b)
            st["out"] += len(b)
    time.sleep(3600)


# ------------------------------------------------------------------ qlinkd on the real relay (FAKE_QAIR=1)
# Speaks the QAIR1 air protocol of qlink-sim serve --pass (idle bits out, LLR messages in: sim time,
# link flag, elevation, power from the trailers); user data takes a side channel between the two fakes,
# held back while the ground side's link flag is down.
def run_qlinkd_qair(cfg, role, rotate, air):
    import struct
    air.sendall(("QAIR1 %s\n" % role).encode())
    f = air.makefile("rb")
    ok = f.readline().decode().split()
    if not ok or ok[0] != "OK":
        print("relay refused:", ok, file=sys.stderr, flush=True)
        os._exit(1)
    down_bps, ret_bps = float(ok[1]), float(ok[2])
    st = {"t": None, "up": False, "ended": False, "el": None, "pw": None, "es": None, "in": 0, "out": 0, "ups": 0,
          "downs": 0, "llrs": 0}
    here = os.path.dirname(os.path.abspath(arg("--config")))

    def sender():
        hdr = struct.pack("<IHHIIdd", 0x52494151, 1, 0, 8192, 0, 0.0, 0.0)
        while True:
            air.sendall(hdr + bytes(1024))

    threading.Thread(target=sender, daemon=True).start()

    def receiver():
        while True:
            h = f.read(32)
            if len(h) < 32:
                return
            magic, typ, flags, count, _, t, _ = struct.unpack("<IHHIIdd", h)
            if typ == 3:
                st["ended"] = True
                continue
            if typ == 2:
                f.read(count)
                el, pw, es, _ = struct.unpack("<ffff", f.read(16))
                up = bool(flags & 1)
                if up and not st["up"]:
                    st["ups"] += 1
                if not up and st["up"]:
                    st["downs"] += 1
                st.update(t=t, up=up, el=el, pw=pw, es=es)
                st["llrs"] += count

    threading.Thread(target=receiver, daemon=True).start()

    def state():
        if st["ended"]:
            return "ended"
        if st["t"] is None:
            return "idle"
        return "up" if st["up"] else "down"

    class telemetry(quiet_handler):
        def do_GET(self):
            t = st["t"]
            rot = int((t or 0) // rotate)
            s = {"role": role, "sim_time": t, "link_state": state(), "pat_state": "n/a",
                 "elevation_deg": st["el"], "rx_power_dbm": st["pw"], "esn0_db": st["es"],
                 "frames": {"tx": None, "rx_ok": None, "rx_crc_fail": None, "rs_corrected": None,
                            "ldpc_iterations": None, "decode_fail": None},
                 "bits": {"rx_channel_errors_est": None},
                 "arq": {"retransmissions": st["downs"] * 3, "in_flight": 0, "bytes_delivered": st["out"],
                         "bytes_acked": st["in"]},
                 "keys": {"active_key_id": (100 if role == "space" else 500) + rot, "rotations": rot,
                          "keys_consumed": rot + 1, "pool_level": None},
                 "qkd": {"qber": None, "secret_key_rate_bps": None},
                 "user": {"bytes_in": st["in"], "bytes_out": st["out"]}}
            if self.path == "/status":
                return self.reply(200, json.dumps(s))
            if self.path == "/metrics":
                return self.reply(200, "qlinkd_downlink_bps %g\nqlinkd_return_bps %g\n" % (down_bps, ret_bps), "text/plain")
            self.reply(404, "{}")

    tel = http_server(int(cfg.get("telemetry", {}).get("port", 0)), telemetry)
    user = socket.create_server(("127.0.0.1", int(cfg.get("user", {}).get("tcp_port", 0))))
    side = socket.create_server(("127.0.0.1", 0))
    write_ready(arg("--ready-file"), {"telemetry_port": tel.server_address[1], "user_tcp_port": user.getsockname()[1],
                                      "user_udp_port": 0, "fake_side_port": side.getsockname()[1]})
    if role == "space":
        while True:
            c, _ = user.accept()
            ready = os.path.join(here, "..", "ground", "ready.json")
            while not os.path.exists(ready):
                time.sleep(0.05)
            g = socket.create_connection(("127.0.0.1", json.load(open(ready))["fake_side_port"]))
            while True:
                b = c.recv(4096)
                if not b:
                    break
                st["in"] += len(b)
                g.sendall(b)
    else:
        users = []
        threading.Thread(target=lambda: [users.append(user.accept()[0]) for _ in iter(int, 1)], daemon=True).start()
        c, _ = side.accept()
        while True:
            b = c.recv(4096)
            if not b:
                break
            while not users or not st["up"]:
                time.sleep(0.01)
            users[-1].sendall(b)
            st["out"] += len(b)
    time.sleep(3600)


{"sim": run_sim, "qkmd": run_qkmd, "qlinkd": run_qlinkd}[sys.argv[1]]()
