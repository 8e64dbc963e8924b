use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use taoyao_boot::Shutdown;
use taoyao_server::Config;

/// taoyao-rs: a WebRTC signaling and media server (mesh, SFU, MCU) with a web client.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// A TOML config file (see apps/taoyao-server/taoyao.sample.toml); defaults are built in.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Listen on this address, overriding server.listen.
    #[arg(long, global = true, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Run,
    /// Validate the config and print the effective values (secrets redacted).
    CheckConfig,
    /// Make a development CA and a server certificate (localhost, 127.0.0.1, ::1 and --host).
    Cert {
        /// Where to write ca.pem, ca-key.pem, server.pem, server-key.pem.
        #[arg(long, default_value = "certs")]
        out: PathBuf,
        /// More names or addresses the certificate is for (repeatable).
        #[arg(long = "host", value_name = "NAME")]
        hosts: Vec<String>,
    },
    /// Issue an access token signed with auth.token_secret (for development and scripts).
    Token(TokenArgs),
    /// Call the admin REST API (/api/v1) of a running server and print its JSON answer, e.g.
    /// `admin get /rooms`, `admin post /rooms '{"name":"standup"}'`,
    /// `admin delete /rooms/r1/members/bob` (expel), `admin get /openapi.json` (every route).
    /// Exit code 1 when the API answers an error (printed to stderr), 2 when it cannot ask.
    Admin(AdminArgs),
}

#[derive(clap::Args)]
struct AdminArgs {
    /// GET, POST, PUT or DELETE.
    method: String,
    /// The route under /api/v1, e.g. /rooms or /rooms/r1/members.
    path: String,
    /// A JSON request body.
    body: Option<String>,
    /// The server's base URL; default: http(s)://server.listen of the config (an unspecified
    /// address as 127.0.0.1).
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// An admin token; default: $TAOYAO_ADMIN_TOKEN, else a 60 s admin token signed with the
    /// config's auth.token_secret.
    #[arg(long, value_name = "JWT")]
    token: Option<String>,
    /// A PEM CA to trust for an https server (e.g. certs/ca.pem of `taoyao-server cert`).
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
}

#[derive(clap::Args)]
struct TokenArgs {
    /// The client id the token is for.
    #[arg(long)]
    client_id: String,
    /// Display name.
    #[arg(long)]
    name: Option<String>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
    /// A room it may create or enter (repeatable; none: every room).
    #[arg(long = "room", value_name = "ROOM")]
    rooms: Vec<String>,
    /// Receive only: may not publish media.
    #[arg(long)]
    no_publish: bool,
    /// May not subscribe to media.
    #[arg(long)]
    no_subscribe: bool,
    /// May manage every room.
    #[arg(long)]
    admin: bool,
    /// May not start a live stream as anchor.
    #[arg(long)]
    no_anchor: bool,
    /// Make it single-use (a random jti).
    #[arg(long)]
    once: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Cert { out, hosts }) = &cli.command {
        return cert(out, hosts);
    }
    let mut cfg = match Config::load(cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("taoyao-server: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(listen) = cli.listen {
        cfg.server.listen = listen;
    }
    match cli.command.unwrap_or(Command::Run) {
        Command::CheckConfig => {
            println!(
                "# config is valid; effective values:\n{}",
                cfg.to_redacted_toml()
            );
            ExitCode::SUCCESS
        }
        Command::Run => run(cfg),
        Command::Cert { .. } => unreachable!("handled before the config is read"),
        Command::Token(args) => token(&cfg, args),
        Command::Admin(args) => admin(&cfg, args),
    }
}

fn admin(cfg: &Config, a: AdminArgs) -> ExitCode {
    let fail = |e: String| {
        eprintln!("taoyao-server admin: {e}");
        ExitCode::from(2)
    };
    let method = match reqwest::Method::from_bytes(a.method.to_ascii_uppercase().as_bytes()) {
        Ok(m) if ["GET", "POST", "PUT", "DELETE"].contains(&m.as_str()) => m,
        _ => return fail(format!("{}: not GET, POST, PUT or DELETE", a.method)),
    };
    let body = match a
        .body
        .as_deref()
        .map(serde_json::from_str::<serde_json::Value>)
    {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => return fail(format!("the body is not JSON: {e}")),
    };
    let token = match a.token.or_else(|| std::env::var("TAOYAO_ADMIN_TOKEN").ok()) {
        Some(t) => t,
        None => match admin_token(cfg) {
            Ok(t) => t,
            Err(e) => return fail(e),
        },
    };
    let base = a.url.unwrap_or_else(|| {
        let mut addr = cfg.server.listen;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let scheme = if cfg.server.tls.enabled() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{addr}")
    });
    let url = format!(
        "{}/api/v1/{}",
        base.trim_end_matches('/'),
        a.path.trim_start_matches('/')
    );
    let mut client = reqwest::Client::builder();
    if let Some(ca) = &a.ca {
        match std::fs::read(ca)
            .map_err(|e| e.to_string())
            .and_then(|pem| reqwest::Certificate::from_pem(&pem).map_err(|e| e.to_string()))
        {
            Ok(c) => client = client.add_root_certificate(c),
            Err(e) => return fail(format!("{}: {e}", ca.display())),
        }
    }
    let client = match client.build() {
        Ok(c) => c,
        Err(e) => return fail(e.to_string()),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    runtime.block_on(async move {
        let mut req = client.request(method, &url).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = match req.send().await {
            Ok(r) => r,
            Err(e) => return fail(format!("{url}: {e}")),
        };
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        let shown = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or(text);
        if status.is_success() {
            println!("{shown}");
            ExitCode::SUCCESS
        } else {
            eprintln!("taoyao-server admin: HTTP {status}\n{shown}");
            ExitCode::FAILURE
        }
    })
}

/// A short-lived admin token from the config's `auth.token_secret`.
fn admin_token(cfg: &Config) -> Result<String, String> {
    let secret = cfg.auth.token_secret.as_ref().ok_or(
        "no --token, no $TAOYAO_ADMIN_TOKEN and no auth.token_secret in the config to sign one",
    )?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let claims = taoyao_signal::Claims {
        sub: "taoyao-admin-cli".into(),
        name: None,
        exp: now + 60,
        iat: Some(now),
        jti: None,
        grants: taoyao_signal::Grants {
            admin: true,
            ..Default::default()
        },
    };
    taoyao_signal::issue_token(secret, &claims).map_err(|e| e.to_string())
}

fn token(cfg: &Config, a: TokenArgs) -> ExitCode {
    let Some(secret) = &cfg.auth.token_secret else {
        eprintln!(
            "taoyao-server: set auth.token_secret (e.g. TAOYAO__AUTH__TOKEN_SECRET) to issue tokens"
        );
        return ExitCode::from(2);
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let claims = taoyao_signal::Claims {
        sub: a.client_id,
        name: a.name,
        exp: now + a.ttl,
        iat: Some(now),
        jti: a.once.then(|| taoyao_boot::IdGenerator::new().unique()),
        grants: taoyao_signal::Grants {
            rooms: (!a.rooms.is_empty()).then_some(a.rooms),
            publish: !a.no_publish,
            subscribe: !a.no_subscribe,
            admin: a.admin,
            anchor: !a.no_anchor,
        },
    };
    match taoyao_signal::issue_token(secret, &claims) {
        Ok(t) => {
            println!("{t}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("taoyao-server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn cert(out: &std::path::Path, hosts: &[String]) -> ExitCode {
    match taoyao_boot::tls::generate_dev_certs(out, hosts) {
        Ok(c) => {
            println!(
                "wrote {ca}, {cert} and their keys ({key}, {cakey}; keep them private).\n\
                 Serve with:\n  [server.tls]\n  cert = \"{cert}\"\n  key = \"{key}\"\n\
                 Trust the CA in browsers to avoid warnings: see certs/README.md.",
                ca = c.ca_cert.display(),
                cakey = c.ca_key.display(),
                cert = c.server_cert.display(),
                key = c.server_key.display(),
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("taoyao-server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cfg: Config) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("taoyao-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        taoyao_boot::log::init(&cfg.log);
        if cfg.auth.has_development_user() {
            tracing::warn!(
                "the development login taoyao/taoyao is active: set [auth] users before serving a network"
            );
        }
        if cfg.auth.users.is_empty() && cfg.auth.token_secret.is_none() {
            tracing::warn!("[auth] has no users and no token_secret: anyone may register under any client id");
        }
        let tls = cfg.server.tls.enabled();
        let shutdown = Shutdown::new();
        shutdown.trigger_on_os_signals();
        let server = match taoyao_server::start(cfg, shutdown).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::FAILURE;
            }
        };
        let (http, ws) = if tls { ("https", "wss") } else { ("http", "ws") };
        tracing::info!(
            "taoyao-server listening: web client {http}://{0}/ signaling {ws}://{0}/websocket.signal",
            server.local_addr
        );
        match server.wait().await {
            Ok(()) => {
                tracing::info!("stopped");
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!("{e}");
                ExitCode::FAILURE
            }
        }
    })
}
