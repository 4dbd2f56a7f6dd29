//! Reloading the configuration without a restart: the real binary, real SIGHUPs and a watched
//! file, secrets in files as Kubernetes mounts them, and the official SDK sending a steady load
//! the whole time, which must see no failed call.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aoai_gateway::sim::{self, Simulator, SimulatorConfig};
use serde_json::Value;

const CHAT: &str = "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21";
const BODY: &str = r#"{"messages":[{"role":"user","content":"Hello"}],"max_tokens":5}"#;
const LOAD_KEY: &str = "load-team-key";
const LIMITED_KEY: &str = "limited-team-key";

/// A simulated resource, recording what it receives.
fn resource(region: &str, key: &str) -> (Arc<Simulator>, SocketAddr) {
    let mut config = SimulatorConfig::new(region, key);
    config.record = true;
    config.chunk_delay = Duration::from_millis(1);
    config.workers = 2;
    let sim = Simulator::new(config);
    let (server, addr) = sim::start(sim.clone(), TcpListener::bind("127.0.0.1:0").expect("bind"))
        .expect("simulator starts");
    actix_web::rt::spawn(server);
    (sim, addr)
}

/// What the configuration file says, as the test changes it.
struct Plan {
    port: u16,
    dir: PathBuf,
    /// (name, address, the key's environment variable, or `None` for its file `<name>.key`)
    backends: Vec<(&'static str, SocketAddr, Option<&'static str>)>,
    limited_rpm: u64,
    watch: bool,
}

impl Plan {
    fn text(&self) -> String {
        let mut text = format!(
            "listen = \"127.0.0.1:{}\"\nworkers = 2\n[reload]\nwatch = {}\n",
            self.port, self.watch
        );
        for (name, addr, env) in &self.backends {
            let key = match env {
                Some(var) => format!("api_key_env = \"{var}\""),
                None => format!(
                    "api_key_file = \"{}\"",
                    self.dir.join(format!("{name}.key")).display()
                ),
            };
            text.push_str(&format!(
                "[[backends]]\nname = \"{name}\"\nendpoint = \"http://{addr}\"\nregion = \"{name}\"\n{key}\n"
            ));
        }
        text.push_str(&format!(
            "[[subscriptions]]\nname = \"load\"\nkey_env = \"RELOAD_TEST_LOAD_KEY\"\n\
             [[subscriptions]]\nname = \"team\"\nkey_file = \"{}\"\n\
             [[subscriptions]]\nname = \"limited\"\nkey_env = \"RELOAD_TEST_LIMITED_KEY\"\n\
             [subscriptions.limits]\nrequests_per_minute = {}\n",
            self.dir.join("team.key").display(),
            self.limited_rpm
        ));
        text
    }

    fn write(&self) {
        write_file(&self.config(), &self.text());
    }

    fn config(&self) -> PathBuf {
        self.dir.join("gateway.toml")
    }
}

/// Replaces a file as a Kubernetes secret mount does: the new content written aside, then
/// renamed over the old, so that no reader sees half a file.
fn write_file(path: &Path, text: &str) {
    let aside = path.with_extension("new");
    std::fs::write(&aside, text).expect("write");
    std::fs::rename(&aside, path).expect("rename");
}

struct Served {
    child: Child,
    base: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    fn hangup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let client = awc::Client::default();
        let mut reply = client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("the gateway answers");
        let body = reply.body().limit(1 << 22).await.expect("body");
        (
            reply.status().as_u16(),
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    async fn chat(&self, key: &str) -> u16 {
        let client = awc::Client::default();
        let mut reply = client
            .post(format!("{}{CHAT}", self.base))
            .insert_header(("api-key", key))
            .insert_header(("content-type", "application/json"))
            .send_body(BODY)
            .await
            .expect("the gateway answers");
        let _ = reply.body().await;
        reply.status().as_u16()
    }

    async fn status(&self) -> Value {
        let (code, status) = self.get("/status.json").await;
        assert_eq!(code, 200);
        serde_json::from_str(&status).expect("status JSON")
    }

    /// Waits for a reload after `since` (ms since the epoch) to be recorded, and returns it.
    async fn reload_after(&self, since: u64) -> Value {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            let last = self.status().await["config"]["last_reload"].clone();
            if last["at_ms"].as_u64().is_some_and(|at| at > since) {
                return last;
            }
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no reload was recorded");
    }

    /// Sends SIGHUP and waits for the reload; it must have been `applied` or not.
    async fn reload(&self, applied: bool) -> Value {
        let since = self.status().await["at_ms"].as_u64().expect("at_ms");
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
        self.hangup();
        let last = self.reload_after(since).await;
        assert_eq!(last["applied"], applied, "{last}");
        last
    }
}

fn serve(plan: &Plan) -> Served {
    plan.write();
    let child = Command::new(env!("CARGO_BIN_EXE_aoai-gateway"))
        .args(["serve", "--config"])
        .arg(plan.config())
        .env("RELOAD_TEST_LOAD_KEY", LOAD_KEY)
        .env("RELOAD_TEST_LIMITED_KEY", LIMITED_KEY)
        .env("RELOAD_TEST_WEST_KEY", "west-key")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("the binary starts");
    Served {
        child,
        base: format!("http://127.0.0.1:{}", plan.port),
    }
}

async fn ready(gw: &Served) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        let client = awc::Client::default();
        if let Ok(reply) = client.get(format!("{}/readyz", gw.base)).send().await
            && reply.status().is_success()
        {
            return;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the gateway did not become ready");
}

/// Waits until `sim` has received more than `than` requests.
async fn receives_more(sim: &Simulator, than: usize, what: &str) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if sim.received() > than {
            return;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what}: no call arrived");
}

fn backend<'s>(status: &'s Value, name: &str) -> Option<&'s Value> {
    status["tiers"]
        .as_array()?
        .iter()
        .flat_map(|t| t["backends"].as_array().into_iter().flatten())
        .find(|b| b["name"] == name)
}

#[test]
#[ignore = "needs the Python venv (openai SDK): scripts/test.sh runs it"]
fn reloads_under_load_fail_no_call() {
    common::run(async {
        let (east, east_addr) = resource("eastus", "east-key-1");
        // An Azure resource has two keys, both valid: the gateway uses key1.
        east.set_keys("east-key-1", "east-key-2");
        let (west, west_addr) = resource("westus", "west-key");
        let (central, central_addr) = resource("centralus", "central-key");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let dir = std::env::temp_dir().join(format!("aoai-reload-{port}"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        write_file(&dir.join("eastus.key"), "east-key-1\n");
        write_file(&dir.join("centralus.key"), "central-key");
        write_file(&dir.join("team.key"), "team-key-1\n");
        let mut plan = Plan {
            port,
            dir: dir.clone(),
            backends: vec![
                ("eastus", east_addr, None),
                ("westus", west_addr, Some("RELOAD_TEST_WEST_KEY")),
            ],
            limited_rpm: 1000,
            watch: false,
        };
        let gw = serve(&plan);
        ready(&gw).await;

        let stop = dir.join("stop");
        let _ = std::fs::remove_file(&stop);
        let load = Command::new(common::python())
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/conformance/steady_load.py"
            ))
            .env("GATEWAY_ENDPOINT", &gw.base)
            .env("GATEWAY_KEY", LOAD_KEY)
            .env("THREADS", "6")
            .env("SECONDS", "180")
            .env("STOP_FILE", &stop)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python starts");
        receives_more(&west, 20, "the load").await;

        // 1. The backend's key rotated: the gateway's file gets key2, then key1 is
        // regenerated on the resource. Every call keeps working.
        write_file(&dir.join("eastus.key"), "east-key-2\n");
        gw.reload(true).await;
        // As an operator does, the old key is regenerated once the calls that started with it
        // have had time to end.
        let in_flight_end = Duration::from_millis(500);
        actix_web::rt::time::sleep(in_flight_end).await;
        east.set_keys("east-key-3", "east-key-2");
        receives_more(&east, east.received() + 20, "eastus on key2").await;

        // 2. A backend added takes calls at once.
        plan.backends.push(("centralus", central_addr, None));
        plan.write();
        gw.reload(true).await;
        receives_more(&central, 0, "the added backend").await;

        // 3. A backend removed takes no new calls; those in flight finished.
        plan.backends.retain(|b| b.0 != "westus");
        plan.write();
        gw.reload(true).await;
        actix_web::rt::time::sleep(Duration::from_millis(300)).await;
        let west_calls = west.received();
        receives_more(
            &central,
            central.received() + 50,
            "the load after westus left",
        )
        .await;
        assert_eq!(west.received(), west_calls, "a removed backend got a call");
        assert!(backend(&gw.status().await, "westus").is_none());

        // 4. A subscription's limit lowered applies to the next call; raised, likewise.
        plan.limited_rpm = 2;
        plan.write();
        gw.reload(true).await;
        assert_eq!(gw.chat(LIMITED_KEY).await, 200);
        assert_eq!(gw.chat(LIMITED_KEY).await, 200);
        assert_eq!(gw.chat(LIMITED_KEY).await, 429, "the lowered limit");
        plan.limited_rpm = 1000;
        plan.write();
        gw.reload(true).await;
        assert_eq!(
            gw.chat(LIMITED_KEY).await,
            200,
            "the raised limit, on the same window"
        );
        let status = gw.status().await;
        let limited = status["subscriptions"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == "limited"))
            .expect("limited in the status");
        assert_eq!(
            limited["windows"][0]["requests_left"], 997,
            "the window kept its 2 calls and the 3rd across two reloads: {limited}"
        );

        // 5. A broken file is refused, with its mistake; the configuration in use stays.
        write_file(&plan.config(), "listen = \n[[backends]]\n");
        let refused = gw.reload(false).await;
        assert!(
            refused["notes"][0]
                .as_str()
                .is_some_and(|n| n.contains("gateway.toml")),
            "{refused}"
        );
        plan.backends
            .push(("westus", west_addr, Some("RELOAD_TEST_WEST_KEY")));
        write_file(
            &plan.config(),
            &plan
                .text()
                .replace("RELOAD_TEST_WEST_KEY", "NOT_SET_ANYWHERE"),
        );
        let refused = gw.reload(false).await;
        assert!(
            refused["notes"][0]
                .as_str()
                .is_some_and(|n| n.contains("NOT_SET_ANYWHERE")),
            "a missing secret names its variable: {refused}"
        );
        assert!(
            backend(&gw.status().await, "westus").is_none(),
            "the old one stays"
        );
        assert_eq!(gw.chat("team-key-1").await, 200);

        // 6. A team's key rotated in its file; then a file holding the key's SHA-256.
        write_file(&dir.join("team.key"), "team-key-2\n");
        plan.write();
        gw.reload(true).await;
        assert_eq!(gw.chat("team-key-1").await, 401, "the old team key");
        assert_eq!(gw.chat("team-key-2").await, 200, "the new team key");
        use sha2::Digest;
        let digest: String = sha2::Sha256::digest(b"team-key-3")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        write_file(&dir.join("team.key"), &digest);
        gw.reload(true).await;
        assert_eq!(
            gw.chat("team-key-3").await,
            200,
            "a key given by its SHA-256"
        );

        // 7. A resting deployment stays resting across a reload, with what is left of its rest.
        let client = awc::Client::default();
        let mut reply = client
            .post(format!(
                "{}/openai/deployments/rate-limited/chat/completions?api-version=2024-10-21",
                gw.base
            ))
            .insert_header(("api-key", LOAD_KEY))
            .insert_header(("content-type", "application/json"))
            .send_body(BODY)
            .await
            .expect("answers");
        let _ = reply.body().await;
        assert_eq!(reply.status().as_u16(), 429);
        let resting = |status: &Value| -> Vec<(String, u64)> {
            status["tiers"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|t| t["backends"].as_array().into_iter().flatten())
                .flat_map(|b| {
                    let name = b["name"].as_str().unwrap_or_default().to_string();
                    b["condition"]["deployments"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|d| d[0] == "rate-limited")
                        .filter_map(move |d| Some((name.clone(), d[1]["ms"].as_u64()?)))
                })
                .collect()
        };
        let before = resting(&gw.status().await);
        assert!(!before.is_empty(), "the deployment rests");
        gw.reload(true).await;
        let after = resting(&gw.status().await);
        assert_eq!(
            before.iter().map(|r| &r.0).collect::<Vec<_>>(),
            after.iter().map(|r| &r.0).collect::<Vec<_>>(),
            "the same backends rest after the reload"
        );
        for ((_, was), (_, now)) in before.iter().zip(&after) {
            assert!(now <= was && *now > 0, "a rest goes on: {was} → {now}");
        }

        // 8. With `reload.watch`, a change of a secret file alone reloads.
        plan.watch = true;
        plan.write();
        gw.reload(true).await;
        // The watcher reads the files every second: its first reading is the baseline.
        actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
        let since = gw.status().await["at_ms"].as_u64().expect("at_ms");
        write_file(&dir.join("eastus.key"), "east-key-3");
        let watched = gw.reload_after(since).await;
        assert_eq!(watched["applied"], true, "{watched}");
        actix_web::rt::time::sleep(in_flight_end).await;
        east.set_keys("east-key-3", "");
        receives_more(&east, east.received() + 20, "eastus on key3").await;

        let (_, metrics) = gw.get("/metrics").await;
        let count = |outcome: &str| {
            common::metric(
                &metrics,
                &format!("aoai_gateway_config_reloads_total{{outcome=\"{outcome}\"}}"),
            )
        };
        assert_eq!((count("applied"), count("refused")), (Some(10), Some(2)));
        std::fs::write(&stop, "").expect("stop file");
        let output = actix_web::rt::task::spawn_blocking(move || load.wait_with_output())
            .await
            .expect("runner")
            .expect("the load ends");
        let summary: Value = serde_json::from_slice(&output.stdout).expect("a JSON summary");
        eprintln!("steady load through 12 reloads: {summary}");
        assert_eq!(summary["failed"], 0, "{summary}");
        assert!(
            summary["calls"].as_u64().is_some_and(|n| n > 500),
            "{summary}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    });
}
