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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
        if cfg.auth.users.is_empty() {
            tracing::warn!("[auth] users is empty: anyone may register under any client id");
        }
        let shutdown = Shutdown::new();
        shutdown.trigger_on_os_signals();
        let server = match taoyao_server::start(cfg, shutdown).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(
            "taoyao-server listening: web client http://{0}/ signaling ws://{0}/websocket.signal",
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
