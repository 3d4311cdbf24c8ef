use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = shoal_seeder::cli::Cli::parse();
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
