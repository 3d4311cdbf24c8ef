use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = shoal_seeder::cli::Cli::parse();
    // Logs go to stderr; RUST_LOG overrides (the service logs at info by default).
    let default = if matches!(cli.command, shoal_seeder::cli::Command::Serve(_)) {
        "info"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match shoal_seeder::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the whole chain of context, outermost first.
            let line = format!("{e:#}").replace('\n', " ");
            eprintln!("shoal-seeder: {line}");
            ExitCode::FAILURE
        }
    }
}
