"""Throwaway HTTP backends on 127.0.0.1 for the tests of the modules that ask a service's health."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def server(health_codes, smoke_code=200, version="1.1.0"):
    """A backend whose /healthz answers health_codes in turn (the last one from then on)."""
    codes = list(health_codes)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            code = (codes.pop(0) if len(codes) > 1 else codes[0]) if self.path == "/healthz" else smoke_code
            self.send_response(code)
            self.send_header("X-App-Version", version)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"127.0.0.1:{httpd.server_address[1]}"


def closed_port():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    address = f"127.0.0.1:{httpd.server_address[1]}"
    httpd.server_close()
    return address
