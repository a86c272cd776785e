#!/usr/bin/env python3
"""A protocol double of OpenStack Swift and its auth services (v1 auth, Keystone v2.0 and v3), for
the Swift driver's tests. Objects live in memory; every request is checked the way the OpenStack
API references document it, and anything else is answered 400 and recorded in the violations file
(the test requires it to stay empty).

Checked: v1 `GET /auth/v1.0` with X-Auth-User/X-Auth-Key → X-Storage-Url, X-Auth-Token; Keystone v2
`POST /v2.0/tokens` (passwordCredentials, tenantName) → access.token.id and a serviceCatalog;
Keystone v3 `POST /v3/auth/tokens` (password method, user and project with domains) →
X-Subject-Token and token.catalog; the token on every storage request; container PUT; object PUT
(Content-Length), GET (optional `bytes=a-b` Range), HEAD, DELETE; container GET with format=json,
prefix, limit and marker. With TOKEN_USES, a token expires after that many storage requests (to
test renewal); `GET /_auths` tells how many tokens were issued, `GET /_requests` how many storage
requests came.

Usage: swift_double.py PORT_FILE USER KEY PROJECT VIOLATIONS_FILE
"""
import json, os, sys, threading, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port_file, user, key, project, violations_file = sys.argv[1:6]
account = "AUTH_" + project
lock = threading.Lock()
containers = {}
tokens = {}   # token -> storage requests left (None: unlimited)
counter = [0]
storage_requests = [0]
token_uses = int(os.environ.get("TOKEN_USES", "0")) or None


def violation(msg):
    with lock, open(violations_file, "a") as f:
        f.write(msg + "\n")


def new_token():
    with lock:
        counter[0] += 1
        t = f"tk{counter[0]:08d}"
        tokens[t] = token_uses
    return t


def use_token(t):
    with lock:
        storage_requests[0] += 1
        if t not in tokens:
            return False
        if tokens[t] is not None:
            tokens[t] -= 1
            if tokens[t] <= 0:
                del tokens[t]
        return True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def reply(self, code, body=b"", ctype="text/plain", headers=()):
        if isinstance(body, (dict, list)):
            body, ctype = json.dumps(body).encode(), "application/json"
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def bad(self, why):
        violation(f"{self.command} {self.path}: {why}")
        self.reply(400, why.encode())

    def body(self):
        n = self.headers.get("Content-Length")
        return None if n is None else self.rfile.read(int(n))

    def storage_url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1/{account}"

    def catalog_v3(self):
        return [{"type": "identity", "endpoints": []},
                {"type": "object-store", "name": "swift", "endpoints": [
                    {"interface": "internal", "region": "RegionOne", "region_id": "RegionOne", "url": "http://127.0.0.1:1/internal"},
                    {"interface": "public", "region": "RegionTwo", "region_id": "RegionTwo", "url": "http://127.0.0.1:1/other-region"},
                    {"interface": "public", "region": "RegionOne", "region_id": "RegionOne", "url": self.storage_url()}]}]

    def route(self):
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        path = url.path
        if path == "/_auths" and self.command == "GET":
            return self.reply(200, str(counter[0]).encode())
        if path == "/_requests" and self.command == "GET":
            return self.reply(200, str(storage_requests[0]).encode())
        if path == "/auth/v1.0":
            if self.command != "GET":
                return self.bad("v1 auth takes GET")
            if self.headers.get("X-Auth-User") != user or self.headers.get("X-Auth-Key") != key:
                return self.reply(401, b"Unauthorized")
            return self.reply(200, b"", headers=[("X-Storage-Url", self.storage_url()), ("X-Auth-Token", new_token())])
        if path == "/v2.0/tokens":
            if self.command != "POST" or self.headers.get("Content-Type") != "application/json":
                return self.bad("Keystone v2 tokens: POST with a JSON body")
            a = json.loads(self.body() or b"{}").get("auth", {})
            creds = a.get("passwordCredentials", {})
            if "tenantName" not in a or "username" not in creds or "password" not in creds:
                return self.bad("Keystone v2: auth.passwordCredentials.{username,password} and auth.tenantName required")
            if (creds["username"], creds["password"], a["tenantName"]) != (user, key, project):
                return self.reply(401, {"error": {"code": 401, "message": "The request you have made requires authentication."}})
            return self.reply(200, {"access": {"token": {"id": new_token()}, "serviceCatalog": [
                {"type": "object-store", "endpoints": [{"region": "RegionOne", "publicURL": self.storage_url()}]}]}})
        if path == "/v3/auth/tokens":
            if self.command != "POST" or self.headers.get("Content-Type") != "application/json":
                return self.bad("Keystone v3 tokens: POST with a JSON body")
            a = json.loads(self.body() or b"{}").get("auth", {})
            ident, scope = a.get("identity", {}), a.get("scope", {}).get("project", {})
            u = ident.get("password", {}).get("user", {})
            if ident.get("methods") != ["password"] or "domain" not in u or "name" not in u or "domain" not in scope or "name" not in scope:
                return self.bad("Keystone v3: password method, user and project with name and domain required")
            if (u.get("name"), u.get("password"), scope.get("name")) != (user, key, project):
                return self.reply(401, {"error": {"code": 401, "message": "The request you have made requires authentication."}})
            return self.reply(201, {"token": {"catalog": self.catalog_v3()}}, headers=[("X-Subject-Token", new_token())])
        prefix = f"/v1/{account}/"
        if not path.startswith(prefix):
            return self.bad("not an auth or storage path")
        if not use_token(self.headers.get("X-Auth-Token")):
            return self.reply(401, b"<html><h1>Unauthorized</h1><p>This server could not verify that you are authorized.</p></html>", "text/html")
        rest = path[len(prefix):]
        container, _, obj = rest.partition("/")
        container, obj = urllib.parse.unquote(container), urllib.parse.unquote(obj)
        if not obj:
            if self.command == "PUT":
                with lock:
                    created = container not in containers
                    containers.setdefault(container, {})
                return self.reply(201 if created else 202)
            if self.command == "GET":
                if q.get("format") != ["json"]:
                    return self.bad("listings are asked for with format=json")
                with lock:
                    if container not in containers:
                        return self.reply(404, b"Not Found")
                    names = sorted(n for n in containers[container] if n.startswith(q.get("prefix", [""])[0]))
                    marker = q.get("marker", [""])[0]
                    names = [n for n in names if n > marker]
                    page = [{"name": n, "bytes": len(containers[container][n]), "content_type": "application/octet-stream"}
                            for n in names[:int(q.get("limit", ["10000"])[0])]]
                return self.reply(200, page) if page else self.reply(200, [])
            return self.bad("unexpected method on a container")
        with lock:
            objs = containers.get(container)
            data = None if objs is None else objs.get(obj)
        if objs is None:
            return self.reply(404, b"Not Found")
        if self.command == "PUT":
            data = self.body()
            if data is None:
                return self.bad("object PUT without Content-Length")
            with lock:
                objs[obj] = data
            return self.reply(201)
        if data is None:
            return self.reply(404, b"Not Found")
        if self.command == "DELETE":
            with lock:
                objs.pop(obj, None)
            return self.reply(204)
        if self.command == "HEAD":
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            return
        if self.command != "GET":
            return self.bad("unexpected method on an object")
        rng = self.headers.get("Range")
        if rng is None:
            return self.reply(200, data, "application/octet-stream")
        if not rng.startswith("bytes="):
            return self.bad("Range must be bytes=")
        a, _, b = rng[6:].partition("-")
        a, b = int(a), (int(b) if b else len(data) - 1)
        if a >= len(data):
            return self.reply(416, b"Requested Range Not Satisfiable")
        return self.reply(206, data[a:b + 1], "application/octet-stream",
                          [("Content-Range", f"bytes {a}-{min(b, len(data) - 1)}/{len(data)}")])

    do_GET = do_POST = do_DELETE = do_PUT = do_HEAD = route


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
