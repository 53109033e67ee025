//! `regulars`: the one binary. Each subcommand is a thin shell over the
//! server crate's application services.

mod analytics;
mod demo;
mod generate;
mod settings;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use regulars_core::access::Role;
use regulars_server::app::{auth, jobs, verify};
use regulars_server::{Config, Regulars, Server};
use regulars_store::Db;
use std::io::Read;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "regulars",
    version,
    about = "Regulars (熟客): CRM and loyalty for restaurant chains"
)]
struct Cli {
    /// sqlite://PATH (default sqlite://data/regulars.db) or postgres://...
    #[arg(long, global = true, env = "REGULARS_DATABASE_URL")]
    database_url: Option<String>,
    /// Settings file.
    #[arg(long, global = true, default_value = "regulars.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API, the staff console and the member pages.
    Serve(ServeArgs),
    /// Create a demo chain in ./data (SQLite) and serve it.
    Demo(ServeArgs),
    /// Apply database migrations.
    Migrate,
    /// API keys.
    Apikey {
        #[command(subcommand)]
        command: ApikeyCommand,
    },
    /// Staff users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Background jobs (point expiry and reminders, tier review, birthday gifts).
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Check every ledger invariant; exit 1 with a report when one is broken.
    Verify,
    /// Generate members and years of order history (imported orders) for analytics.
    Generate(generate::GenerateArgs),
    /// Score every member now: RFM, grades, lifecycle, P(alive), CLV, taste,
    /// recommendations (the nightly job runs the same).
    Score {
        /// Also measure the recommender against the popularity baseline on
        /// each member's held-out last order, and print both hit rates.
        #[arg(long)]
        evaluate: bool,
    },
    /// Customer analytics on files (no database needed).
    Analytics {
        #[command(subcommand)]
        command: AnalyticsCommand,
    },
}

#[derive(Subcommand)]
enum AnalyticsCommand {
    /// Fit BG/NBD and Gamma-Gamma to `customer_id,date,amount` rows; print JSON.
    Fit(analytics::FitArgs),
}

#[derive(Subcommand)]
enum JobsCommand {
    /// One pass of every due job.
    Run {
        /// Run as of this moment (RFC 3339); default: now.
        #[arg(long)]
        now: Option<String>,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, env = "REGULARS_LISTEN")]
    listen: Option<String>,
}

#[derive(Subcommand)]
enum ApikeyCommand {
    /// Create a key; the key is the last line of standard output.
    Create {
        #[arg(long)]
        role: Role,
        /// Store code, for store-scoped roles (store_manager, staff, pos).
        #[arg(long)]
        store: Option<String>,
        #[arg(long, default_value = "unnamed")]
        name: String,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a staff user; the password is read from standard input.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        role: Role,
        #[arg(long)]
        store: Option<String>,
        /// Read the password from standard input (required).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("REGULARS_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("REGULARS_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Open the database, migrate it, and build the application.
async fn open(config: &Config) -> anyhow::Result<Regulars> {
    let key = settings::master_key(config)?;
    let db = Db::connect(&config.database_url).await.with_context(|| {
        format!(
            "cannot open {}",
            regulars_server::config::redact_url(&config.database_url)
        )
    })?;
    db.migrate().await.context("migrations failed")?;
    let tz: chrono_tz::Tz = config
        .timezone
        .parse()
        .map_err(|_| anyhow::anyhow!("bad time zone {}", config.timezone))?;
    Ok(Regulars::new(db, key.keyring(), tz))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
}

async fn serve(regulars: Regulars, listen: &str) -> anyhow::Result<()> {
    spawn_jobs_timer(regulars.clone());
    spawn_webhook_timer(regulars.clone());
    let server = Server::bind(listen, regulars).await?;
    let addr = server.local_addr();
    tracing::info!(%addr, "serving");
    // Scripts and tests wait for this line to know the port (listen on :0).
    println!("listening on http://{addr}");
    server.run(shutdown_signal()).await
}

/// `serve` runs the periodic jobs itself, every `REGULARS_JOBS_INTERVAL_SECS`
/// (default 300). Each job is safe to run on several nodes at once.
fn spawn_jobs_timer(regulars: Regulars) {
    let every = std::env::var("REGULARS_JOBS_INTERVAL_SECS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(300);
    if every == 0 {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(every));
        tick.tick().await;
        loop {
            tick.tick().await;
            match jobs::run_due(&regulars, chrono::Utc::now().timestamp_millis()).await {
                Ok(report) => tracing::info!(?report, "jobs ran"),
                Err(e) => tracing::error!(error = %e, "jobs failed"),
            }
        }
    });
}

/// `serve` sends due webhooks every `REGULARS_WEBHOOK_INTERVAL_SECS`
/// (default 5; 0 leaves them to the jobs timer). Deliveries are leased, so
/// several nodes share the work without sending one twice.
fn spawn_webhook_timer(regulars: Regulars) {
    let every = std::env::var("REGULARS_WEBHOOK_INTERVAL_SECS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(5);
    if every == 0 {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(every));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = chrono::Utc::now().timestamp_millis();
            match regulars_server::app::webhooks::deliver_due(&regulars, now).await {
                Ok(report) if report.queued + report.attempted > 0 => {
                    tracing::info!(?report, "webhooks sent")
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "webhook delivery failed"),
            }
        }
    });
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    init_tracing();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Analytics on files needs no settings and no database.
    if let Command::Analytics { command } = cli.command {
        return match command {
            AnalyticsCommand::Fit(args) => analytics::fit(args),
        };
    }
    let file = settings::read_file(&cli.config)?;
    let listen = match &cli.command {
        Command::Serve(a) | Command::Demo(a) => a.listen.clone(),
        _ => None,
    };
    let config = settings::resolve(
        &file,
        settings::Overrides {
            database_url: cli.database_url.clone(),
            listen,
        },
    )?;
    match cli.command {
        // Answered before the database is opened (see above).
        Command::Analytics { .. } => Ok(()),
        Command::Serve(_) => {
            let regulars = open(&config).await?;
            serve(regulars, &config.listen).await
        }
        Command::Demo(_) => {
            let regulars = open(&config).await?;
            let login = demo::prepare(&regulars, &config.database_url).await?;
            let server = Server::bind(&config.listen, regulars).await?;
            let addr = server.local_addr();
            println!();
            println!("  Regulars demo is ready.");
            println!("  Console:  http://{addr}/console");
            println!("  Login:    {}  /  {}", login.username, login.password);
            let others: Vec<String> = login
                .staff
                .iter()
                .map(|(name, role)| format!("{name} ({role})"))
                .collect();
            println!("  Also:     {}  (same password)", others.join(", "));
            println!("  API key:  {}  (hq_admin; try `curl -H 'Authorization: Bearer <key>' http://{addr}/api/v1/stores`)", login.api_key);
            println!("  API doc:  http://{addr}/api/v1/openapi.json");
            println!("  (the password and key are new on every start of the demo)");
            println!();
            println!("listening on http://{addr}");
            server.run(shutdown_signal()).await
        }
        Command::Jobs {
            command: JobsCommand::Run { now },
        } => {
            let now = match now {
                Some(t) => chrono::DateTime::parse_from_rfc3339(&t)
                    .with_context(|| {
                        format!("--now {t}: expected RFC 3339, e.g. 2027-01-01T03:00:00+08:00")
                    })?
                    .timestamp_millis(),
                None => chrono::Utc::now().timestamp_millis(),
            };
            let regulars = open(&config).await?;
            let report = jobs::run_due(&regulars, now)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::Score { evaluate } => {
            let regulars = open(&config).await?;
            let now = chrono::Utc::now().timestamp_millis();
            let report = regulars_server::app::insights::score(&regulars, now)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut out = serde_json::to_value(&report)?;
            if evaluate {
                let eval = regulars_server::app::insights::evaluate_recommender(&regulars, now)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                out["recommender"] = serde_json::to_value(eval)?;
            }
            println!("{}", serde_json::to_string(&out)?);
            Ok(())
        }
        Command::Verify => {
            let regulars = open(&config).await?;
            let report = verify::verify(&regulars)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "checked {} invariants over {} members, {} ledger entries, {} orders",
                report.checks, report.members, report.entries, report.orders
            );
            for v in &report.violations {
                println!("VIOLATED: {} ({} rows)", v.invariant, v.count);
                for e in &v.examples {
                    println!("  {e}");
                }
            }
            if report.ok() {
                println!("ledger OK");
                Ok(())
            } else {
                anyhow::bail!("{} invariant(s) violated", report.violations.len())
            }
        }
        Command::Generate(args) => {
            let plan = generate::check(&args)?; // before anything is opened
            let regulars = open(&config).await?;
            let summary = generate::run(&regulars, &config.database_url, plan).await?;
            println!("{}", serde_json::to_string(&summary)?);
            Ok(())
        }
        Command::Migrate => {
            let db = Db::connect(&config.database_url).await?;
            db.migrate().await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Apikey {
            command: ApikeyCommand::Create { role, store, name },
        } => {
            let regulars = open(&config).await?;
            let (id, key) = auth::create_api_key(&regulars, "cli", role, store.as_deref(), &name)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "created API key {id} ({role}{})",
                store.map(|s| format!(", store {s}")).unwrap_or_default()
            );
            println!("{key}");
            Ok(())
        }
        Command::User {
            command:
                UserCommand::Create {
                    username,
                    role,
                    store,
                    password_stdin: _,
                },
        } => {
            let mut password = String::new();
            std::io::stdin()
                .read_to_string(&mut password)
                .context("cannot read the password from standard input")?;
            let password = password.trim_end_matches(['\n', '\r']);
            let regulars = open(&config).await?;
            auth::create_user(
                &regulars,
                "cli",
                &username,
                role,
                store.as_deref(),
                password,
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("created user {username} ({role})");
            Ok(())
        }
    }
}
