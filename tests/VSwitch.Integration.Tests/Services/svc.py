#!/usr/bin/python3
# Backends and clients for ServiceTests (run inside test namespaces). Modes:
#   http NAME PORT            HTTP/1.1 server: GET / answers "NAME\n" (keep-alive); GET /count answers how many / it served
#   udp NAME PORT             UDP server: answers every datagram with "NAME"
#   steady URL DIR SECONDS    new connections every 20 ms for SECONDS; first opens keep-alive connections to two
#                             distinct backends (prints "kept A B"), uses them every 200 ms; a file DIR/killed marks
#                             the kill time; prints one JSON line of results
#   drain URL DIR N           a keep-alive connection (prints "kept A"), waits for DIR/drained, then N new
#                             connections and one more request on the kept one; prints JSON
#   fill URL N                a keep-alive connection, then N more held open (1 s to connect each), then the kept one again
#   clients VIP PREFIX FIRST N one new connection from each source PREFIX.FIRST..; prints JSON source -> backend
#   udpclient VIP PORT N      N datagrams from N source ports; prints JSON: backends seen, reply sources
import http.client, http.server, json, os, socket, socketserver, sys, time, urllib.parse

def serve_http(name, port):
    count = [0]
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def do_GET(self):
            if self.path == "/count":
                b = f"{count[0]}\n".encode()
            else:
                count[0] += 1
                b = (name + "\n").encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(b)))
            self.end_headers()
            self.wfile.write(b)
        def log_message(self, *a): pass
    class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 512
    S(("0.0.0.0", port), H).serve_forever()

def serve_udp(name, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    while True:
        data, addr = s.recvfrom(2048)
        s.sendto(name.encode(), addr)

def get(host, port, conn=None, timeout=1.0):
    c = conn or http.client.HTTPConnection(host, port, timeout=timeout)
    c.request("GET", "/")
    r = c.getresponse()
    body = r.read().decode().strip()
    if conn is None: c.close()
    return body

def steady(url, d, seconds):
    u = urllib.parse.urlparse(url); host, port = u.hostname, u.port or 80
    kept = {}
    for _ in range(200):
        c = http.client.HTTPConnection(host, port, timeout=2)
        b = get(host, port, c)
        if b not in kept and len(kept) < 2: kept[b] = c
        else: c.close()
        if len(kept) == 2: break
    print("kept " + " ".join(kept), flush=True)
    results, kept_fail, killed_at = [], [], None
    end = time.monotonic() + seconds
    last_kept = 0
    while time.monotonic() < end:
        now = time.monotonic()
        if killed_at is None and os.path.exists(os.path.join(d, "killed")): killed_at = now
        try: results.append((now, True, get(host, port)))
        except Exception as e: results.append((now, False, str(e)))
        if now - last_kept > 0.2:
            last_kept = now
            for name, c in kept.items():
                try:
                    b = get(host, port, c)
                    if b != name: kept_fail.append(f"{name} answered by {b}")
                except Exception as e: kept_fail.append(f"{name}: {e}")
        time.sleep(0.02)
    fails_after = [t - killed_at for t, ok, _ in results if not ok] if killed_at else []
    print(json.dumps({"requests": len(results), "failed": sum(1 for r in results if not r[1]),
                      "failedAfterKillSeconds": fails_after, "killSeen": killed_at is not None,
                      "keptFailures": kept_fail, "keptUses": int(seconds / 0.2),
                      "backendsAfterKill": sorted({b for t, ok, b in results if ok and killed_at and t > killed_at + 3})}), flush=True)

def drain(url, d, n):
    u = urllib.parse.urlparse(url); host, port = u.hostname, u.port or 80
    c = http.client.HTTPConnection(host, port, timeout=2)
    first = get(host, port, c)
    print("kept " + first, flush=True)
    deadline = time.monotonic() + 30
    while not os.path.exists(os.path.join(d, "drained")) and time.monotonic() < deadline: time.sleep(0.02)
    seen, failed = {}, 0
    for _ in range(n):
        try:
            b = get(host, port)
            seen[b] = seen.get(b, 0) + 1
        except Exception: failed += 1
    try: again = get(host, port, c)
    except Exception as e: again = "error: " + str(e)
    print(json.dumps({"kept": first, "keptAgain": again, "newBackends": seen, "failed": failed}), flush=True)

def udpclient(vip, port, n):
    seen, sources, lost = {}, set(), 0
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(1.0)
        s.sendto(b"hello", (vip, port))
        try:
            data, addr = s.recvfrom(2048)
            seen[data.decode()] = seen.get(data.decode(), 0) + 1
            sources.add(f"{addr[0]}:{addr[1]}")
        except socket.timeout: lost += 1
        s.close()
    print(json.dumps({"backends": seen, "sources": sorted(sources), "lost": lost}), flush=True)

def fill(url, n):
    u = urllib.parse.urlparse(url); host, port = u.hostname, u.port or 80
    k = http.client.HTTPConnection(host, port, timeout=2)
    first = get(host, port, k)
    held, ok, failed = [], 0, 0
    for _ in range(n):
        s = socket.socket()
        s.settimeout(1.0)
        try:
            s.connect((host, port)); held.append(s); ok += 1
        except OSError:
            failed += 1; s.close()
    try: again = get(host, port, k)
    except Exception as e: again = "error: " + str(e)
    print(json.dumps({"first": first, "again": again, "opened": ok, "refused": failed}), flush=True)

def clients(vip, prefix, first, count):
    out = {}
    for i in range(first, first + count):
        src = f"{prefix}.{i}"
        c = http.client.HTTPConnection(vip, 80, timeout=2, source_address=(src, 0))
        try: out[src] = get(vip, 80, c)
        except Exception as e: out[src] = "error: " + str(e)
        c.close()
    print(json.dumps(out), flush=True)

m = sys.argv[1]
if m == "http": serve_http(sys.argv[2], int(sys.argv[3]))
elif m == "udp": serve_udp(sys.argv[2], int(sys.argv[3]))
elif m == "steady": steady(sys.argv[2], sys.argv[3], float(sys.argv[4]))
elif m == "drain": drain(sys.argv[2], sys.argv[3], int(sys.argv[4]))
elif m == "clients": clients(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
elif m == "fill": fill(sys.argv[2], int(sys.argv[3]))
elif m == "udpclient": udpclient(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
