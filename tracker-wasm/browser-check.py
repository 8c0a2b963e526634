#!/usr/bin/env python3
"""Checks the built tracker (pkg/rp.js + pkg/rp.wasm) in real headless Chromium.

Starts a throwaway collector (serves rp.js/rp.wasm, /v1/config, /v1/numbers,
records /v1/collect) and a site on another origin, drives Chromium through
chromedriver's WebDriver HTTP API (stdlib only), and checks what a site owner
and the pipeline would notice: beacons, cookies, DNI rewrites, consent flows,
SPA page views, clicks, no console errors, no extra globals. Not the
end-to-end suite (that runs against the real ingest in /work/main/tests).

    tracker-wasm/build.sh && tracker-wasm/browser-check.py [-k NAME]
"""
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
PKG = os.path.join(HERE, "pkg")
CONFIG = {
    "account": "acc_demo",
    "site_numbers": ["+15550100000"],
    "hold_minutes": 30,
    "pools": [{"id": "paid_search", "when": {"medium": "cpc"}}],
    "sources": [{"when": {"channel": "organic_social"}, "number": "+15550108001"}],
}
SESSION_NUMBER = "+15550109001"


class Collector:
    """Records every request; answers like ingest does (shape only)."""

    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        self.fail = set()
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def reply(self, code, body=b"", ctype=None):
                self.send_response(code)
                self.send_header("Access-Control-Allow-Origin", "*")
                if ctype:
                    self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def record(self, body=""):
                with collector.lock:
                    collector.requests.append({"method": self.command, "path": self.path, "ctype": self.headers.get("content-type"), "body": body})

            def do_GET(self):
                self.record()
                if self.path.startswith("/v1/config/"):
                    if "config" in collector.fail:
                        return self.reply(503)
                    return self.reply(200, json.dumps(CONFIG).encode(), "application/json")
                name = self.path.split("?")[0].lstrip("/")
                if name in ("rp.js", "rp.wasm"):
                    data = open(os.path.join(PKG, name), "rb").read()
                    return self.reply(200, data, "application/wasm" if name.endswith("wasm") else "text/javascript")
                self.reply(404)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
                self.record(body)
                if self.path == "/v1/numbers":
                    if "numbers" in collector.fail:
                        return self.reply(500)
                    answer = {"number": SESSION_NUMBER, "kind": "session", "expires_at": int(time.time() * 1000) + 1_800_000, "shared": False}
                    return self.reply(200, json.dumps(answer).encode(), "application/json")
                self.reply(204)

            def do_OPTIONS(self):
                self.record()
                self.reply(204)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reset(self):
        with self.lock:
            self.requests.clear()
        self.fail = set()

    def batches(self):
        with self.lock:
            return [json.loads(r["body"]) for r in self.requests if r["method"] == "POST" and r["path"] == "/v1/collect"]

    def events(self, kind=None):
        return [e for b in self.batches() for e in b["events"] if kind is None or e["type"] == kind]

    def calls(self, path):
        with self.lock:
            return [r for r in self.requests if r["path"].startswith(path)]


class Site:
    """Serves test pages (registered by path) from its own origin."""

    def __init__(self):
        self.pages = {}
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                page = site.pages.get(self.path.split("?")[0])
                body = (page or "not found").encode()
                self.send_response(200 if page else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class Browser:
    """A minimal WebDriver client over chromedriver."""

    def __init__(self):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        self.profile = tempfile.mkdtemp(prefix="rp-chrome-")
        self.driver = subprocess.Popen(["chromedriver", "--port=%d" % self.port], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                self.call("GET", "/status")
                break
            except OSError:
                time.sleep(0.1)
        args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir=" + self.profile]
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:loggingPrefs": {"browser": "ALL"},
                                                  "goog:chromeOptions": {"binary": shutil.which("chromium") or "/usr/bin/chromium", "args": args}}}}
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), data=data, method=method, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read() or b"{}").get("value")

    def s(self, method, path, body=None):
        return self.call(method, "/session/%s%s" % (self.session, path), body)

    def go(self, url):
        self.s("POST", "/url", {"url": url})

    def js(self, script, *args):
        return self.s("POST", "/execute/sync", {"script": script, "args": list(args)})

    def cookies(self):
        return {c["name"]: c for c in self.s("GET", "/cookie")}

    def clear_cookies(self):
        # Every host's cookies, also those a previous page wrote while unloading.
        self.s("POST", "/goog/cdp/execute", {"cmd": "Network.clearBrowserCookies", "params": {}})

    def console(self):
        return self.s("POST", "/se/log", {"type": "browser"}) or []

    def close(self):
        try:
            self.call("DELETE", "/session/" + self.session)
        except OSError as e:
            print("browser-check: closing the WebDriver session failed: %s" % e, file=sys.stderr)
        finally:
            self.driver.terminate()
            self.driver.wait(10)
            # Any Chromium process of this run's own profile that outlived the session.
            for pid in os.listdir("/proc"):
                try:
                    with open("/proc/%s/cmdline" % pid, "rb") as f:
                        mine = self.profile.encode() in f.read()
                    if mine:
                        os.kill(int(pid), 15)
                except (OSError, ValueError):
                    pass
            shutil.rmtree(self.profile, ignore_errors=True)


def wait_for(predicate, timeout=5.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


BODY = """
<p id="f1">(555) 010-0000</p><p id="f2">555-010-0000</p><p id="f3">555.010.0000</p><p id="f4">555 010 0000</p>
<p id="f5">5550100000</p><p id="f6">+1 555 010 0000</p><p id="f7">+1-555-010-0000</p><p id="f8">1-555-010-0000</p>
<p id="f9">+15550100000</p><p id="split">Call <b>(555)</b> <span>010</span>-0000 now</p>
<p id="other">555-010-0001 and 15550100000123</p>
<a id="tel" href="tel:+15550100000">call us</a>
<textarea id="ta">555-010-0000</textarea><input id="in" value="555-010-0000"><div id="ce" contenteditable>555-010-0000</div>
<form id="quote" onsubmit="return false"><input name="email" value="secret@example.com"><button id="send">send</button></form>
<div id="late"></div>
"""


def page(collector, consent=None, head="", body=BODY, endpoint=None):
    attrs = ' data-consent="%s"' % consent if consent else ""
    if endpoint:
        attrs += ' data-endpoint="%s"' % endpoint
    return """<!doctype html><html><head><title>Test page</title>
<script>window.__before = Object.getOwnPropertyNames(window);</script>
%s
<script async src="http://127.0.0.1:%d/rp.js" data-account="acc_demo"%s></script>
</head><body>%s</body></html>""" % (head, collector.port, attrs, body)


class Checks:
    def __init__(self, browser, collector, site):
        self.b, self.c, self.site = browser, collector, site

    def open(self, html, query="", path="/p.html"):
        self.b.go("about:blank")
        # Cookie writes of the previous page's pagehide reach the cookie store asynchronously.
        time.sleep(0.3)
        self.c.reset()
        self.b.clear_cookies()
        self.site.pages[path] = html
        self.b.go("http://127.0.0.1:%d%s%s" % (self.site.port, path, query))

    def text(self, element_id):
        return self.b.js("var e = document.getElementById(arguments[0]); return e.value !== undefined && e.tagName != 'A' ? e.value : e.textContent", element_id)

    def pageview_batch(self):
        return wait_for(lambda: next((b for b in self.c.batches() if any(e["type"] == "pageview" for e in b["events"])), None), what="a pageview batch")

    # ---- the checks ----
    def test_not_required_sends_one_granted_pageview_with_cookie_ids(self):
        self.open(page(self.c, "not-required"), "?utm_source=news&utm_medium=email&email=ann%40example.org")
        batch = self.pageview_batch()
        time.sleep(0.3)
        assert len(self.c.events("pageview")) == 1, self.c.batches()
        assert batch["v"] == 1 and batch["account"] == "acc_demo" and batch["consent"] == "granted", batch
        assert set(batch) <= {"v", "account", "sent_at", "consent", "visitor_id", "session_id", "page_id", "screen", "lang", "tz", "events"}, batch
        event = batch["events"][0]
        assert set(event) <= {"id", "type", "ts", "url", "referrer", "title", "number", "props"}, event
        assert "ann" not in event["url"] and "utm_medium=email" in event["url"], event["url"]
        cookies = self.b.cookies()
        assert cookies["_rp_vid"]["value"] == batch["visitor_id"] and len(batch["visitor_id"]) == 32
        assert cookies["_rp_sid"]["value"] == batch["session_id"]
        assert cookies["_rp_vid"]["sameSite"] == "Lax" and cookies["_rp_sid"]["sameSite"] == "Lax"
        vid_days = (cookies["_rp_vid"]["expiry"] - time.time()) / 86400
        sid_minutes = (cookies["_rp_sid"]["expiry"] - time.time()) / 60
        assert 394 < vid_days <= 395.1 and 29 < sid_minutes <= 30.1, (vid_days, sid_minutes)
        post = [r for r in self.c.calls("/v1/collect") if r["method"] == "POST"][0]
        assert post["ctype"].startswith("text/plain"), post

    def test_required_consent_stores_nothing_and_sends_no_ids(self):
        self.open(page(self.c), "?utm_source=facebook&utm_medium=social")
        batch = self.pageview_batch()
        assert batch["consent"] == "pending" and "visitor_id" not in batch and "session_id" not in batch, batch
        assert len(batch["page_id"]) == 32
        storage = self.b.js("return [document.cookie, localStorage.length, sessionStorage.length]")
        assert storage == ["", 0, 0], storage
        # Source-level number without asking /v1/numbers.
        wait_for(lambda: self.text("f2") == "555-010-8001", what="source-level swap")
        assert not self.c.calls("/v1/numbers")
        assert batch["events"][0].get("number") == "+15550108001", batch

    def test_every_written_form_is_swapped_and_protected_places_are_not(self):
        self.open(page(self.c, "not-required"), "?utm_medium=cpc&utm_source=google")
        wait_for(lambda: self.text("f1") == "(555) 010-9001", what="session number swap")
        want = {"f1": "(555) 010-9001", "f2": "555-010-9001", "f3": "555.010.9001", "f4": "555 010 9001", "f5": "5550109001",
                "f6": "+1 555 010 9001", "f7": "+1-555-010-9001", "f8": "1-555-010-9001", "f9": "+15550109001",
                "split": "Call (555) 010-9001 now", "other": "555-010-0001 and 15550100000123",
                "ta": "555-010-0000", "in": "555-010-0000", "ce": "555-010-0000"}
        for element_id, text in want.items():
            assert self.text(element_id) == text, (element_id, self.text(element_id))
        assert self.b.js("return document.getElementById('tel').getAttribute('href')") == "tel:+15550109001"
        numbers = json.loads(self.c.calls("/v1/numbers")[0]["body"])
        assert set(numbers) == {"account", "session_id", "visitor_id", "url"} and numbers["session_id"] == self.b.cookies()["_rp_sid"]["value"], numbers
        # Late content is swapped too.
        self.b.js("document.getElementById('late').innerHTML = 'Later: <i>555</i>.010.0000'")
        wait_for(lambda: self.text("late") == "Later: 555.010.9001", what="late content swap")
        batch = self.pageview_batch()
        assert batch["events"][0]["number"] == SESSION_NUMBER, batch

    def test_a_session_keeps_its_number_on_later_pages_without_asking_again(self):
        self.open(page(self.c, "not-required", body=BODY + '<a id="next" href="/p2.html">next</a>'), "?utm_medium=cpc&utm_source=google")
        wait_for(lambda: self.text("f2") == "555-010-9001", what="session number")
        assert len(self.c.calls("/v1/numbers")) == 1
        self.site.pages["/p2.html"] = page(self.c, "not-required")
        self.b.js("document.getElementById('next').click()")
        wait_for(lambda: self.b.js("return location.pathname") == "/p2.html", what="page 2")
        wait_for(lambda: self.text("f2") == "555-010-9001", what="number on page 2")
        p2 = wait_for(lambda: [e for e in self.c.events("pageview") if e["url"].endswith("/p2.html")], what="page 2 view")[0]
        assert p2["number"] == SESSION_NUMBER and p2["referrer"].endswith("utm_source=google"), p2
        assert len(self.c.calls("/v1/numbers")) == 1, self.c.calls("/v1/numbers")

    def test_failed_config_or_number_request_leaves_the_page_untouched(self):
        self.expect_network_errors = True
        self.b.go("about:blank")
        self.c.reset()
        self.c.fail = {"config"}
        self.site.pages["/p.html"] = page(self.c, "not-required")
        self.b.clear_cookies()
        self.b.go("http://127.0.0.1:%d/p.html?utm_medium=cpc" % self.site.port)
        self.pageview_batch()
        assert self.text("f2") == "555-010-0000" and self.b.js("return document.getElementById('tel').getAttribute('href')") == "tel:+15550100000"
        self.c.reset()
        self.c.fail = {"numbers"}
        self.b.go("http://127.0.0.1:%d/p.html?utm_medium=cpc&x=1" % self.site.port)
        wait_for(lambda: self.c.calls("/v1/numbers"), what="numbers call")
        batch = self.pageview_batch()
        assert self.text("f2") == "555-010-0000" and "number" not in batch["events"][0], batch

    def test_grant_upgrades_in_place_and_denial_deletes_cookies(self):
        self.open(page(self.c), "?utm_medium=cpc&utm_source=google")
        batch = self.pageview_batch()
        assert batch["consent"] == "pending" and self.text("f2") == "555-010-0000"
        assert not self.c.calls("/v1/numbers")
        self.b.js("ringpath('consent', 'granted')")
        wait_for(lambda: self.text("f2") == "555-010-9001", what="upgrade to the session number")
        cookies = self.b.cookies()
        assert "_rp_vid" in cookies and "_rp_sid" in cookies, cookies
        self.b.js("ringpath('event', 'after_grant')")
        granted = wait_for(lambda: [b for b in self.c.batches() if b["events"][0]["type"] == "after_grant"], what="after_grant")[0]
        assert granted["consent"] == "granted" and granted["visitor_id"] == cookies["_rp_vid"]["value"], granted
        self.b.js("ringpath('consent', 'denied')")
        wait_for(lambda: not [k for k in self.b.cookies() if k.startswith("_rp_")], what="cookie deletion")
        assert self.text("f2") == "555-010-0000", self.text("f2")
        self.b.js("ringpath('event', 'after_denial')")
        denied = wait_for(lambda: [b for b in self.c.batches() if b["events"][0]["type"] == "after_denial"], what="after_denial")[0]
        assert denied["consent"] == "denied" and "visitor_id" not in denied, denied

    def test_global_privacy_control_overrides_not_required(self):
        # A cookie left from an earlier visit is deleted at once.
        head = "<script>Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: function () { return true; }});</script>"
        self.b.go("about:blank")
        self.b.clear_cookies()
        self.site.pages["/gpc.html"] = page(self.c, "not-required", head)
        self.b.go("http://127.0.0.1:%d/gpc.html" % self.site.port)
        self.b.js("document.cookie = '_rp_vid=old; Path=/'")
        self.c.reset()
        self.b.go("http://127.0.0.1:%d/gpc.html?again" % self.site.port)
        batch = self.pageview_batch()
        assert batch["consent"] == "denied" and "visitor_id" not in batch, batch
        self.b.js("ringpath('consent', 'granted')")
        time.sleep(0.3)
        assert not [k for k in self.b.cookies() if k.startswith("_rp_")], self.b.cookies()

    def test_tcf_and_consent_mode_signals_rank_below_explicit_consent(self):
        tcf = """<script>window.__tcfapi = function (cmd, v, cb) { if (cmd == 'addEventListener')
          setTimeout(function () { cb({gdprApplies: true, eventStatus: 'tcloaded', purpose: {consents: {1: false}}}, true); }, 0); };</script>"""
        self.open(page(self.c, "not-required", tcf))
        batch = self.pageview_batch()
        assert batch["consent"] == "denied", batch
        self.b.js("ringpath('consent', 'granted')")
        wait_for(lambda: "_rp_vid" in self.b.cookies(), what="explicit grant over TCF")
        gcm = """<script>window.dataLayer = window.dataLayer || []; function gtag(){dataLayer.push(arguments);}
          gtag('consent', 'default', {analytics_storage: 'denied'});</script>"""
        self.open(page(self.c, "not-required", gcm), path="/gcm.html")
        batch = self.pageview_batch()
        assert batch["consent"] == "denied", batch
        self.b.js("gtag('consent', 'update', {analytics_storage: 'granted'})")
        wait_for(lambda: "_rp_vid" in self.b.cookies(), what="Consent Mode update")

    def test_spa_navigation_clicks_forms_and_custom_events(self):
        self.open(page(self.c, "not-required"))
        first = self.pageview_batch()["events"][0]
        self.b.js("history.pushState({}, '', '/p.html/next?phone=5550100000'); history.replaceState({}, '', '/p.html/next?tab=2')")
        second = wait_for(lambda: self.c.events("pageview")[1:], what="SPA page view")[0]
        assert second["url"].endswith("/p.html/next") and second["referrer"] == first["url"], second
        self.b.js("history.back()")
        wait_for(lambda: len(self.c.events("pageview")) == 3, what="popstate page view")
        time.sleep(0.2)
        assert len(self.c.events("pageview")) == 3, self.c.events("pageview")
        self.b.js("document.getElementById('tel').click(); document.getElementById('send').click()")
        click = wait_for(lambda: self.c.events("call_click"), what="call_click")[0]
        assert click["props"] == {"tel": "tel:+15550100000"}, click
        form = wait_for(lambda: self.c.events("form_submit"), what="form_submit")[0]
        assert form["props"] == {"form": "quote"} and "secret" not in json.dumps(self.c.batches()), form
        self.b.js("ringpath('event', 'Booked Call!', {plan: 'pro', nested: {a: {b: {c: {d: 1}}}}}); ringpath('event', 'ok', {n: 1})")
        custom = wait_for(lambda: self.c.events("booked_call_") and self.c.events("ok"), what="custom events")
        assert self.c.events("booked_call_")[0]["props"] == {} and custom[0]["props"] == {"n": 1}
        engagement_before = len(self.c.events("engagement"))
        self.b.go("about:blank")
        wait_for(lambda: len(self.c.events("engagement")) > engagement_before, what="engagement on pagehide")
        assert self.c.events("engagement")[-1]["props"]["visible_ms"] > 0

    def test_queue_replays_in_order_and_only_ringpath_is_added_to_window(self):
        head = "<script>window.ringpath = window.ringpath || function(){(ringpath.q = ringpath.q || []).push(arguments)};" \
               "ringpath('event', 'first'); ringpath('consent', 'granted'); ringpath('event', 'second', {k: 'v'});</script>"
        self.open(page(self.c, None, head))
        batch = self.pageview_batch()
        assert [e["type"] for e in batch["events"]] == ["pageview", "first", "second"] and batch["consent"] == "granted", batch
        added = self.b.js("var before = new Set(window.__before.concat(['__before'])); return Object.getOwnPropertyNames(window).filter(function (k) { return !before.has(k); })")
        assert added == [] or added == ["ringpath"], added
        assert self.b.js("return typeof ringpath") == "function"
        # A throwing page hook must not break the tracker, and the tracker must not throw into the page.
        assert self.b.js("try { ringpath('event', {toString: null}); ringpath(); ringpath('consent', 42); return 'ok'; } catch (e) { return String(e); }") == "ok"


def main():
    only = sys.argv[sys.argv.index("-k") + 1] if "-k" in sys.argv else ""
    for name in ("rp.js", "rp.wasm"):
        if not os.path.exists(os.path.join(PKG, name)):
            sys.exit("browser-check: pkg/%s missing; run build.sh" % name)
    collector, site, browser = Collector(), Site(), Browser()
    checks = Checks(browser, collector, site)
    failed = 0
    try:
        for name in sorted(n for n in dir(checks) if n.startswith("test_") and only in n):
            browser.console()  # drop earlier messages
            checks.expect_network_errors = False
            try:
                getattr(checks, name)()
                errors = [m for m in browser.console() if m.get("level") == "SEVERE" and "favicon" not in m.get("message", "")
                          and not (checks.expect_network_errors and m.get("source") == "network")]
                assert not errors, errors
                print("ok    " + name)
            except Exception:
                failed += 1
                print("FAIL  " + name)
                traceback.print_exc()
    finally:
        browser.close()
        collector.server.shutdown()
        site.server.shutdown()
    print("%d failed" % failed if failed else "all browser checks passed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
