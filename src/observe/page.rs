//! The receiver's status page: one self-contained HTML document (no external assets) whose
//! inline script polls `/status.json` every second and draws the link state, heartbeat age,
//! fingerprint match, per-channel rates and loss, the spool and consumer server (when there
//! are), and an inline SVG plot of the last minutes of throughput and loss. Values are inserted as text, never as HTML.

/// The page served at `/`.
pub const PAGE: &str = r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>weir-recv status</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.3em} table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right} th{background:#eee}
td:first-child,th:first-child{text-align:left}
.up{color:#080;font-weight:bold}.down{color:#c00;font-weight:bold}.waiting{color:#a60;font-weight:bold}
svg{background:#fff;border:1px solid #ccc}
</style></head><body>
<h1>weir-recv — one-way link status</h1>
<table id="summary">
<tr><th>link</th><td id="link">…</td></tr>
<tr><th>heartbeat age</th><td id="heartbeat_age">…</td></tr>
<tr><th>policy fingerprint</th><td id="fingerprint">…</td></tr>
<tr><th>sender session</th><td id="session">…</td></tr>
<tr><th>sender restarts</th><td id="sender_restarts">…</td></tr>
<tr><th>datagrams received</th><td id="datagrams">…</td></tr>
<tr><th>messages lost</th><td id="messages_lost">…</td></tr>
<tr><th>datagrams dropped</th><td id="drops">…</td></tr>
</table>
<h2>Channels</h2>
<table><thead><tr><th>channel</th><th>messages</th><th>msg/s</th><th>bytes/s</th><th>lost</th><th>lost/s</th></tr></thead>
<tbody id="channels"></tbody></table>
<div id="spool_section" hidden>
<h2>Spool and consumers</h2>
<table><thead><tr><th>channel</th><th>first offset</th><th>durable</th><th>stored bytes</th><th>dropped</th><th>state</th></tr></thead>
<tbody id="spool"></tbody></table>
<p id="consumers"></p>
</div>
<h2>Throughput and loss (last minutes)</h2>
<svg id="plot" width="720" height="220" viewBox="0 0 720 220" role="img" aria-label="throughput and loss">
<polyline id="bytes" fill="none" stroke="#06c" stroke-width="1.5" points=""/>
<polyline id="lost" fill="none" stroke="#c00" stroke-width="1.5" points=""/>
<text x="6" y="14" fill="#06c" id="bytes_label">bytes/s</text>
<text x="6" y="30" fill="#c00" id="lost_label">lost msg/s</text>
</svg>
<p id="error" style="color:#c00"></p>
<script>
"use strict";
function set(id, text){ document.getElementById(id).textContent = String(text); }
function fmt(n){ if(n===null||n===undefined) return "—"; if(n>=1e9) return (n/1e9).toFixed(2)+" G"; if(n>=1e6) return (n/1e6).toFixed(2)+" M"; if(n>=1e3) return (n/1e3).toFixed(1)+" k"; return (Math.round(n*10)/10).toString(); }
function line(id, points, idx, w, h){
  let max = 0; for(const p of points) max = Math.max(max, p[idx]);
  const n = points.length, step = n > 1 ? w/(n-1) : 0;
  const pts = points.map((p,i)=>(i*step).toFixed(1)+","+(h-4-(max>0?p[idx]/max*(h-40):0)).toFixed(1));
  document.getElementById(id).setAttribute("points", pts.join(" "));
  return max;
}
async function refresh(){
  try{
    const r = await fetch("/status.json", {cache:"no-store"});
    const s = await r.json();
    const link = document.getElementById("link"); link.textContent = s.link; link.className = s.link;
    set("heartbeat_age", s.heartbeat_age_s===null ? "never" : s.heartbeat_age_s.toFixed(1)+" s");
    set("fingerprint", s.fingerprint_match===null ? "unknown" : (s.fingerprint_match ? "match" : "MISMATCH"));
    set("session", s.session===null ? "none" : s.session);
    set("sender_restarts", s.sender_restarts);
    set("datagrams", s.counters.datagrams);
    set("messages_lost", s.counters.messages_lost);
    set("drops", Object.entries(s.drops).filter(e=>e[1]>0).map(e=>e[0]+"="+e[1]).join(" ") || "0");
    const body = document.getElementById("channels"); body.replaceChildren();
    for(const c of s.channels){
      const tr = document.createElement("tr"); tr.className = "channel";
      for(const v of [c.name, c.messages, fmt(c.message_rate), fmt(c.byte_rate), c.lost, fmt(c.loss_rate)]){
        const td = document.createElement("td"); td.textContent = String(v); tr.appendChild(td);
      }
      body.appendChild(tr);
    }
    document.getElementById("spool_section").hidden = !Array.isArray(s.spool);
    const spool = document.getElementById("spool"); spool.replaceChildren();
    for(const c of (s.spool || [])){
      const tr = document.createElement("tr"); tr.className = "spool";
      for(const v of [c.name, c.start, c.durable, fmt(c.stored_bytes), c.dropped, c.full ? "FULL" : "ok"]){
        const td = document.createElement("td"); td.textContent = String(v); tr.appendChild(td);
      }
      spool.appendChild(tr);
    }
    const k = s.consumers;
    set("consumers", k ? "consumers: "+k.connections+" connected, "+k.records+" records ("+fmt(k.bytes)+"B) served; refused: "+k.handshake_failures+" handshakes, "+k.denied+" subscriptions, "+k.refused_busy+" over the limit; "+k.gaps+" gap notices" : "");
    const bmax = line("bytes", s.history, 1, 720, 220);
    const lmax = line("lost", s.history, 3, 720, 220);
    set("bytes_label", "bytes/s (max "+fmt(bmax)+")");
    set("lost_label", "lost msg/s (max "+fmt(lmax)+")");
    set("error", "");
  }catch(e){ set("error", "cannot fetch /status.json: "+e); }
}
refresh(); setInterval(refresh, 1000);
</script></body></html>
"##;
