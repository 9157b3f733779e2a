//! `hookline verify`: does this saved request carry a valid signature for
//! this secret? A tool for customers debugging their endpoint.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hookline_signature::{Secret, SignatureScheme};

/// Arguments of `hookline verify`.
#[derive(clap::Args)]
pub struct Args {
    /// The subscription's secret (`whsec_…` for the standard scheme).
    #[arg(long, env = "HOOKLINE_VERIFY_SECRET")]
    secret: String,
    /// The subscription's `signature` object as JSON; standard when absent.
    #[arg(long)]
    scheme: Option<String>,
    /// A request header, `Name: value`; repeat for each.
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
    /// File holding the exact request body; standard input when absent.
    #[arg(long)]
    body: Option<PathBuf>,
    /// Accepted clock difference in seconds (0 skips the timestamp check).
    #[arg(long, default_value_t = 300)]
    tolerance: u64,
}

/// Prints the verdict; exit 0 when valid, 1 when not, 2 on bad arguments.
pub fn run(args: &Args) -> ExitCode {
    match check(args) {
        Ok(()) => {
            println!("valid: the signature matches this secret");
            ExitCode::SUCCESS
        }
        Err(Verdict::Invalid(reason)) => {
            println!("invalid: {reason}");
            ExitCode::FAILURE
        }
        Err(Verdict::Usage(reason)) => {
            eprintln!("hookline verify: {reason}");
            ExitCode::from(2)
        }
    }
}

enum Verdict {
    Invalid(String),
    Usage(String),
}

fn check(args: &Args) -> Result<(), Verdict> {
    let scheme: SignatureScheme = match &args.scheme {
        Some(json) => {
            serde_json::from_str(json).map_err(|e| Verdict::Usage(format!("--scheme: {e}")))?
        }
        None => SignatureScheme::Standard,
    };
    let secret = Secret::parse(&scheme, &args.secret)
        .map_err(|e| Verdict::Usage(format!("--secret: {e}")))?;
    let mut headers = Vec::new();
    for line in &args.headers {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| Verdict::Usage(format!("--header `{line}` is not `Name: value`")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let mut body = Vec::new();
    match &args.body {
        Some(path) => {
            body = std::fs::read(path)
                .map_err(|e| Verdict::Usage(format!("--body {}: {e}", path.display())))?
        }
        None => {
            std::io::stdin()
                .read_to_end(&mut body)
                .map_err(|e| Verdict::Usage(format!("reading standard input: {e}")))?;
        }
    }
    let lookup = |name: &str| {
        let name = name.to_ascii_lowercase();
        headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    };
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let tolerance = if args.tolerance == 0 {
        Duration::from_secs(u32::MAX as u64)
    } else {
        Duration::from_secs(args.tolerance)
    };
    hookline_signature::verify(&scheme, &secret, &lookup, &body, now_ms, tolerance)
        .map_err(|e| Verdict::Invalid(e.to_string()))
}
