//! `echo --listen ADDR --instance NAME`: the echo upstream as a process, for the demo
//! (`cargo xtask demo`) and the end-to-end suite. Answers every request with JSON
//! describing it (see `gangplank_e2e::echo`). Stops on SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::process::ExitCode;

use gangplank_e2e::echo::EchoServer;

fn usage() -> ExitCode {
    eprintln!("usage: echo --listen 127.0.0.1:PORT [--instance NAME]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut listen: Option<SocketAddr> = None;
    let mut instance = std::env::var("POD_NAME").unwrap_or_else(|_| "echo".to_owned());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--listen", Some(value)) => match value.parse() {
                Ok(addr) => listen = Some(addr),
                Err(_) => return usage(),
            },
            ("--instance", Some(value)) => instance = value,
            _ => return usage(),
        }
    }
    let Some(listen) = listen else {
        return usage();
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("echo: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let server = match EchoServer::start(&instance, listen).await {
            Ok(server) => server,
            Err(e) => {
                eprintln!("echo: cannot listen on {listen}: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!("echo {instance} listening on http://{}", server.addr());
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return ExitCode::FAILURE;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        ExitCode::SUCCESS
    })
}
