/*! ringpath rp.js */
(function () {
  // The browser side of the tracker: script tag, command queue, consent
  // signals, cookies, DNI fetches and DOM rewriting, events and beacons.
  // Decisions (consent precedence, rule matching, number matching and
  // formatting, URL scrubbing) are rp.wasm's exports, reached through `call`.
  // Every entry point from the page or the browser is guarded: nothing here
  // throws into the host. The whole file is one function, so terser may
  // mangle every name and `ringpath` is the only global it creates.
  var w = window, d = document, nav = navigator, loc = location, X, utf8, unutf8;
  var VID = "_rp_vid", SID = "_rp_sid", NUM = "_rp_num";
  var HALF_HOUR_S = 1800, VISITOR_S = 395 * 86400;
  var E164 = /^\+[1-9]\d{6,14}$/;
  var account, endpoint, attr;
  // Consent signals as rp.wasm reads an Option<bool>: 0 = denied, 1 = granted, 2 = none yet.
  var consent = "", explicit = 2, tcf = 2, gcm = 2, tcfOn, dataLayerSeen;
  var visitorId = "", sessionId = "", lastSend = 0, pageId;
  var queue = [], ready, url = loc.href, referrer = d.referrer, landingUrl = url, landingRef = referrer;
  var visibleSince = d.visibilityState == "hidden" ? 0 : Date.now(), visibleMs = 0;
  var cfg, sites = "", shown = "", observer;
  var SKIP = /^(SCRIPT|STYLE|TEXTAREA|INPUT|SELECT|OPTION|NOSCRIPT|TEMPLATE|IFRAME|OBJECT)$/;
  var INLINE = /^(A|ABBR|B|BDI|BDO|BIG|CITE|CODE|DATA|DFN|EM|FONT|I|KBD|LABEL|MARK|NOBR|Q|S|SAMP|SMALL|SPAN|STRONG|SUB|SUP|TIME|TT|U|VAR)$/;

  // ---- rp.wasm's calling convention (src/exports.rs) ----
  // Exports have one-letter names (src/exports.rs): r reset, a arg, c consent_state,
  // t tcf_decision, g gcm_decision, u strip_url, k visit_kind, m first_match, s swap.
  // Calls export `f`: the heap is emptied, each string argument is copied in
  // as UTF-8 and passed as (pointer, byte length); numbers and bools pass as they are.
  function call(f, ...args) {
    var flat = [];
    X.r();
    args.forEach(function (v) {
      if (typeof v != "string") return flat.push(+v);
      v = utf8.encode(v);
      var p = X.a(v.length);
      new Uint8Array(X.memory.buffer).set(v, p);
      flat.push(p, v.length);
    });
    return X[f](...flat);
  }
  // The string a string-returning export handed back (a pointer to its pointer and length).
  function str(p) {
    var m = X.memory.buffer, at = new Uint32Array(m, p, 2);
    return unutf8.decode(new Uint8Array(m, at[0], at[1]));
  }

  function noop() {}
  function guard(f) { return function () { try { return f.apply(this, arguments); } catch (e) {} }; }
  // Runs `after` once the page's own method has run; the page gets its result (or exception) unchanged.
  function hook(o, name, after) {
    var orig = o && o[name];
    if (typeof orig == "function") o[name] = function () {
      var r = orig.apply(this, arguments);
      try { after(arguments); } catch (e) {}
      return r;
    };
  }
  // Random hex; crypto.getRandomValues exists wherever WebAssembly does.
  function hex(bytes) {
    var a = crypto.getRandomValues(new Uint8Array(bytes)), s = "", i;
    for (i = 0; i < bytes; i++) s += (a[i] | 256).toString(16).slice(1);
    return s;
  }
  // The first `n` UTF-16 units of `s`, never ending between the halves of an
  // emoji: JSON with a lone surrogate makes ingest refuse the whole batch.
  function cut(s, n) { return s.slice(0, n).replace(/[\ud800-\udbff]$/, ""); }
  function title() { return d.title ? cut(d.title, 300) : undefined; }

  // ---- storage: cookies only, and only with consent ----
  function cookie(k) {
    try { var m = d.cookie.match("(?:^|; )" + k + "=([^;]+)"); return m ? m[1] : ""; } catch (e) { return ""; }
  }
  function setCookie(k, v, maxAge) {
    try { d.cookie = k + "=" + v + "; Path=/; Max-Age=" + maxAge + "; SameSite=Lax" + (loc.protocol == "https:" ? "; Secure" : ""); } catch (e) {}
  }
  function forget() {
    try { d.cookie.split(/; */).forEach(function (kv) { var k = kv.split("=")[0]; if (!k.indexOf("_rp_")) setCookie(k, "", 0); }); } catch (e) {}
  }
  // Granted only: the visitor and (30-minute rolling) session ids.
  function identify() {
    var now = Date.now(), num = cookie(NUM);
    visitorId = cookie(VID) || visitorId || hex(16);
    sessionId = cookie(SID) || (now - lastSend < HALF_HOUR_S * 1000 && sessionId) || hex(16);
    lastSend = now;
    setCookie(VID, visitorId, VISITOR_S);
    setCookie(SID, sessionId, HALF_HOUR_S);
    if (num) setCookie(NUM, num, HALF_HOUR_S);
  }

  // ---- consent ----
  function decide() {
    var next = ["pending", "granted", "denied"][call("c", nav.globalPrivacyControl === true, explicit, tcf, gcm, attr || "")];
    if (next == consent) return;
    var first = !consent;
    consent = next;
    if (next == "granted") identify();
    else {
      visitorId = sessionId = "";
      if (next == "denied") forget();
    }
    if (!first) dni();
  }
  function tcfInit() {
    if (tcfOn || typeof w.__tcfapi != "function") return;
    tcfOn = 1;
    w.__tcfapi("addEventListener", 2, guard(function (t, ok) {
      t = t || {};
      var p = t.purpose && t.purpose.consents;
      var v = call("t", !!ok, typeof t.gdprApplies == "boolean" ? t.gdprApplies : 2, String(t.eventStatus || ""), p ? !!p[1] : 2);
      if (v < 2) { tcf = v; decide(); }
    }));
  }
  function gcmEntry(e) {
    try {
      if (e && e[0] == "consent" && e[2]) {
        var s = e[2].analytics_storage, v = call("g", "consent", String(e[1]), s == null ? "" : String(s));
        if (v < 2) gcm = v;
      }
    } catch (x) {}
  }
  function gcmInit() {
    var dl = w.dataLayer, i;
    if (!dl || dl == dataLayerSeen || typeof dl.push != "function") return;
    dataLayerSeen = dl;
    for (i = 0; i < dl.length; i++) gcmEntry(dl[i]);
    hook(dl, "push", function (args) { for (var i = 0; i < args.length; i++) gcmEntry(args[i]); decide(); });
  }

  // ---- network ----
  function http(u, body, cb) {
    var done = guard(cb);
    try {
      fetch(u, body ? { method: "POST", body: body, credentials: "omit" } : { credentials: "omit" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(done, function () { done(null); });
    } catch (e) { done(null); }
  }
  function send(u, body) {
    try { if (nav.sendBeacon && nav.sendBeacon(u, body)) return; } catch (e) {}
    try { fetch(u, { method: "POST", body: body, keepalive: true, mode: "no-cors", credentials: "omit" })["catch"](noop); } catch (e) {}
  }

  // ---- events ----
  function httpUrl(u) { return /^https?:\/\//.test(u || "") ? str(call("u", u)).slice(0, 4096) : undefined; }
  function depth(v) { var m = 0, k; if (!v || typeof v != "object") return 0; for (k in v) m = Math.max(m, depth(v[k])); return m + 1; }
  // A JSON snapshot of the caller's props, or {} when unusable (ingest rejects the whole batch otherwise):
  // JSON.stringify writes half an emoji (a string cut by UTF-16 units) as a \udXXX escape ingest refuses.
  function props(p) {
    try { var s = JSON.stringify(p); if (s && s[0] == "{" && s.length < 2700 && !/\\ud[89a-f]/.test(s) && depth(p = JSON.parse(s)) <= 4) return p; } catch (e) {}
    return {};
  }
  function track(type, p, u) {
    queue.push({
      id: hex(16), type: type, ts: Date.now(), url: httpUrl(u || url), referrer: httpUrl(referrer),
      title: title(), number: shown || undefined, props: p || {}
    });
    if (ready) flush();
  }
  function flush() {
    var granted = consent == "granted", tz;
    if (!queue.length) return;
    if (granted) identify();
    try { tz = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) {}
    while (queue.length) send(endpoint + "/v1/collect", JSON.stringify({
      v: 1, account: account, sent_at: Date.now(), consent: consent,
      visitor_id: granted ? visitorId : undefined, session_id: granted ? sessionId : undefined, page_id: pageId,
      screen: w.screen ? screen.width + "x" + screen.height : undefined, lang: nav.language || undefined, tz: tz || undefined,
      events: queue.splice(0, 20)
    }));
  }
  // The first batch waits (≤ 3 s) for the DNI decision so the page view carries the number shown.
  function go() {
    if (ready) return;
    ready = 1;
    for (var i = 0; i < queue.length; i++) {
      queue[i].number = shown || undefined;
      queue[i].title = title();
    }
    flush();
  }
  function engage(u) {
    var now = Date.now();
    if (visibleSince) visibleMs += now - visibleSince;
    visibleSince = d.visibilityState == "hidden" ? 0 : now;
    if (visibleMs > 0) track("engagement", { visible_ms: visibleMs }, u);
    visibleMs = 0;
  }
  function pageview() { referrer = url; url = loc.href; track("pageview"); }
  function spa(pathOnly) {
    var strip = pathOnly ? /[?#].*$/ : /#.*$/;
    if (loc.href.replace(strip, "") == url.replace(strip, "")) return;
    engage(url);
    pageview();
  }

  // ---- DNI ----
  function encodeRules(rules) {
    var s = "", i, k, when;
    for (i = 0; rules && i < rules.length; i++) {
      s += "\x1e";
      when = rules[i] && rules[i].when || {};
      for (k in when) s += "\x1f" + k + "=" + when[k];
    }
    return s;
  }
  function dni() {
    if (!cfg) return;
    var granted = consent == "granted", stored = granted && cookie(NUM), pool, source;
    // Inside a session (same-site or direct) the session keeps the number it was given.
    if ((stored == "0" || E164.test(stored)) && call("k", landingUrl, landingRef)) { show(stored == "0" ? "" : stored); return go(); }
    pool = granted ? call("m", landingUrl, landingRef, encodeRules(cfg.pools)) : -1;
    if (pool >= 0) {
      identify();
      return http(endpoint + "/v1/numbers", JSON.stringify({
        account: account, session_id: sessionId, visitor_id: visitorId, url: httpUrl(landingUrl), referrer: httpUrl(landingRef)
      }), function (a) {
        if (a && E164.test(a.number) && consent == "granted") show(a.number, 1);
        go();
      });
    }
    source = call("m", landingUrl, landingRef, encodeRules(cfg.sources));
    source = source >= 0 && cfg.sources[source].number;
    show(E164.test(source) ? source : "", granted);
    go();
  }
  // Puts `number` (E.164, "" = the site's own) in the page, replacing what is shown now.
  function show(number, remember) {
    if (remember) setCookie(NUM, number || "0", HALF_HOUR_S);
    if (number == shown) return;
    var from = sites + (shown ? "," + shown : "");
    shown = number;
    swapIn(d.documentElement, from, number || cfg.site_numbers[0]);
    if (observer) observer.takeRecords();
    observe();
  }
  function editable(el) { var v = el.getAttribute("contenteditable"); return v != null && v != "false"; }
  function excluded(n) {
    for (; n && n.nodeType == 1; n = n.parentNode) if (SKIP.test(n.nodeName) || editable(n)) return 1;
  }
  // Text of one block joins across inline elements: <b>555</b>-010-0000 is one number.
  function blockOf(n) {
    while (n && n.nodeType != 1) n = n.parentNode;
    while (n && INLINE.test(n.nodeName) && n.parentNode && n.parentNode.nodeType == 1) n = n.parentNode;
    return n;
  }
  function swapIn(root, from, to) {
    if (!root || excluded(root.nodeType == 1 ? root : root.parentNode)) return;
    var walker = d.createTreeWalker(root, 5, function (n) { return n.nodeType == 1 && (SKIP.test(n.nodeName) || editable(n)) ? 2 : 1; });
    var run = [], text = "", block, n, href, v;
    function end() {
      if (run.length && /\d(\D{0,3}\d){6}/.test(text) && (v = str(call("s", text, from, to, 0)))) spread(run, text, v);
      run = []; text = "";
    }
    for (n = root; n; n = walker.nextNode()) {
      if (n.nodeType == 3) {
        if (blockOf(n) != block) { end(); block = blockOf(n); }
        run.push(n); text += n.data;
      } else if (n.nodeName == "A" && (href = n.getAttribute("href")) && /^\s*tel:/i.test(href) && (v = str(call("s", href.trim(), from, to, 1)))) {
        n.setAttribute("href", v);
      }
    }
    end();
  }
  // Writes `neu` over the text nodes that held `old`, keeping each node's share.
  function spread(nodes, old, neu) {
    var p = 0, s = 0, at = 0, i, n, len, start, mid, end, put, placed, v;
    if (old.length != neu.length) {
      while (p < old.length && old[p] == neu[p]) p++;
      while (s < old.length - p && s < neu.length - p && old[old.length - 1 - s] == neu[neu.length - 1 - s]) s++;
    }
    mid = neu.slice(p, neu.length - s);
    end = old.length - s;
    for (i = 0; i < nodes.length; i++) {
      n = nodes[i]; len = n.data.length; start = at; at += len;
      if (old.length == neu.length) v = neu.substr(start, len);
      else {
        put = !placed && (p < at || i == nodes.length - 1);
        if (put) placed = 1;
        v = n.data.slice(0, Math.max(0, Math.min(len, p - start))) + (put ? mid : "") + n.data.slice(Math.min(len, Math.max(0, end - start)));
      }
      if (v != n.data) n.data = v;
    }
  }
  function observe() {
    if (observer || !w.MutationObserver) return;
    observer = new MutationObserver(guard(function (records) {
      if (!shown) return;
      var roots = [], i, j, r, added, root;
      for (i = 0; i < records.length; i++) {
        r = records[i]; added = r.type == "childList" ? r.addedNodes : [r.target];
        for (j = 0; j < added.length; j++) if ((root = blockOf(added[j])) && roots.indexOf(root) < 0) roots.push(root);
      }
      for (i = 0; i < roots.length; i++) if (roots[i].isConnected) swapIn(roots[i], sites, shown);
      observer.takeRecords();
    }));
    observer.observe(d.documentElement, { childList: true, characterData: true, subtree: true });
  }

  // ---- the public command API: ringpath('consent'|'event'|'page', …) ----
  function command(name, a, b) {
    if (name == "consent") {
      if (a == "granted" || a == "denied") { explicit = +(a == "granted"); decide(); }
    } else if (name == "event") {
      var type = String(a || "").toLowerCase().replace(/[^a-z0-9_]+/g, "_").slice(0, 64);
      if (type) track(type, props(b));
    } else if (name == "page") {
      engage(url);
      pageview();
    }
  }

  function start(script, calls) {
    account = script.getAttribute("data-account");
    endpoint = (script.getAttribute("data-endpoint") || script.src.replace(/^([a-z]+:\/\/[^\/?#]+).*$/i, "$1")).replace(/\/+$/, "");
    attr = script.getAttribute("data-consent");
    var i, c;
    // Consent given before the module loaded applies before anything is stored or sent.
    for (i = 0; i < calls.length; i++) if (calls[i][0] == "consent") command.apply(0, calls[i]);
    gcmInit();
    tcfInit();
    decide();
    track("pageview");
    for (i = 0; i < calls.length; i++) if ((c = calls[i])[0] != "consent") command(c[0], c[1], c[2]);
    http(endpoint + "/v1/config/" + encodeURIComponent(account), 0, function (c) {
      if (c && c.site_numbers && c.site_numbers.length) {
        cfg = c;
        sites = c.site_numbers.join(",");
        dni();
      } else go();
    });
    setTimeout(guard(go), 3000);
    hook(w.history, "pushState", function () { spa(); });
    hook(w.history, "replaceState", function () { spa(1); });
    w.addEventListener("popstate", guard(function () { spa(); }));
    d.addEventListener("visibilitychange", guard(function () {
      if (d.visibilityState == "hidden") { engage(); flush(); } else visibleSince = Date.now();
    }));
    w.addEventListener("pagehide", guard(function () { engage(); flush(); }));
    d.addEventListener("click", guard(function (e) {
      for (var a = e.target, href; a && a.nodeName != "A"; a = a.parentNode);
      if (a && (href = a.getAttribute("href")) && /^\s*tel:/i.test(href)) { track("call_click", { tel: cut(href.trim(), 64) }); flush(); }
    }), true);
    d.addEventListener("submit", guard(function (e) {
      var f = e.target, id = f && f.getAttribute && (f.getAttribute("id") || f.getAttribute("name"));
      track("form_submit", id ? { form: cut(id, 100) } : {});
      flush();
    }), true);
    w.addEventListener("load", guard(function () { gcmInit(); tcfInit(); decide(); }));
  }

  // ---- loader ----
  try {
    var s = d.currentScript;
    var stub = w.ringpath = w.ringpath || function () { (stub.q = stub.q || []).push(arguments); };
    if (stub.l || !/^https?:$/.test(loc.protocol)) return; // a second copy of the snippet, or not a web page
    stub.l = 1;
    if (!s || !s.getAttribute("data-account")) {
      s = null;
      for (var all = d.getElementsByTagName("script"), i = all.length; i--;) {
        if (/rp\.js([?#]|$)/.test(all[i].src) && all[i].getAttribute("data-account")) { s = all[i]; break; }
      }
    }
    if (!s) return;
    // instantiateStreaming, else (older browsers, a proxy serving the wrong type) from the bytes.
    // build.sh writes rp.wasm's sha384 into the integrity: the browser refuses
    // any other rp.wasm, so an `integrity` on the script tag covers both files.
    var W = WebAssembly;
    fetch(s.src.replace(/[?#].*$/, "").replace(/[^\/]*$/, "") + "rp.wasm", { integrity: "__RP_WASM_SRI__" }).then(function (r) {
      var copy = r.clone();
      return (W.instantiateStreaming ? W.instantiateStreaming(r) : Promise.reject())["catch"](function () {
        return copy.arrayBuffer().then(function (b) { return W.instantiate(b); });
      });
    }).then(function (m) {
      X = m.instance.exports;
      utf8 = new TextEncoder();
      unutf8 = new TextDecoder();
      pageId = hex(16);
      var calls = [].slice.call(w.ringpath.q || []);
      var api = function (name, a, b) { try { command(name, a, b); } catch (e) {} };
      api.l = 1;
      w.ringpath = api;
      start(s, calls);
    })["catch"](noop);
  } catch (e) {}
})();
