//! The Regulars server: application services (what the business does, with
//! authorisation and personal-data protection) and the HTTP surface over them.

/// Application services: the use cases, each authorised, over the store.
pub mod app;
/// Configuration read from `regulars.toml` and the environment.
pub mod config;
/// The staff console under `/console`.
pub mod console;
/// The member H5 pages under `/m`.
pub mod h5;
/// REST API, errors, extractors, OpenAPI, and the router that joins them.
pub mod http;

pub use app::{AppError, Regulars};
pub use config::Config;

use std::net::SocketAddr;
use tokio::net::TcpListener;

/// A bound, ready-to-run server.
pub struct Server {
    listener: TcpListener,
    router: axum::Router,
}

impl Server {
    /// Bind the listener and build the router for `regulars`.
    pub async fn bind(listen: &str, regulars: Regulars) -> anyhow::Result<Server> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
        Ok(Server {
            listener,
            router: http::router(regulars),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has an address")
    }

    /// Serve until `shutdown` resolves.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await?;
        Ok(())
    }
}
