//! The `atctl` binary: parse flags (clap exits with 2 on usage errors), run, map errors to exit codes.

use atctl::output::Output;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cli = atctl::parse();
    let out = Output {
        json: cli.global.json,
    };
    if let Err(e) = atctl::run(cli).await {
        out.error(&e);
        std::process::exit(e.class.exit_code());
    }
}
