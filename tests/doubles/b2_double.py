#!/usr/bin/env python3
"""A protocol double of Backblaze B2's native API (b2api v2), for the B2 driver's tests. Files live
in memory, with versions; every request is checked the way B2's API documentation describes it,
and anything else is answered 400 and recorded in the violations file (which must stay empty).

Checked: b2_authorize_account (Basic auth of key id and key); the account token on every API call
and download, the upload token (only from b2_get_upload_url) on uploads; b2_list_buckets,
b2_create_bucket (allPrivate), b2_get_upload_url; uploads with X-Bz-File-Name (percent-encoded),
Content-Length, Content-Type and X-Bz-Content-Sha1 verified against the body; download by name
(optional `bytes=a-b` Range, HEAD); b2_list_file_names (prefix, startFileName, maxFileCount,
nextFileName); b2_list_file_versions; b2_delete_file_version (fileName and fileId must match).
With TOKEN_USES, account tokens expire after that many requests (to test renewal); `GET /_auths`
tells how many were issued, `GET /_requests` how many requests carried one.

Usage: b2_double.py PORT_FILE KEY_ID KEY VIOLATIONS_FILE
"""
import base64, hashlib, json, os, sys, threading, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port_file, key_id, app_key, violations_file = sys.argv[1:5]
lock = threading.Lock()
buckets = {}        # name -> {"id": ..., "files": {name: [(file_id, data), ...]}}
tokens = {}         # account token -> uses left (None: unlimited)
upload_tokens = set()
seq = [0]
auths = [0]
token_requests = [0]
token_uses = int(os.environ.get("TOKEN_USES", "0")) or None


def violation(msg):
    with lock, open(violations_file, "a") as f:
        f.write(msg + "\n")


def next_id(prefix):
    with lock:
        seq[0] += 1
        return f"{prefix}{seq[0]:010d}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def reply(self, code, body=b"", ctype="application/json", headers=()):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def fail(self, status, code, message):
        self.reply(status, {"status": status, "code": code, "message": message})

    def bad(self, why):
        violation(f"{self.command} {self.path}: {why}")
        self.fail(400, "bad_request", why)

    def body(self):
        n = self.headers.get("Content-Length")
        return None if n is None else self.rfile.read(int(n))

    def account_token_ok(self):
        t = self.headers.get("Authorization")
        with lock:
            token_requests[0] += 1
            if t not in tokens:
                ok = False
            else:
                ok = True
                if tokens[t] is not None:
                    tokens[t] -= 1
                    if tokens[t] <= 0:
                        del tokens[t]
        if not ok:
            self.fail(401, "expired_auth_token", "Authorization token has expired")
        return ok

    def route(self):
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        if path in ("/_auths", "/_requests") and self.command == "GET":
            return self.reply(200, str((auths if path == "/_auths" else token_requests)[0]).encode(), "text/plain")
        if path == "/b2api/v2/b2_authorize_account":
            if self.command != "GET":
                return self.bad("b2_authorize_account takes GET")
            want = "Basic " + base64.b64encode(f"{key_id}:{app_key}".encode()).decode()
            if self.headers.get("Authorization") != want:
                return self.fail(401, "unauthorized", "")
            t = next_id("acct_")
            with lock:
                tokens[t] = token_uses
                auths[0] += 1
            return self.reply(200, {"accountId": key_id, "authorizationToken": t, "apiUrl": base + "/api",
                                    "downloadUrl": base + "/dl", "recommendedPartSize": 100000000, "absoluteMinimumPartSize": 5000000})
        if path.startswith("/upload/"):
            if self.command != "POST":
                return self.bad("uploads take POST")
            if self.headers.get("Authorization") not in upload_tokens:
                return self.fail(401, "expired_auth_token", "upload token not valid")
            bucket_id = path[len("/upload/"):]
            data = self.body()
            name = self.headers.get("X-Bz-File-Name")
            sha1 = self.headers.get("X-Bz-Content-Sha1")
            if data is None or name is None or sha1 is None or self.headers.get("Content-Type") is None:
                return self.bad("uploads need Content-Length, X-Bz-File-Name, Content-Type and X-Bz-Content-Sha1")
            if sha1 != "do_not_verify" and sha1 != hashlib.sha1(data).hexdigest():
                return self.fail(400, "bad_request", "Checksum did not match data received")
            name = urllib.parse.unquote(name)
            fid = next_id("4_z")
            with lock:
                b = next((b for b in buckets.values() if b["id"] == bucket_id), None)
                if b is not None:
                    b["files"].setdefault(name, []).insert(0, (fid, data))
            if b is None:
                return self.bad("upload URL of an unknown bucket")
            return self.reply(200, {"fileId": fid, "fileName": name, "contentLength": len(data), "contentSha1": sha1})
        if path.startswith("/dl/file/"):
            if self.command not in ("GET", "HEAD"):
                return self.bad("downloads take GET or HEAD")
            if not self.account_token_ok():
                return
            bucket, _, name = path[len("/dl/file/"):].partition("/")
            bucket, name = urllib.parse.unquote(bucket), urllib.parse.unquote(name)
            with lock:
                versions = buckets.get(bucket, {}).get("files", {}).get(name)
            if not versions:
                return self.fail(404, "not_found", f"File not present: {name}")
            data = versions[0][1]
            rng = self.headers.get("Range")
            if rng is None:
                return self.reply(200, data, "application/octet-stream")
            if not rng.startswith("bytes="):
                return self.bad("Range must be bytes=")
            a, _, e = rng[6:].partition("-")
            a, e = int(a), (int(e) if e else len(data) - 1)
            if a >= len(data):
                return self.fail(416, "range_not_satisfiable", "")
            return self.reply(206, data[a:e + 1], "application/octet-stream", [("Content-Range", f"bytes {a}-{min(e, len(data) - 1)}/{len(data)}")])
        if not path.startswith("/api/b2api/v2/"):
            return self.bad("not a B2 API path")
        if self.command != "POST" or self.headers.get("Content-Type", "").split(";")[0] != "application/json":
            return self.bad("API calls are POSTs with a JSON body")
        if not self.account_token_ok():
            return
        op = path[len("/api/b2api/v2/"):]
        req = json.loads(self.body() or b"{}")
        with lock:
            by_id = {b["id"]: b for b in buckets.values()}
        if op == "b2_list_buckets":
            if req.get("accountId") != key_id:
                return self.bad("b2_list_buckets needs the accountId")
            with lock:
                bs = [{"bucketId": b["id"], "bucketName": n, "bucketType": "allPrivate"} for n, b in buckets.items()
                      if "bucketName" not in req or req["bucketName"] == n]
            return self.reply(200, {"buckets": bs})
        if op == "b2_create_bucket":
            if req.get("accountId") != key_id or req.get("bucketType") not in ("allPrivate", "allPublic") or "bucketName" not in req:
                return self.bad("b2_create_bucket needs accountId, bucketName and bucketType")
            with lock:
                if req["bucketName"] in buckets:
                    return self.fail(400, "duplicate_bucket_name", "Bucket name is already in use.")
                buckets[req["bucketName"]] = {"id": "b" + req["bucketName"], "files": {}}
            return self.reply(200, {"bucketId": "b" + req["bucketName"], "bucketName": req["bucketName"]})
        if op == "b2_get_upload_url":
            if req.get("bucketId") not in by_id:
                return self.bad("b2_get_upload_url needs a known bucketId")
            t = next_id("up_")
            with lock:
                upload_tokens.add(t)
            return self.reply(200, {"bucketId": req["bucketId"], "uploadUrl": f"{base}/upload/{req['bucketId']}", "authorizationToken": t})
        if op in ("b2_list_file_names", "b2_list_file_versions"):
            b = by_id.get(req.get("bucketId"))
            if b is None:
                return self.bad(f"{op} needs a known bucketId")
            limit = int(req.get("maxFileCount", 100))
            if not 1 <= limit <= 10000:
                return self.bad("maxFileCount must be 1…10000")
            prefix, start = req.get("prefix", ""), req.get("startFileName", "")
            with lock:
                names = sorted(n for n in b["files"] if n.startswith(prefix) and n >= start and b["files"][n])
                rows = []
                for n in names:
                    vs = b["files"][n] if op == "b2_list_file_versions" else b["files"][n][:1]
                    rows += [{"fileName": n, "fileId": fid, "contentLength": len(d), "action": "upload"} for fid, d in vs]
            out = {"files": rows[:limit], "nextFileName": rows[limit]["fileName"] if len(rows) > limit else None}
            return self.reply(200, out)
        if op == "b2_delete_file_version":
            if "fileName" not in req or "fileId" not in req:
                return self.bad("b2_delete_file_version needs fileName and fileId")
            with lock:
                for b in buckets.values():
                    vs = b["files"].get(req["fileName"], [])
                    for i, (fid, _) in enumerate(vs):
                        if fid == req["fileId"]:
                            del vs[i]
                            return self.reply(200, {"fileId": fid, "fileName": req["fileName"]})
            return self.fail(400, "file_not_present", "File not present")
        return self.bad(f"unknown operation {op}")

    do_GET = do_POST = do_DELETE = do_PUT = do_HEAD = route


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
