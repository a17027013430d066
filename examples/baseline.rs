//! Benchmark baseline (never shipped): a Poem server with one handler that does nothing.
//!
//! It runs on the same tokio multi-thread runtime and the same `poem::Server` over a
//! `TcpListener` as `hit-counter`, so `bench/run.sh` can express every figure of the real
//! server as a share of what this stack does with no work at all.
//!
//! Usage: `cargo run --release --example baseline -- [HOST] [PORT]` (127.0.0.1 8081).

use std::process::ExitCode;

use poem::listener::TcpListener;
use poem::{Route, Server, get, handler};

/// The whole "application": a short static body.
#[handler]
fn nothing() -> &'static str {
    "ok\n"
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let host = args.next().unwrap_or_else(|| "127.0.0.1".to_owned());
    let port = args.next().unwrap_or_else(|| "8081".to_owned());

    // The same runtime the product builds in src/main.rs.
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("baseline: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let app = Route::new().at("/", get(nothing));
    let served = runtime.block_on(async {
        let stop = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        Server::new(TcpListener::bind(format!("{host}:{port}")))
            .run_with_graceful_shutdown(app, stop, None)
            .await
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("baseline: {err}");
            ExitCode::FAILURE
        }
    }
}
