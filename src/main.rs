//! The `edgecache` command: parses the command line, sets up logging, loads the config and hands over to the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

/// edgecache: a caching reverse proxy that grows into a CDN.
#[derive(Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    /// The config file of this node.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log line format on stderr (`RUST_LOG` filters apply).
    #[arg(long, value_enum, default_value = "text", global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a config file and print the effective config (defaults filled in).
    Check {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Start a sample origin and a node on 127.0.0.1 and print what to try.
    Demo,
    /// Run only the sample origin (used by the benchmarks).
    Origin {
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: SocketAddr,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Some(Command::Check { config }) => match edgecache::config::load(&config) {
            Ok(config) => {
                print!("{}", edgecache::config::to_effective_toml(&config));
                ExitCode::SUCCESS
            }
            Err(errors) => config_failed(&errors),
        },
        Some(Command::Demo) => block_on(edgecache::demo::run()),
        Some(Command::Origin { listen }) => block_on(run_origin(listen)),
        None => {
            let Some(path) = cli.config else {
                eprintln!("edgecache: give --config FILE, or a command (check, demo); see --help");
                return ExitCode::from(2);
            };
            match edgecache::config::load(&path) {
                Ok(config) => block_on(edgecache::app::run(config)),
                Err(errors) => config_failed(&errors),
            }
        }
    }
}

fn config_failed(errors: &edgecache::config::ConfigErrors) -> ExitCode {
    eprintln!("{errors}");
    ExitCode::from(2)
}

/// The runtime: a worker thread per CPU this process may use (its affinity and cgroup quota, as
/// `available_parallelism` reads them); with one CPU, a single-threaded runtime, as an nginx worker is one event
/// loop per core: it has no work stealing and no wakeups across threads to pay for, and nothing to gain from them.
fn build_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let mut builder = if cpus == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    builder.enable_all().build()
}

fn block_on<E: std::fmt::Display>(future: impl std::future::Future<Output = Result<(), E>>) -> ExitCode {
    let runtime = match build_runtime() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("edgecache: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(future) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("edgecache: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run_origin(listen: SocketAddr) -> Result<(), std::io::Error> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let origin = edgecache::demo::sample_origin::spawn(listener, shutdown.clone())?;
    eprintln!("sample origin on http://{}", origin.addr);
    let _ = tokio::signal::ctrl_c().await;
    shutdown.cancel();
    Ok(())
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: a file or a log shipper gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
