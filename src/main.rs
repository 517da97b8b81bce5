//! `clickgame`: parse the configuration, start logging, run the server. Nothing else — besides
//! the two one-shot commands that prepare the data directory (`--init-certs`, `--init-ca`).

use clickgame::{
    ca,
    config::Config,
    lan::{self, LanNames},
    server, tls,
};
use tracing_subscriber::EnvFilter;

/// A configuration the server refuses, or a port it cannot bind, ends here: one line a lecturer
/// can read (`error: …`) and a failing exit status — not the `Debug` form of an `io::Error`,
/// which is what returning the error from `main` prints.
fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> std::io::Result<()> {
    let config = Config::from_args();
    let (filter, bad_filter) = match EnvFilter::try_new(&config.log) {
        Ok(filter) => (filter, None),
        Err(e) => (EnvFilter::new("info"), Some(e)),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only on a terminal: a log file or a pipe gets plain text, not escape codes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if let Some(e) = bad_filter {
        tracing::warn!(log = %config.log, error = %e, "--log does not parse; logging at info instead");
    }
    if config.init_ca {
        return init_ca(&config);
    }
    if config.init_certs {
        let (_, _, info) = tls::load_or_create(
            config.cert.as_deref(),
            config.key.as_deref(),
            &config.data_dir,
        )?;
        server::log_certificate(&info);
        println!("{} (SHA-256 {})", info.cert_path.display(), info.sha256);
        return Ok(());
    }
    actix_web::rt::System::new().block_on(server::run(config))
}

/// `--init-ca` (`make ca`): the local CA for loopback and this machine's LAN names (or
/// `--lan-addr`), and a certificate for the same names signed by it.
fn init_ca(config: &Config) -> std::io::Result<()> {
    let names = if config.lan_addrs.is_empty() {
        lan::detect()
    } else {
        LanNames::given(&config.lan_addrs)
    };
    let scope = ca::Scope::for_names(&names);
    let (authority, new) = ca::load_or_create(&config.data_dir, &scope, &names.san_names())?;
    let extra: Vec<String> = names.hosts.iter().map(lan::Host::san).collect();
    let (_, _, info) = tls::load_or_create_for(None, None, &config.data_dir, &extra)?;
    server::log_certificate(&info);
    println!(
        "{} local CA {} (SHA-256 {})",
        if new { "new" } else { "kept the" },
        authority.cert_path.display(),
        authority.sha256
    );
    println!(
        "  may sign only: {}",
        scope.name_constraints().trim_start_matches("critical,")
    );
    println!(
        "certificate {} (SHA-256 {}) for {}",
        info.cert_path.display(),
        info.sha256,
        info.names.join(", ")
    );
    if new {
        println!(
            "Install {} as a trusted authority on the projector laptop only (docs/classroom.md); \
             students compare the certificate's fingerprint instead.",
            authority.cert_path.display()
        );
    }
    Ok(())
}
