#!/usr/bin/env python3
"""`meson install --destdir` of the build under test into a temporary root,
then the installed binary started from there with only the installed files:
no --config, and a working directory outside the checkout. It must find
the installed default configuration beside itself (etc/milepost), and,
through it, the installed example plan (share/milepost); migrations and
static files are inside the binary. The sites, the database and the port
come from the environment, as in a container."""

import json
import os
import shutil
import subprocess
import tempfile
import time

import harness

BUILD = os.path.dirname(os.path.dirname(os.path.abspath(harness.MILEPOST_BIN)))


class InstallCase(harness.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="milepost-install-")
        self.proc = None

    def tearDown(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)
        shutil.rmtree(self.root, ignore_errors=True)

    def install(self):
        p = subprocess.run(["meson", "install", "-C", BUILD, "--destdir", self.root, "--no-rebuild", "--quiet"],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        found = {}
        for top, _, files in os.walk(self.root):
            for f in files:
                found[os.path.relpath(os.path.join(top, f), self.root)] = os.path.join(top, f)
        return found

    def test_installed_tree_serves(self):
        files = self.install()
        names = sorted(files)
        binary = [f for f in names if f.endswith("bin/milepost")]
        config = [f for f in names if f.endswith("milepost/milepost.json")]
        plan = [f for f in names if f.endswith("share/milepost/plan.json")]
        self.assertEqual((len(binary), len(config), len(plan)), (1, 1, 1), names)
        with open(files[config[0]]) as f:
            self.assertFalse(os.path.isabs(json.load(f)["plan"]), "the plan is found from the config's place")
        db, port = harness.fresh_database(), harness.free_port()
        log_path = os.path.join(self.root, "serve.log")
        env = harness.milepost_env({
            "MILEPOST_DATABASE_URL": db, "MILEPOST_LISTEN": "127.0.0.1:%d" % port,
            "MILEPOST_PII_HASH_KEY": "install-test-pii-key-0123456789",
            "MILEPOST_SITES": json.dumps([{"id": "shop", "name": "Shop", "write_key": "wk_install_test"}])})
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen([files[binary[0]], "serve"], cwd=self.root, env=env,
                                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        base = "http://127.0.0.1:%d" % port
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            self.assertIsNone(self.proc.poll(), open(log_path).read())
            try:
                if harness.http_request("GET", base + "/readyz").status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            self.fail("not ready: %s" % open(log_path).read())
        # The example plan is in force: a name it lacks is quarantined.
        event = harness.make_event(name="made_up_event", consent={"analytics": True})
        resp = harness.http_request("POST", base + "/v1/events", body={"batch": [event]},
                                    headers={"X-Milepost-Key": "wk_install_test"})
        self.assertEqual(resp.status, 202, resp)
        self.assertEqual(resp.body["results"], ["quarantined"])
        self.assertEqual(harness.http_request("GET", base + "/js/milepost.js").status, 200)
        for path in ("/", "/dashboard/app.js", "/dashboard/app.css"):
            self.assertEqual(harness.http_request("GET", base + path).status, 200, path)
        self.assertIn("plan version", open(log_path).read())


if __name__ == "__main__":
    harness.main()
