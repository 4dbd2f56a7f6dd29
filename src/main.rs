//! The `aoai-gateway` command.

use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use aoai_gateway::generated::{API_VERSIONS, SOURCES};
use aoai_gateway::live::Live;
use aoai_gateway::proxy::{self, Gateway};
use aoai_gateway::sim::{self, Simulator, SimulatorConfig, demo};
use aoai_gateway::{config, logging};
use aoai_runtime::catalog::ApiVersion;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "aoai-gateway",
    version,
    about = "A typed gateway for Azure OpenAI: one endpoint in front of many regional deployments"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the gateway with a config file.
    Serve {
        #[arg(long, env = "AOAI_GATEWAY_CONFIG", default_value = "gateway.toml")]
        config: String,
    },
    /// Check a config file (and the environment it names) without serving.
    CheckConfig {
        #[arg(long, env = "AOAI_GATEWAY_CONFIG", default_value = "gateway.toml")]
        config: String,
    },
    /// List the routes compiled in.
    Routes {
        /// Only this api-version.
        #[arg(long)]
        api_version: Option<String>,
        /// Print the route table as JSON.
        #[arg(long)]
        json: bool,
        /// Show paths under this base path.
        #[arg(long, default_value = "/openai")]
        base_path: String,
    },
    /// Write the generated Rust sources into a folder, to read them.
    Codegen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Run the gateway in front of two simulated regional backends on loopback.
    Demo {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
    },
    /// Run one simulated Azure OpenAI resource (benchmarks, manual tests).
    Simulate {
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: String,
        #[arg(long, default_value = "East US")]
        region: String,
        /// Environment variable holding the key clients must send.
        #[arg(long, default_value = "SIMULATOR_API_KEY")]
        api_key_env: String,
        /// Pause between server-sent events, in milliseconds.
        #[arg(long, default_value_t = 20)]
        chunk_delay_ms: u64,
        /// How long a prompt stays in the resource's prompt cache after its last use, in
        /// milliseconds (Azure: minutes).
        #[arg(long, default_value_t = 300_000)]
        prompt_cache_ms: u64,
        /// How long each deployment call takes before its answer starts, in milliseconds.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        #[arg(long, default_value_t = 1)]
        workers: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `serve` starts the log as its config says; the other commands log as text.
    let _log = match &cli.command {
        Command::Serve { .. } => None,
        _ => logging::init(config::LogFormat::Text, "info").ok(),
    };
    let result = match cli.command {
        Command::Serve { config } => serve(&config),
        Command::CheckConfig { config } => check_config(&config).map(|_| ()),
        Command::Routes {
            api_version,
            json,
            base_path,
        } => routes(api_version.as_deref(), json, &base_path),
        Command::Codegen { out } => codegen(&out),
        Command::Demo { listen } => actix_web::rt::System::new().block_on(demo::run(&listen)),
        Command::Simulate {
            listen,
            region,
            api_key_env,
            chunk_delay_ms,
            prompt_cache_ms,
            latency_ms,
            workers,
        } => {
            let mut config = SimulatorConfig::new(&region, "");
            config.chunk_delay = Duration::from_millis(chunk_delay_ms);
            config.prompt_cache_life = Duration::from_millis(prompt_cache_ms);
            config.latency = Duration::from_millis(latency_ms);
            config.workers = workers;
            simulate(&listen, &api_key_env, config)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            for line in message.lines() {
                eprintln!("error: {line}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Writes to stdout; a reader that has gone away (`aoai-gateway routes | head`) ends the
/// command quietly rather than with a panic.
fn print(text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(format!("stdout: {e}")),
        _ => Ok(()),
    }
}

fn versions() -> Vec<&'static str> {
    API_VERSIONS.iter().map(|v| v.version).collect()
}

fn check_config(path: &str) -> Result<config::Settings, String> {
    let settings = config::read(path).map_err(|e| e.to_string())?;
    print(&format!(
        "{path}: ok: {} backend(s), {} subscription(s), listening on {} under {}\n",
        settings.backends.len(),
        settings.subscriptions.len(),
        settings.listen,
        settings.base_path
    ))?;
    Ok(settings)
}

fn serve(path: &str) -> Result<(), String> {
    let settings = check_config(path)?;
    let _log = logging::init(settings.log.format, &settings.log.level)?;
    let listener = TcpListener::bind(settings.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
    for b in &settings.backends {
        tracing::info!(
            "backend {} ({}) at {}, priority {}, weight {}",
            b.name,
            b.region,
            b.base_url,
            b.priority,
            b.weight
        );
    }
    actix_web::rt::System::new().block_on(async move {
        let live = Arc::new(Live::new(Gateway::new(settings)?, Some(path.to_string())));
        let (server, addr) =
            proxy::start(live.clone(), listener, true).map_err(|e| e.to_string())?;
        tracing::info!(
            "serving on http://{addr}; api-versions {}",
            versions().join(", ")
        );
        let served = server.await.map_err(|e| e.to_string());
        // The spans of the last calls go out before the process does.
        if let Some(traces) = &live.current().traces {
            traces.flush();
        }
        served
    })
}

fn routes(only: Option<&str>, json: bool, base_path: &str) -> Result<(), String> {
    let selected: Vec<&ApiVersion> = API_VERSIONS
        .iter()
        .copied()
        .filter(|v| only.is_none_or(|o| o == v.version))
        .collect();
    if selected.is_empty() {
        return Err(format!(
            "api-version {} is not compiled in; known: {}",
            only.unwrap_or(""),
            versions().join(", ")
        ));
    }
    if json {
        let text = serde_json::to_string_pretty(&selected).map_err(|e| e.to_string())?;
        return print(&format!("{text}\n"));
    }
    let base = base_path.trim_end_matches('/');
    let mut text = String::new();
    for api in selected {
        let _ = writeln!(
            text,
            "api-version {} ({} routes, from spec/{})",
            api.version,
            api.routes.len(),
            api.source
        );
        for o in api.overlays {
            let _ = writeln!(
                text,
                "  overlay {} ({}, version {}): {} action(s)",
                o.file,
                o.title,
                o.version,
                o.actions.len()
            );
        }
        let prefix = format!("{base}{}", api.mount);
        let width = api.routes.iter().map(|r| r.path.len()).max().unwrap_or(0) + prefix.len();
        for r in api.routes {
            let _ = writeln!(
                text,
                "  {:<6} {:<width$}  {:<36} {}",
                r.method.as_str(),
                format!("{prefix}{}", r.path),
                r.operation_id,
                r.summary.lines().next().unwrap_or("")
            );
            if let Some(field) = r.deployment_field {
                let _ = writeln!(text, "         deployment: the body's `{field}`");
            }
            for node in r.unchecked {
                let _ = writeln!(
                    text,
                    "         not validated: {} ({})",
                    node.pointer, node.reason
                );
            }
            if let Some(line) = r.objects.describe() {
                let _ = writeln!(text, "         objects: {line}");
            }
            for o in r.overlaid {
                let _ = writeln!(
                    text,
                    "         overlaid: {} by {}, action {}{}",
                    o.pointer,
                    o.file,
                    o.action,
                    o.description.map(|d| format!(" ({d})")).unwrap_or_default()
                );
            }
        }
        text.push('\n');
    }
    print(&text)
}

fn codegen(out: &std::path::Path) -> Result<(), String> {
    for (rel, text) in SOURCES {
        let path = out.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let lines: usize = SOURCES.iter().map(|(_, t)| t.lines().count()).sum();
    print(&format!(
        "wrote {} files ({lines} lines) to {}\n",
        SOURCES.len(),
        out.display()
    ))
}

/// Runs one simulated resource, `config` but for its key, which `api_key_env` holds.
fn simulate(listen: &str, api_key_env: &str, config: SimulatorConfig) -> Result<(), String> {
    let key = std::env::var(api_key_env).map_err(|_| {
        format!("environment variable {api_key_env} (the key clients must send) is not set")
    })?;
    let listener =
        TcpListener::bind(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let region = config.region.clone();
    let config = SimulatorConfig {
        api_key: key,
        ..config
    };
    actix_web::rt::System::new().block_on(async move {
        let (server, addr) =
            sim::start(Simulator::new(config), listener).map_err(|e| e.to_string())?;
        tracing::info!("simulated Azure OpenAI resource ({region}) on http://{addr}/openai");
        server.await.map_err(|e| e.to_string())
    })
}
