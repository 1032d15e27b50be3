//! `local-gateway`: every route of the API on 127.0.0.1:3000 (or `LOCAL_GATEWAY_ADDR`),
//! over an embedded durable store and a local SMS outbox. Stops cleanly on SIGTERM/SIGINT.

use std::sync::Arc;

use fund_account::clock::SystemClock;
use local_gateway::{serve, Gateway, GatewayConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();

    let mut config = GatewayConfig::from_env()?;
    let listener = tokio::net::TcpListener::bind(config.addr).await?;
    let addr = listener.local_addr()?;
    // The address as bound (a port of 0 picks one): download URLs point here.
    config.addr = addr;
    if config.internal_key_generated {
        // Printed on purpose: the developer needs it for /internal calls.
        println!("internal key (x-internal-key): {}", config.internal_key);
    }
    let gateway = Arc::new(Gateway::build(config, Arc::new(SystemClock)).await?);
    println!(
        "local gateway listening on http://{addr} (data in {})",
        gateway.config.data_dir.display()
    );
    serve(gateway, listener, shutdown_signal()).await;
    println!("local gateway stopped");
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => return interrupt.await.unwrap_or(()),
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    interrupt.await.unwrap_or(());
}
