#!/usr/bin/env python3
"""Optional TLS: with tls_cert_file and tls_key_file the daemon serves HTTPS
only (a self-signed certificate made with the openssl command), and refuses
to start with one of the two, or with a file that is not PEM."""

import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import unittest

import harness
from harness import SHOP_KEY, make_event


def make_certificate(directory):
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-days", "1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@unittest.skipIf(shutil.which("openssl") is None, "no openssl command")
class TlsTest(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = harness.fresh_database()
        cls.cert, cls.key = make_certificate(harness.tmpdir())

    def https(self, d, ctx, method, path, body=None):
        """One HTTPS exchange: (status, JSON body)."""
        conn = http.client.HTTPSConnection("127.0.0.1", d.port, context=ctx, timeout=10)
        try:
            conn.request(method, path, body=json.dumps(body) if body is not None else None,
                         headers={"Content-Type": "application/json", "X-Milepost-Key": SHOP_KEY})
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read() or b"null")
        finally:
            conn.close()

    def test_https_event_accepted(self):
        d = self.start_daemon(self.db, wait=None, tls_cert_file=self.cert, tls_key_file=self.key)
        ctx = ssl.create_default_context(cafile=self.cert)
        deadline = harness.time.monotonic() + harness.READY_TIMEOUT_S
        status = None
        while status != 200 and harness.time.monotonic() < deadline:
            d.assert_alive()
            try:
                status, _ = self.https(d, ctx, "GET", "/readyz")
            except ConnectionRefusedError:
                pass
            harness.time.sleep(0.1)
        self.assertEqual(status, 200, "GET /readyz over HTTPS; log:\n" + d.log_tail())
        ev = make_event()
        status, body = self.https(d, ctx, "POST", "/v1/events", ev)
        self.assertEqual((status, body.get("accepted")), (202, 1), "%r" % (body,))
        self.assertEqual(harness.event_id_counts(self.db, [ev["event_id"]]), {ev["event_id"]: 1})

        # Plain HTTP on the TLS port gets no HTTP answer.
        with self.assertRaises((http.client.HTTPException, OSError)):
            r = harness.http_request("POST", d.url("/v1/events"), body=make_event(),
                                     headers={"X-Milepost-Key": SHOP_KEY}, timeout=5)
            raise AssertionError("plain HTTP answered on the TLS port: %r" % (r,))
        # A client that does not trust the certificate fails its handshake.
        with socket.create_connection(("127.0.0.1", d.port), timeout=5) as s:
            with self.assertRaises(ssl.SSLError):
                ssl.create_default_context().wrap_socket(s, server_hostname="localhost")
        d.assert_alive()
        self.assertEqual(d.stop(), 0, "exit status on SIGTERM; log:\n" + d.log_tail())

    def test_refused_configurations(self):
        not_pem = harness.write_json_file({"not": "pem"})
        cases = {
            "certificate without key": {"tls_cert_file": self.cert},
            "key without certificate": {"tls_key_file": self.key},
            "missing file": {"tls_cert_file": self.cert, "tls_key_file": self.key + ".missing"},
            "not PEM": {"tls_cert_file": not_pem, "tls_key_file": self.key},
        }
        for label, cfg in cases.items():
            with self.subTest(case=label):
                d = self.start_daemon(self.db, wait=None, **cfg)
                code = d.wait(20)
                self.assertNotIn(code, (None, 0), "%s: started; log:\n%s" % (label, d.log_tail()))
                self.assertRegex(d.log_tail(), r"tls_(cert|key)_file")
                d.exit_code = code


if __name__ == "__main__":
    harness.main()
