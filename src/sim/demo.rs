//! `aoai-gateway demo`: the gateway in front of simulated Azure OpenAI resources on loopback,
//! configured the way a real deployment would be, so that a newcomer can try it with curl or the
//! openai SDK before any Azure endpoint exists: a provisioned (PTU) resource with a small quota
//! in front of two pay-as-you-go regions, a team without limits and a team with a small one.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{BackendConfig, FileConfig, SubscriptionConfig};
use crate::live::Live;
use crate::proxy::{self, Gateway};
use crate::sim::{self, Simulator, SimulatorConfig};

/// The demo's subscription key: printed, and only ever bound to loopback.
pub const DEMO_KEY: &str = "demo-key";
/// The key of the demo's team with a small token limit.
pub const SMALL_KEY: &str = "small-team-key";
/// That team's tokens per minute.
const SMALL_LIMIT: u64 = 200;

/// (name, region, priority, the simulated quota in tokens per minute)
const RESOURCES: [(&str, &str, u32, Option<u64>); 3] = [
    // Provisioned: paid for whether used or not, so it is filled first. 600 tokens a minute
    // is 100 per 10 s window: five or six calls.
    ("ptu-eastus", "East US", 1, Some(600)),
    ("eastus", "East US", 2, None),
    ("swedencentral", "Sweden Central", 2, None),
];

pub async fn run(listen: &str) -> Result<(), String> {
    let listener = TcpListener::bind(listen)
        .map_err(|e| format!("cannot listen on {listen}: {e} (pick another with --listen)"))?;
    let mut env = HashMap::new();
    let mut backends = Vec::new();
    let mut simulators = Vec::new();
    for (i, (name, region, priority, quota)) in RESOURCES.into_iter().enumerate() {
        // A fresh key per run: the demo's backends are as closed as real ones.
        let key = format!(
            "sim-{name}-{:x}",
            std::process::id() as u64 * 7919
                + i as u64
                + std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0)
        );
        let mut config = SimulatorConfig::new(region, &key);
        config.chunk_delay = Duration::from_millis(60);
        config.tokens_per_minute = quota;
        let sim_listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let (sim_server, addr) =
            sim::start(Simulator::new(config), sim_listener).map_err(|e| e.to_string())?;
        actix_web::rt::spawn(sim_server);
        simulators.push(addr);
        let key_env = format!("DEMO_{}_KEY", name.to_ascii_uppercase());
        env.insert(key_env.clone(), key);
        let mut backend = BackendConfig::new(name, &format!("http://{addr}"), &key_env);
        backend.region = region.to_string();
        backend.priority = priority;
        // In pay-as-you-go East US, `busy` is a deployment over its quota: calls to it fail
        // over; the provisioned resource does not have it.
        match name {
            "eastus" => {
                backend.deployment_map = [("busy".to_string(), "rate-limited".to_string())].into()
            }
            "ptu-eastus" => backend.deployments = vec!["gpt-4o".into(), "embeddings".into()],
            _ => {}
        }
        backends.push(backend);
    }
    env.insert("DEMO_SUBSCRIPTION_KEY".into(), DEMO_KEY.into());
    env.insert("DEMO_SMALL_TEAM_KEY".into(), SMALL_KEY.into());
    let mut config: FileConfig = toml::from_str("").map_err(|e| e.to_string())?;
    config.listen = listen.to_string();
    config.backends = backends;
    let mut small = SubscriptionConfig::with_key_env("small-team", "DEMO_SMALL_TEAM_KEY");
    small.limits.tokens_per_minute = Some(SMALL_LIMIT);
    config.subscriptions = vec![
        SubscriptionConfig::with_key_env("demo", "DEMO_SUBSCRIPTION_KEY"),
        small,
    ];
    let versions: Vec<&str> = crate::generated::API_VERSIONS
        .iter()
        .map(|v| v.version)
        .collect();
    let settings = config
        .check("(demo)", &env, &versions)
        .map_err(|e| e.to_string())?;
    let base = settings.base_path.clone();
    let docs = settings.docs.path.clone();
    let metrics = settings.metrics.path.clone();
    let status = settings.status.path.clone();
    let (gateway, addr) = proxy::start(
        Arc::new(Live::new(Gateway::new(settings)?, None)),
        listener,
        true,
    )
    .map_err(|e| e.to_string())?;
    // The newest dated version that is not a preview (dated versions are mounted at the base
    // path itself; the v1 API has its own mount).
    let dated: Vec<&str> = crate::generated::API_VERSIONS
        .iter()
        .filter(|v| v.mount.is_empty())
        .map(|v| v.version)
        .collect();
    let latest_stable = dated
        .iter()
        .rev()
        .find(|v| !v.contains("preview"))
        .or(dated.first())
        .copied()
        .unwrap_or("2024-10-21");
    let v1 = crate::generated::API_VERSIONS
        .iter()
        .find(|v| !v.mount.is_empty())
        .map(|v| {
            format!(
                r#"
The v1 API is served too, at http://{addr}{base}{mount}: the plain OpenAI client, the deployment
as `model`:

  from openai import OpenAI
  client = OpenAI(base_url="http://{addr}{base}{mount}/", api_key="{DEMO_KEY}")
  first = client.responses.create(model="gpt-4o", input="Hello!")
  print(first.output_text)

Responses are stored in the resource that answered; the gateway remembers which, so the
conversation carries on there, and only team "demo" may read it (team "small-team" gets 404):

  second = client.responses.create(model="gpt-4o", input="And then?", previous_response_id=first.id)
  print(client.responses.retrieve(second.id).output_text)
  OpenAI(base_url=client.base_url, api_key="{SMALL_KEY}").responses.retrieve(first.id)  # NotFoundError

Realtime sessions too (pip install "openai[realtime]"): one WebSocket, balanced once, its
events relayed both ways and each response's usage counted:

  with client.realtime.connect(model="gpt-realtime") as connection:
      connection.session.update(session={{"type": "realtime", "instructions": "Be brief."}})
      connection.response.create()
      for event in connection:
          print(event.type)
          if event.type == "response.done": break
"#,
                mount = v.mount
            )
        })
        .unwrap_or_default();
    let chat = format!(
        "http://{addr}{base}/deployments/gpt-4o/chat/completions?api-version={latest_stable}"
    );
    println!(
        r#"aoai-gateway demo: the gateway on http://{addr}{base}, in front of three simulated Azure
OpenAI resources on loopback:
  ptu-eastus     {ptu}  East US, provisioned (priority 1), quota 600 tokens a minute
  eastus         {east}  East US, pay-as-you-go (priority 2)
  swedencentral  {west}  Sweden Central, pay-as-you-go (priority 2)
Subscription keys: {DEMO_KEY} (team "demo", no limits) and {SMALL_KEY} (team "small-team",
{SMALL_LIMIT} tokens a minute).

Calls go to the provisioned deployment first. After five calls its quota for the current 10 s
is nearly spent (it says so in x-ratelimit-remaining-tokens), and the next calls spill over to
pay-as-you-go, alternating East US and Sweden Central; run it again 10 s later and they are back
on ptu-eastus:

  for i in $(seq 8); do curl -si "{chat}" \
    -H "api-key: {DEMO_KEY}" -H "content-type: application/json" \
    -d '{{"messages": [{{"role": "user", "content": "Hello!"}}], "max_tokens": 20}}' \
    | grep -i "^x-aoai-gateway-backend"; done

The team "small-team" may spend {SMALL_LIMIT} tokens a minute. A call that may spend 198 (its
prompt and max_tokens) fits once; the second is refused by the gateway itself, before any
backend, with 429 and the retry-after its window gives:

  for i in 1 2; do curl -si "{chat}" \
    -H "api-key: {SMALL_KEY}" -H "content-type: application/json" \
    -d '{{"messages": [{{"role": "user", "content": "Hello!"}}], "max_tokens": 190}}' \
    | grep -Ei "^(HTTP|retry-after|x-ratelimit-remaining-tokens)"; done

The deployment `busy` is over its quota in pay-as-you-go East US (429, retry-after 7 s): calls
to it fail over to Sweden Central, and East US rests for that deployment until the retry-after
has passed:

  curl -si "http://{addr}{base}/deployments/busy/chat/completions?api-version={latest_stable}" \
    -H "api-key: {DEMO_KEY}" -H "content-type: application/json" \
    -d '{{"messages": [{{"role": "user", "content": "Hello!"}}]}}' | grep -Ei "^(x-ms-region|x-aoai-gateway-backend)"

Who spent what, by team, deployment, backend and kind of token:

  curl -s http://{addr}{metrics} | grep -E "^aoai_gateway_(tokens_total|limit_refusals_total)"

Or with the openai SDK (pip install openai):

  from openai import AzureOpenAI
  client = AzureOpenAI(azure_endpoint="http://{addr}", api_key="{DEMO_KEY}", api_version="{latest_stable}")
  for chunk in client.chat.completions.create(model="gpt-4o", stream=True,
          messages=[{{"role": "user", "content": "Hello!"}}]):
      print(chunk.choices[0].delta.content or "" if chunk.choices else "", end="", flush=True)
{v1}
Route docs: http://{addr}{docs}    Metrics: http://{addr}{metrics}    Status: http://{addr}{status}
Compiled api-versions: {versions}
Ctrl-C stops the demo."#,
        ptu = simulators[0],
        east = simulators[1],
        west = simulators[2],
        versions = versions.join(", "),
    );
    gateway.await.map_err(|e| e.to_string())
}
