//! `gangplank ctl`: ingress-nginx's `/dbg`, against the admin socket.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use gangplank_admin_server::AdminClient;

/// Flags of `gangplank ctl`.
#[derive(Debug, Args)]
pub struct CtlArgs {
    /// Unix socket of the admin API.
    #[arg(long, env = "GANGPLANK_ADMIN_SOCKET", default_value = gangplank_admin_server::DEFAULT_SOCKET)]
    admin_socket: PathBuf,
    /// Use this loopback TCP address instead of the socket.
    #[arg(long)]
    status_address: Option<SocketAddr>,
    #[command(subcommand)]
    command: CtlCommand,
}

#[derive(Debug, Subcommand)]
enum CtlCommand {
    /// Inspect backends.
    Backends {
        #[command(subcommand)]
        command: BackendsCommand,
    },
    /// Print the general settings.
    General,
    /// Inspect certificates.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// Print the whole configuration snapshot (private keys redacted).
    Conf {
        /// Print private keys too.
        #[arg(long)]
        show_secrets: bool,
    },
    /// Print the connection counters (stub_status) and the configuration state.
    Status,
}

#[derive(Debug, Subcommand)]
enum BackendsCommand {
    /// Print every backend name, one per line.
    List,
    /// Print one backend as JSON.
    Get {
        /// The backend name.
        name: String,
    },
    /// Print all backends as JSON.
    All,
}

#[derive(Debug, Subcommand)]
enum CertsCommand {
    /// Print the PEM (chain and key) mapped to exactly this host.
    Get {
        /// The host name.
        host: String,
    },
}

/// Runs one ctl command.
pub fn run(args: CtlArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let client = match args.status_address {
        Some(addr) => AdminClient::tcp(addr),
        None => AdminClient::unix(&args.admin_socket),
    };
    runtime.block_on(execute(&client, args.command))
}

fn pretty<T: serde::Serialize>(value: &T) -> anyhow::Result<String> {
    serde_json::to_string_pretty(value).context("encoding JSON")
}

async fn execute(client: &AdminClient, command: CtlCommand) -> anyhow::Result<ExitCode> {
    match command {
        CtlCommand::Backends { command } => {
            let backends = client.backends().await?;
            match command {
                BackendsCommand::List => {
                    for b in &backends {
                        println!("{}", b.name);
                    }
                }
                BackendsCommand::All => println!("{}", pretty(&backends)?),
                BackendsCommand::Get { name } => match backends.iter().find(|b| b.name == name) {
                    Some(b) => println!("{}", pretty(b)?),
                    None => {
                        eprintln!("A backend of this name was not found.");
                        return Ok(ExitCode::FAILURE);
                    }
                },
            }
        }
        CtlCommand::General => println!("{}", pretty(&client.general().await?)?),
        CtlCommand::Certs {
            command: CertsCommand::Get { host },
        } => match client.certificate(&host).await? {
            Some(pem) => print!("{pem}"),
            None => {
                eprintln!("No cert found for host {host}");
                return Ok(ExitCode::FAILURE);
            }
        },
        CtlCommand::Conf { show_secrets } => {
            let (mut config, version) = client.configuration().await?;
            if !show_secrets {
                for pem in config.ssl_configuration.certificates.values_mut() {
                    *pem = redact_private_keys(pem);
                }
            }
            eprintln!("# configuration version {version}");
            println!("{}", pretty(&config)?);
        }
        CtlCommand::Status => {
            let s = client.nginx_status().await?;
            let initialized = client.is_dynamic_lb_initialized().await?;
            let healthy = client.healthz().await?;
            println!("active connections: {}", s.active);
            println!("accepts:            {}", s.accepts);
            println!("handled:            {}", s.handled);
            println!("requests:           {}", s.requests);
            println!("reading:            {}", s.reading);
            println!("writing:            {}", s.writing);
            println!("waiting:            {}", s.waiting);
            println!(
                "dynamic lb initialized: {}",
                if initialized { "yes" } else { "no" }
            );
            println!(
                "healthy:            {}",
                if healthy { "yes" } else { "no (draining)" }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Replaces every PEM private key block with a marker.
fn redact_private_keys(pem: &str) -> String {
    let mut out = String::with_capacity(pem.len());
    let mut in_key = false;
    for line in pem.lines() {
        if line.starts_with("-----BEGIN") && line.contains("PRIVATE KEY") {
            in_key = true;
            out.push_str("<private key redacted; use --show-secrets>\n");
        } else if in_key {
            if line.starts_with("-----END") {
                in_key = false;
            }
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_only_keys() {
        let pem = "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nSECRET\n-----END PRIVATE KEY-----\n";
        let out = super::redact_private_keys(pem);
        assert!(out.contains("AAA"));
        assert!(!out.contains("SECRET"));
        assert!(out.contains("redacted"));
    }
}
