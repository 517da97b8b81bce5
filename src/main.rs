//! `clickgame`: parse the configuration, start logging, run the server. Nothing else.

use clap::Parser;
use clickgame::{config::Config, server};
use tracing_subscriber::EnvFilter;

fn main() -> std::io::Result<()> {
    let config = Config::parse();
    let filter = EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    if config.init_certs {
        let (_, _, info) = clickgame::tls::load_or_create(
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
