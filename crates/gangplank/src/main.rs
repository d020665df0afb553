//! `gangplank`: the one binary. Subcommands:
//!
//! - `gangplank proxy`: the admin/status API on its unix socket (and, with the data
//!   plane, the proxy listeners).
//! - `gangplank controller`: watches Kubernetes (or a manifest directory) and pushes
//!   snapshots to the proxy's admin socket.
//! - `gangplank standalone`: proxy and manifest-directory controller in one process.
//! - `gangplank lint`: what changes for each Ingress when switching from ingress-nginx.
//! - `gangplank ctl`: talks to a running instance through the socket, like
//!   ingress-nginx's `/dbg`.
//!
//! This crate is the binary edge: it parses flags, sets up logging, wires the library
//! crates together and turns their typed errors into messages (`anyhow`).

mod cmd;
mod logging;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "gangplank",
    version,
    about = "A memory-safe, drop-in successor to ingress-nginx."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the proxy: the HTTP listeners and the admin/status API on its unix socket.
    Proxy(cmd::proxy::ProxyArgs),
    /// Run the controller: Kubernetes objects in, snapshots pushed to the admin socket.
    Controller(cmd::controller::ControllerArgs),
    /// Run the proxy and a manifest-directory controller in one process.
    Standalone(cmd::controller::StandaloneArgs),
    /// Inspect a running instance through its admin socket.
    Ctl(cmd::ctl::CtlArgs),
    /// Report, per Ingress, the annotations that behave differently under Gangplank.
    Lint(cmd::lint::LintArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Proxy(args) => cmd::proxy::run(args),
        Command::Controller(args) => cmd::controller::run(args),
        Command::Standalone(args) => cmd::controller::run_standalone(args),
        Command::Ctl(args) => cmd::ctl::run(args),
        Command::Lint(args) => cmd::lint::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gangplank: {e:#}");
            ExitCode::FAILURE
        }
    }
}
