//! `/status` as a page for people: self-contained (no CDN, no script), refreshed by the
//! browser every few seconds, one column on a phone. Each backend has a bar per second of its
//! last minute's calls, and its share of errors in red; rests and circuits say how long they
//! have left.
//!
//! Every value from the configuration or a backend goes through [`Page::text`], which escapes
//! it: a name cannot become markup.

use std::fmt::Write as _;

use super::{BackendStatus, CredentialStatus, Status, WindowStatus};
use crate::balance::health::Condition;

/// Seconds between refreshes.
const REFRESH_S: u32 = 5;

const STYLE: &str = r#"
:root{color-scheme:light dark;--fg:#1b1f24;--muted:#5b6470;--line:#d8dee4;--card:#fff;--bg:#f4f6f8;--ok:#1a7f37;--warn:#9a6700;--bad:#cf222e;--bar:#0969da}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9198a1;--line:#30363d;--card:#161b22;--bg:#0d1117;--bar:#4493f8;--ok:#3fb950;--warn:#d29922;--bad:#f85149}}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg)}
header{padding:12px 16px;border-bottom:1px solid var(--line);background:var(--card);display:flex;flex-wrap:wrap;gap:8px 20px;align-items:baseline}
h1{font-size:18px;margin:0}h2{font-size:15px;margin:20px 16px 8px}main{padding-bottom:24px}
.muted{color:var(--muted)}.ok{color:var(--ok)}.warn{color:var(--warn)}.bad{color:var(--bad)}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:12px;padding:0 16px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px}
.card h3{margin:0 0 2px;font-size:15px;display:flex;justify-content:space-between;gap:8px}
dl{display:grid;grid-template-columns:auto 1fr;gap:2px 12px;margin:8px 0 0}dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
svg.bars{width:100%;height:40px;display:block;margin-top:8px}svg.bars rect.c{fill:var(--bar)}svg.bars rect.e{fill:var(--bad)}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:4px 8px 4px 0;border-bottom:1px solid var(--line);vertical-align:top}
.meter{height:6px;background:var(--line);border-radius:3px;overflow:hidden;min-width:80px}.meter>span{display:block;height:100%;background:var(--bar)}
.wrap{padding:0 16px;overflow-x:auto}code{font-size:12px}
"#;

/// A page being written: markup from literals, text escaped.
struct Page(String);

impl Page {
    fn raw(&mut self, markup: &str) -> &mut Self {
        self.0.push_str(markup);
        self
    }

    fn text(&mut self, text: &str) -> &mut Self {
        for c in text.chars() {
            match c {
                '<' => self.0.push_str("&lt;"),
                '>' => self.0.push_str("&gt;"),
                '&' => self.0.push_str("&amp;"),
                '"' => self.0.push_str("&quot;"),
                '\'' => self.0.push_str("&#39;"),
                c => self.0.push(c),
            }
        }
        self
    }
}

/// A duration in words a person reads at a glance.
fn span(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..120_000 => format!("{:.0} s", ms as f64 / 1000.0),
        120_000..7_200_000 => format!("{} min", ms / 60_000),
        _ => format!("{} h", ms / 3_600_000),
    }
}

fn condition(c: &Condition) -> (&'static str, String) {
    match c {
        Condition::Fit => ("ok", "fit".into()),
        Condition::Trial => ("warn", "circuit half-open: next call is a trial".into()),
        Condition::Resting {
            ms,
            circuit_open: true,
        } => ("bad", format!("circuit open, {} left", span(*ms))),
        Condition::Resting { ms, .. } => ("warn", format!("resting, {} left", span(*ms))),
    }
}

pub fn render(status: &Status) -> String {
    let mut p = Page(String::with_capacity(16 * 1024));
    let _ = write!(
        p.0,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta http-equiv="refresh" content="{REFRESH_S}"><title>aoai-gateway status</title><style>{STYLE}</style></head><body><header><h1>aoai-gateway</h1>"#
    );
    match status.unready {
        None => p.raw(r#"<span class="ok">ready</span>"#),
        Some(why) => p
            .raw(r#"<span class="bad">not ready: "#)
            .text(why)
            .raw("</span>"),
    };
    let _ = write!(
        p.0,
        r#"<span class="muted">up {} · refreshes every {REFRESH_S} s</span>"#,
        span(status.uptime_s * 1000)
    );
    let config_age = status.at_ms.saturating_sub(status.config.loaded_at_ms);
    let _ = write!(
        p.0,
        r#"<span class="muted">configuration loaded {} ago</span>"#,
        span(config_age)
    );
    if let Some(last) = &status.config.last_reload {
        let age = span(status.at_ms.saturating_sub(last.at_ms));
        if last.applied {
            let _ = write!(
                p.0,
                r#"<span class="ok">last reload applied {age} ago</span>"#
            );
        } else {
            let _ = write!(p.0, r#"<span class="bad">last reload refused {age} ago: "#);
            p.text(&last.notes.join("; ")).raw("</span>");
        }
    }
    match status.shared_state_up {
        Some(true) => p.raw(r#"<span class="ok">Redis up</span>"#),
        Some(false) => p.raw(r#"<span class="bad">Redis down: each replica on its own</span>"#),
        None => p.raw(r#"<span class="muted">state: this replica's own</span>"#),
    };
    p.raw("</header><main>");

    let balancing = &status.balancing;
    p.raw(r#"<p class="wrap muted">Within a tier: "#)
        .text(balancing.policy);
    for (name, policy) in &balancing.deployments {
        p.raw("; ").text(name).raw(": ").text(policy);
    }
    let _ = write!(p.0, " (load factor {})</p>", balancing.load_factor);
    for tier in &status.tiers {
        let _ = write!(p.0, r#"<h2>Tier {}</h2><div class="grid">"#, tier.priority);
        for b in &tier.backends {
            backend(&mut p, b);
        }
        p.raw("</div>");
    }

    p.raw(r#"<h2>Subscriptions</h2><div class="wrap"><table><tr><th>subscription</th><th>scope</th><th>limits</th><th>left now</th></tr>"#);
    for s in &status.subscriptions {
        if s.windows.is_empty() {
            p.raw("<tr><td>")
                .text(&s.name)
                .raw(r#"</td><td colspan="3" class="muted">no limits</td></tr>"#);
        }
        for w in &s.windows {
            subscription_row(&mut p, &s.name, w);
        }
    }
    p.raw("</table></div>");

    if !status.issuers.is_empty() {
        p.raw(r#"<h2>Entra ID issuers</h2><div class="wrap"><table><tr><th>issuer</th><th>signing keys</th></tr>"#);
        for i in &status.issuers {
            p.raw("<tr><td>").text(&i.issuer).raw("</td><td>");
            let class = if i.keys == 0 { "bad" } else { "ok" };
            let _ = write!(p.0, r#"<span class="{class}">{} held</span> "#, i.keys);
            p.raw(r#"<span class="muted">"#)
                .text(&i.keys_url)
                .raw("</span></td></tr>");
        }
        p.raw("</table></div>");
    }

    p.raw(r#"<h2>Compiled api-versions</h2><div class="wrap"><table><tr><th>api-version</th><th>spec</th><th>SHA-256</th></tr>"#);
    for v in &status.api_versions {
        p.raw("<tr><td>").text(v.version);
        if !v.mount.is_empty() {
            p.raw(r#" <span class="muted">"#)
                .text(v.mount)
                .raw("</span>");
        }
        p.raw("</td><td>").text(v.source);
        for o in &v.overlays {
            p.raw(r#"<br><span class="muted">+ "#)
                .text(o)
                .raw("</span>");
        }
        p.raw("</td><td><code>")
            .text(v.sha256.get(..16).unwrap_or(v.sha256))
            .raw("…</code></td></tr>");
    }
    p.raw("</table></div>");

    if !status.objects.is_empty() {
        p.raw(r#"<h2>Stored objects</h2><div class="wrap"><table><tr><th>kind</th><th>in the directory</th></tr>"#);
        for (kind, n) in &status.objects {
            p.raw("<tr><td>").text(kind);
            let _ = write!(p.0, "</td><td>{n}</td></tr>");
        }
        p.raw("</table></div>");
    }
    p.raw(r#"<p class="wrap muted">The same as JSON: <code>status.json</code></p></main></body></html>"#);
    p.0
}

/// `n` and the noun, singular or plural.
fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn backend(p: &mut Page, b: &BackendStatus) {
    let resting = b.condition.deployments.len() as u64;
    let (class, state) = match condition(&b.condition.backend) {
        ("ok", _) if resting > 0 => ("warn", format!("{} resting", count(resting, "deployment"))),
        other => other,
    };
    p.raw(r#"<section class="card"><h3><span>"#).text(&b.name);
    let _ = write!(p.0, r#"</span><span class="{class}">"#);
    p.text(&state).raw(r#"</span></h3><div class="muted">"#);
    p.text(&b.region).raw(" · ").text(&b.host);
    let _ = write!(p.0, " · weight {}</div>", b.weight);
    bars(
        p,
        &b.last_minute.per_second,
        b.last_minute.calls,
        b.last_minute.errors,
    );
    let m = &b.last_minute;
    let _ = write!(
        p.0,
        "<dl><dt>last minute</dt><dd>{}, ",
        count(m.calls, "call")
    );
    let error_class = if m.errors > 0 { "bad" } else { "ok" };
    let _ = write!(
        p.0,
        r#"<span class="{error_class}">{}</span>"#,
        count(m.errors, "error")
    );
    if let Some(ms) = m.mean_header_ms {
        let _ = write!(p.0, ", {ms:.0} ms to headers");
    }
    let _ = write!(p.0, "</dd><dt>in flight</dt><dd>{}</dd>", b.in_flight);
    if b.sessions > 0 {
        let _ = write!(p.0, "<dt>realtime sessions</dt><dd>{}</dd>", b.sessions);
    }
    if b.remaining_tokens.is_some() || b.remaining_requests.is_some() {
        p.raw("<dt>last remaining</dt><dd>");
        if let Some(t) = b.remaining_tokens {
            let _ = write!(p.0, "{t} tokens ");
        }
        if let Some(r) = b.remaining_requests {
            let _ = write!(p.0, "{r} requests");
        }
        p.raw("</dd>");
    }
    // Each deployment once: its rest, if it rests, and the room it last reported.
    let mut deployments: Vec<&str> = b
        .condition
        .deployments
        .iter()
        .map(|(d, _)| d.as_str())
        .collect();
    for (d, _, _) in &b.condition.headroom {
        if !deployments.contains(&d.as_str()) {
            deployments.push(d);
        }
    }
    for deployment in deployments {
        p.raw("<dt>").text(deployment).raw("</dt><dd>");
        if let Some((_, c)) = b
            .condition
            .deployments
            .iter()
            .find(|(d, _)| d == deployment)
        {
            let (class, state) = condition(c);
            let _ = write!(p.0, r#"<span class="{class}">"#);
            p.text(&state).raw("</span> · ");
        }
        if let Some((_, tokens, age)) = b
            .condition
            .headroom
            .iter()
            .find(|(d, _, _)| d == deployment)
        {
            let _ = write!(p.0, "{tokens} tokens left ({} ago)", span(*age));
        }
        p.raw("</dd>");
    }
    match &b.credential {
        CredentialStatus::ApiKey => p.raw("<dt>credential</dt><dd>api-key</dd>"),
        CredentialStatus::Entra {
            describe,
            usable_s,
            failure,
        } => {
            p.raw("<dt>credential</dt><dd>Entra ID, ").text(describe);
            match usable_s {
                Some(s) => {
                    let _ = write!(
                        p.0,
                        r#": <span class="ok">token usable {} more</span>"#,
                        span(s * 1000)
                    );
                }
                None => {
                    p.raw(r#": <span class="bad">no usable token</span>"#);
                }
            }
            if let Some(why) = failure {
                p.raw(r#" <span class="bad">"#).text(why).raw("</span>");
            }
            p.raw("</dd>")
        }
    };
    p.raw("</dl></section>");
}

/// One bar per second of the last minute, as tall as its calls against the busiest second's;
/// the minute's error share as a red band at the foot.
fn bars(p: &mut Page, per_second: &[u64], calls: u64, errors: u64) {
    let top = per_second.iter().copied().max().unwrap_or(0).max(1);
    let _ = write!(
        p.0,
        r#"<svg class="bars" viewBox="0 0 {} 40" preserveAspectRatio="none" role="img" aria-label="calls per second over the last minute">"#,
        per_second.len() * 2
    );
    for (i, n) in per_second.iter().enumerate() {
        if *n > 0 {
            let h = (*n as f64 / top as f64 * 36.0).max(1.0);
            let _ = write!(
                p.0,
                r#"<rect class="c" x="{}" y="{:.1}" width="1.6" height="{h:.1}"/>"#,
                i * 2,
                36.0 - h
            );
        }
    }
    if calls > 0 && errors > 0 {
        let w = errors as f64 / calls as f64 * (per_second.len() * 2) as f64;
        let _ = write!(
            p.0,
            r#"<rect class="e" x="0" y="37" width="{w:.1}" height="3"/>"#
        );
    }
    p.raw("</svg>");
}

fn subscription_row(p: &mut Page, name: &str, w: &WindowStatus) {
    p.raw("<tr><td>").text(name).raw("</td><td>");
    match &w.deployment {
        Some(d) => p.text(d),
        None => p.raw("all deployments"),
    };
    p.raw("</td><td>");
    let l = &w.limits;
    let parts = [
        (l.tokens_per_minute, "tokens/min"),
        (l.requests_per_minute, "requests/min"),
        (l.tokens_per_day, "tokens/day"),
    ];
    let given: Vec<String> = parts
        .iter()
        .filter_map(|(n, what)| n.map(|n| format!("{n} {what}")))
        .collect();
    p.text(&given.join(", ")).raw("</td><td>");
    let token_limit = l.tokens_per_minute.or(l.tokens_per_day);
    for (left, limit, what) in [
        (w.tokens_left, token_limit, "tokens"),
        (w.requests_left, l.requests_per_minute, "requests"),
    ] {
        if let (Some(left), Some(limit)) = (left, limit) {
            let used = limit.saturating_sub(left) as f64 / limit.max(1) as f64 * 100.0;
            let _ = write!(
                p.0,
                r#"<div>{left} {what} <div class="meter" title="{used:.0}% used"><span style="width:{used:.0}%"></span></div></div>"#
            );
        }
    }
    p.raw("</td></tr>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        let mut p = Page(String::new());
        p.text("<script>\"x\" & 'y'</script>");
        assert_eq!(
            p.0,
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn spans_read_at_a_glance() {
        assert_eq!(span(250), "250 ms");
        assert_eq!(span(42_000), "42 s");
        assert_eq!(span(600_000), "10 min");
        assert_eq!(span(7_200_000), "2 h");
    }
}
