//! The `hit-counter` binary: parses settings, starts logging, serves until a signal.

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

use hit_counter::config::{Args, Settings};
use hit_counter::startup::Application;
use hit_counter::telemetry;

/// Exit status for a setting that cannot be used.
const BAD_SETTING: u8 = 2;

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(err)
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) =>
        {
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            // clap's own message names the flag and its variable; keep its first line.
            let rendered = err.to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            eprintln!("hit-counter: {}", first.trim_start_matches("error: "));
            return ExitCode::from(BAD_SETTING);
        }
    };
    if args.healthcheck {
        return match hit_counter::healthcheck::probe(args.port) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("hit-counter: {err}");
                ExitCode::FAILURE
            }
        };
    }
    let settings = match Settings::from_args(args, |name| std::env::var(name).ok()) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("hit-counter: {err}");
            return ExitCode::from(BAD_SETTING);
        }
    };
    if let Err(err) = telemetry::init(&settings.log) {
        eprintln!("hit-counter: {err}");
        return ExitCode::from(BAD_SETTING);
    }

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("hit-counter: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => match err.setting() {
            Some(setting) => {
                eprintln!("hit-counter: {setting}: {}", error_chain(&err));
                ExitCode::from(BAD_SETTING)
            }
            None => {
                eprintln!("hit-counter: {}", error_chain(&err));
                ExitCode::FAILURE
            }
        },
    }
}

async fn serve(settings: Settings) -> Result<(), hit_counter::startup::StartupError> {
    Application::build(settings)
        .await?
        .run_until(stop_signal())
        .await
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (podman stop, systemd, Kubernetes).
async fn stop_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("stop signal received; finishing requests in flight");
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
