#!/usr/bin/env python3
"""A protocol double of Google Cloud Storage's JSON API and Google's OAuth 2.0 token endpoint, for
the GCS driver's tests (no real GCS server can be installed here). It keeps objects in memory and
checks every request the way Google documents it; anything else is answered 400 and recorded in
the violations file, which the test requires to stay empty.

Checked: the JWT bearer grant (form body, grant_type, RS256 header, iss/aud/scope/iat/exp claims,
and the signature, verified with `openssl dgst` against the service account's public key); a
`Authorization: Bearer` token it issued on every storage call; methods and paths of buckets.get,
buckets.insert (project query, JSON body), objects.insert (uploadType=media, name, Content-Length),
objects.get (metadata, or alt=media with an optional `bytes=a-b` Range), objects.list (prefix,
maxResults, pageToken) and objects.delete.

Usage: gcs_double.py PORT_FILE PUBLIC_KEY_PEM CLIENT_EMAIL VIOLATIONS_FILE [PAGE_LIMIT]
Writes the port it listens on (127.0.0.1) to PORT_FILE.
"""
import base64, json, os, subprocess, sys, tempfile, threading, time, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port_file, pubkey, email, violations_file = sys.argv[1:5]
page_limit = int(sys.argv[5]) if len(sys.argv) > 5 else 1000
lock = threading.Lock()
buckets = {}          # name -> {object name -> bytes}
tokens = set()
token_uri_path = "/token"


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def violation(msg):
    with lock, open(violations_file, "a") as f:
        f.write(msg + "\n")


def verify_rs256(signing_input, signature):
    with tempfile.NamedTemporaryFile(delete=False) as sig, tempfile.NamedTemporaryFile(delete=False) as data:
        sig.write(signature)
        data.write(signing_input)
    try:
        r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", pubkey, "-signature", sig.name, data.name], capture_output=True)
        return r.returncode == 0
    finally:
        os.unlink(sig.name)
        os.unlink(data.name)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes

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

    def bad(self, why):
        violation(f"{self.command} {self.path}: {why}")
        self.reply(400, {"error": {"code": 400, "message": why}})

    def error(self, code, message):
        self.reply(code, {"error": {"code": code, "message": message}})

    def body(self):
        n = self.headers.get("Content-Length")
        if n is None:
            return None
        return self.rfile.read(int(n))

    def authorized(self):
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in tokens:
            self.error(401, "Invalid Credentials")
            return False
        return True

    # --- OAuth 2.0 token endpoint -------------------------------------------------------------
    def token(self):
        if self.headers.get("Content-Type", "").split(";")[0] != "application/x-www-form-urlencoded":
            return self.bad("token request must be form-encoded")
        form = urllib.parse.parse_qs((self.body() or b"").decode())
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            return self.bad("grant_type must be the JWT bearer grant")
        parts = form.get("assertion", [""])[0].split(".")
        if len(parts) != 3:
            return self.bad("assertion is not a JWT")
        header, claims = json.loads(b64url_decode(parts[0])), json.loads(b64url_decode(parts[1]))
        if header.get("alg") != "RS256" or header.get("typ") != "JWT":
            return self.bad(f"JWT header {header}")
        now = time.time()
        aud_ok = claims.get("aud", "").endswith(token_uri_path)
        if claims.get("iss") != email or not aud_ok or "devstorage" not in claims.get("scope", "") \
                or not (claims.get("iat", 0) - 300 <= now <= claims.get("exp", 0)) or claims["exp"] - claims["iat"] > 3600:
            return self.bad(f"JWT claims {claims}")
        if not verify_rs256(f"{parts[0]}.{parts[1]}".encode(), b64url_decode(parts[2])):
            return self.reply(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
        tok = base64.b16encode(os.urandom(16)).decode()
        with lock:
            tokens.add(tok)
        self.reply(200, {"access_token": tok, "expires_in": 3599, "token_type": "Bearer"})

    # --- Storage JSON API ---------------------------------------------------------------------
    def route(self):
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        path = url.path
        if path == token_uri_path:
            return self.token() if self.command == "POST" else self.bad("token endpoint takes POST")
        if not self.authorized():
            return
        seg = path.split("/")  # raw, still percent-encoded
        if path == "/storage/v1/b" and self.command == "POST":
            if "project" not in q:
                return self.bad("buckets.insert needs ?project=")
            meta = json.loads(self.body() or b"{}")
            with lock:
                if meta.get("name") in buckets:
                    return self.error(409, "You already own this bucket.")
                buckets[meta["name"]] = {}
            return self.reply(200, {"kind": "storage#bucket", "name": meta["name"]})
        if len(seg) == 5 and path.startswith("/storage/v1/b/") and self.command == "GET":
            with lock:
                ok = urllib.parse.unquote(seg[4]) in buckets
            return self.reply(200, {"kind": "storage#bucket", "name": urllib.parse.unquote(seg[4])}) if ok else self.error(404, "Not Found")
        if len(seg) == 7 and path.startswith("/upload/storage/v1/b/") and seg[6] == "o" and self.command == "POST":
            if q.get("uploadType") != ["media"] or "name" not in q:
                return self.bad("objects.insert (simple) needs uploadType=media and name")
            data = self.body()
            if data is None:
                return self.bad("upload without Content-Length")
            bucket, name = urllib.parse.unquote(seg[5]), q["name"][0]
            with lock:
                if bucket not in buckets:
                    return self.error(404, "The specified bucket does not exist.")
                buckets[bucket][name] = data
            return self.reply(200, {"kind": "storage#object", "name": name, "bucket": bucket, "size": str(len(data))})
        if len(seg) == 6 and path.startswith("/storage/v1/b/") and seg[5] == "o" and self.command == "GET":
            bucket, prefix = urllib.parse.unquote(seg[4]), q.get("prefix", [""])[0]
            limit = min(int(q.get("maxResults", ["1000"])[0]), page_limit)
            with lock:
                if bucket not in buckets:
                    return self.error(404, "The specified bucket does not exist.")
                names = sorted(n for n in buckets[bucket] if n.startswith(prefix))
                start = q.get("pageToken", [""])[0]
                names = [n for n in names if n > start] if start else names
                page = [{"name": n, "size": str(len(buckets[bucket][n]))} for n in names[:limit]]
            out = {"kind": "storage#objects", "items": page}
            if len(names) > limit:
                out["nextPageToken"] = page[-1]["name"]
            return self.reply(200, out)
        if len(seg) == 7 and path.startswith("/storage/v1/b/") and seg[5] == "o":
            bucket, name = urllib.parse.unquote(seg[4]), urllib.parse.unquote(seg[6])
            if "/" in seg[6]:
                return self.bad("object names must be percent-encoded in the path")
            with lock:
                data = buckets.get(bucket, {}).get(name)
                if self.command == "DELETE" and data is not None:
                    del buckets[bucket][name]
            if data is None:
                return self.error(404, "No such object: " + bucket + "/" + name)
            if self.command == "DELETE":
                return self.reply(204)
            if self.command != "GET":
                return self.bad("unexpected method on an object")
            if q.get("alt") != ["media"]:
                return self.reply(200, {"kind": "storage#object", "name": name, "size": str(len(data))})
            rng = self.headers.get("Range")
            if rng is None:
                return self.reply(200, data, "application/octet-stream")
            if not rng.startswith("bytes="):
                return self.bad("Range must be bytes=")
            a, _, b = rng[6:].partition("-")
            a = int(a)
            b = int(b) if b else len(data) - 1
            if a >= len(data):
                return self.error(416, "Requested range not satisfiable")
            return self.reply(206, data[a:b + 1], "application/octet-stream",
                              [("Content-Range", f"bytes {a}-{min(b, len(data) - 1)}/{len(data)}")])
        return self.bad("not a documented JSON API request")

    do_GET = do_POST = do_DELETE = do_PUT = do_HEAD = route


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
