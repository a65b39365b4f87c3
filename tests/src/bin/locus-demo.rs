//! `locus-demo`: Locus end to end on the simulator (README.md). Exit 0 when every step gives the expected outcome,
//! 1 otherwise.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("locus-demo: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout();
    match rt.block_on(locus_tests::demo::run(&mut out)) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            println!();
            println!("DEMO FAILED: {e}");
            eprintln!("locus-demo: {e}");
            ExitCode::FAILURE
        }
    }
}
