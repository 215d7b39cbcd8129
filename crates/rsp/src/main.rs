use std::process::ExitCode;

use clap::Parser;
use rsp::cli::admin;
use rsp::cli::args::{Cli, Command, ServeArgs};
use rsp::config::{Config, Overrides};
use rsp::startup::{Application, shutdown_signal};

fn load_config(args: &ServeArgs) -> anyhow::Result<Config> {
    let overrides = Overrides {
        data_dir: args.data_dir.clone(),
        listen: args.listen,
        public_url: args.public_url.clone(),
        ops_listen: args.ops_listen,
        role: args.role,
    };
    Config::load(args.config.as_deref(), &overrides)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let print = |value: serde_json::Value| -> anyhow::Result<()> {
        println!("{}", serde_json::to_string_pretty(&value)?);
        Ok(())
    };
    match cli.command {
        Command::Serve(args) => {
            let config = load_config(&args)?;
            rsp::telemetry::init(config.log_format, &config.log_level);
            let app = Application::build(&config).await?;
            app.run_until(shutdown_signal()).await
        }
        Command::CheckConfig(args) => {
            let config = load_config(&args)?;
            print!("{}", config.redacted_toml()?);
            eprintln!("configuration is valid");
            Ok(())
        }
        Command::Tenant(command) => print(admin::tenant(command).await?),
        Command::Client(command) => print(admin::client(command).await?),
        Command::Keys(command) => print(admin::keys(command).await?),
        Command::Policy(command) => print(admin::policy(command).await?),
        Command::Entities(command) => print(admin::entities(command).await?),
        Command::Audit(command) => match rsp::cli::audit::audit(command).await? {
            serde_json::Value::Null => Ok(()),
            page => print(page),
        },
        Command::User(command) => print(rsp::cli::users::user(command).await?),
        Command::Migrate(args) => {
            let config = load_config(&args)?;
            rsp::telemetry::init(config.log_format, &config.log_level);
            rsp::backend::migrate(&config).await
        }
        Command::Loadtest(args) => {
            let json = args.json;
            let report = rsp::loadtest::run(args).await?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!("{report}");
            }
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    // Before the runtime starts its threads, so that no allocation anywhere sees glibc's moving threshold.
    rsp::allocator::return_large_frees_to_the_system();
    if let Err(error) = rsp::allocator::trim_freed_memory_when_quiet() {
        eprintln!("warning: no thread to return freed memory: {error}");
    }
    run_to_exit()
}

#[tokio::main]
async fn run_to_exit() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
