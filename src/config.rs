//! Settings: command-line flags and environment variables, parsed once into [`Settings`].
//!
//! [`Args`] is the raw input as clap reads it; [`Settings::from_args`] validates it into
//! types, so nothing later re-reads the environment or sees an unchecked value.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::join_url::JoinUrl;

/// The raw command line and environment.
#[derive(Debug, Parser)]
#[command(version, about, max_term_width = 100)]
pub struct Args {
    /// Port to listen on.
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,

    /// Address to listen on.
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    pub host: IpAddr,

    /// SQLite file for the embedded store, used when no Oracle connect string is set.
    #[arg(long, env = "SQLITE_PATH", default_value = "hits.db")]
    pub sqlite_path: PathBuf,

    /// Oracle connect string, e.g. `localhost/freepdb1` [alias: PYTHON_CONNECTSTRING].
    #[arg(long, env = "ORACLE_CONNECT_STRING")]
    pub oracle_connect_string: Option<String>,

    /// Oracle user [alias: PYTHON_USERNAME].
    #[arg(long, env = "ORACLE_USER")]
    pub oracle_user: Option<String>,

    /// Oracle password [alias: PYTHON_PASSWORD]; prefer ORACLE_PASSWORD_FILE.
    #[arg(long, env = "ORACLE_PASSWORD", hide_env_values = true)]
    pub oracle_password: Option<String>,

    /// File holding the Oracle password, as podman and docker mount secrets.
    #[arg(long, env = "ORACLE_PASSWORD_FILE")]
    pub oracle_password_file: Option<PathBuf>,

    /// Sessions in the Oracle session pool.
    #[arg(long, env = "ORACLE_POOL_SIZE", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(2..=64))]
    pub oracle_pool_size: u32,

    /// Create the Oracle tables at start when they are missing (runs schema.sql).
    #[arg(long, env = "ORACLE_APPLY_SCHEMA")]
    pub oracle_apply_schema: bool,

    /// The join URL that QR codes point to; by default, the URL the request came in on.
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Seconds between the polls that refresh the numbers on a page.
    #[arg(long, env = "POLL_SECONDS", default_value_t = 2,
          value_parser = clap::value_parser!(u16).range(1..=60))]
    pub poll_seconds: u16,

    /// File holding the key that signs visitor cookies (at least 32 bytes); by default
    /// the key is kept in the store, shared by every instance using it.
    #[arg(long, env = "SESSION_KEY_FILE")]
    pub session_key_file: Option<PathBuf>,

    /// PEM certificate chain; with TLS_KEY, serve HTTPS.
    #[arg(long, env = "TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key; with TLS_CERT, serve HTTPS.
    #[arg(long, env = "TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Log filter, in tracing's env-filter syntax. Poem's own start-up lines repeat
    /// ours, so it is quieter by default.
    #[arg(long = "log", env = "RUST_LOG", default_value = "info,poem=warn")]
    pub log_filter: String,

    /// Instead of serving, ask the server already listening on PORT for its `/status`,
    /// and exit 0 when it is healthy (for container health checks).
    #[arg(long)]
    pub healthcheck: bool,

    /// Log line format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// A value that must never be printed: `Debug` and `Display` show a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a secret value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The value itself, for the one place that needs it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Which database holds the hits.
    pub store: StoreSettings,
    /// The join URL for QR codes, when fixed by the operator.
    pub public_url: Option<JoinUrl>,
    /// How often pages poll for fresh numbers.
    pub poll_interval: Duration,
    /// Cookie-signing key material from a file; `None` keeps the key in the store.
    pub session_key: Option<Secret<Vec<u8>>>,
    /// Certificate and key files for HTTPS.
    pub tls: Option<TlsFiles>,
    /// Log filter and format.
    pub log: LogSettings,
}

/// Which database holds the hits.
#[derive(Debug, Clone)]
pub enum StoreSettings {
    /// The embedded SQLite file.
    Sqlite(PathBuf),
    /// Oracle Database.
    Oracle(OracleSettings),
}

/// How to reach Oracle Database.
#[derive(Debug, Clone)]
pub struct OracleSettings {
    /// Connect string, e.g. `localhost/freepdb1`.
    pub connect_string: String,
    /// Database user.
    pub user: String,
    /// Database password.
    pub password: Secret<String>,
    /// Sessions in the pool.
    pub pool_size: u32,
    /// Whether to create missing tables at start.
    pub apply_schema: bool,
}

/// PEM files for HTTPS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
}

/// Log filter and format.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// Env-filter directives, such as `info` or `hit_counter=debug`.
    pub filter: String,
    /// Line format.
    pub format: LogFormat,
}

/// A setting whose value cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {problem}")]
pub struct ConfigError {
    /// The environment variable that names the setting.
    pub setting: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl ConfigError {
    fn new(setting: &'static str, problem: impl Into<String>) -> Self {
        Self {
            setting,
            problem: problem.into(),
        }
    }
}

/// Shortest cookie-signing key accepted from SESSION_KEY_FILE.
pub const MIN_SESSION_KEY_BYTES: usize = 32;

impl Settings {
    /// Validates the raw input. `env` looks up the predecessor's variable names
    /// (`PYTHON_*`), which count only where the new name is not set.
    pub fn from_args(
        args: Args,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let store = store_settings(&args, &env)?;
        let public_url = args
            .public_url
            .as_deref()
            .map(|raw| {
                JoinUrl::parse(raw).map_err(|err| ConfigError::new("PUBLIC_URL", err.to_string()))
            })
            .transpose()?;
        let session_key = args
            .session_key_file
            .as_ref()
            .map(read_session_key)
            .transpose()?;
        let tls = match (args.tls_cert, args.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            _ => None,
        };

        Ok(Self {
            listen: SocketAddr::new(args.host, args.port),
            store,
            public_url,
            poll_interval: Duration::from_secs(args.poll_seconds.into()),
            session_key,
            tls,
            log: LogSettings {
                filter: args.log_filter,
                format: args.log_format,
            },
        })
    }
}

fn store_settings(
    args: &Args,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<StoreSettings, ConfigError> {
    let nonempty = |value: Option<String>| value.filter(|v| !v.trim().is_empty());
    let connect_string = nonempty(
        args.oracle_connect_string
            .clone()
            .or_else(|| env("PYTHON_CONNECTSTRING")),
    );
    let Some(connect_string) = connect_string else {
        return Ok(StoreSettings::Sqlite(args.sqlite_path.clone()));
    };
    if !cfg!(feature = "oracle") {
        return Err(ConfigError::new(
            "ORACLE_CONNECT_STRING",
            "this binary was built without Oracle support; build it with \
             `cargo build --release --features oracle`, or unset the variable to use SQLite",
        ));
    }

    let user = nonempty(args.oracle_user.clone().or_else(|| env("PYTHON_USERNAME")))
        .ok_or_else(|| ConfigError::new("ORACLE_USER", "must be set with ORACLE_CONNECT_STRING"))?;
    let password = match &args.oracle_password_file {
        Some(path) => read_secret_file("ORACLE_PASSWORD_FILE", path)?,
        None => nonempty(
            args.oracle_password
                .clone()
                .or_else(|| env("PYTHON_PASSWORD")),
        )
        .ok_or_else(|| {
            ConfigError::new(
                "ORACLE_PASSWORD",
                "must be set with ORACLE_CONNECT_STRING (or ORACLE_PASSWORD_FILE)",
            )
        })?,
    };

    Ok(StoreSettings::Oracle(OracleSettings {
        connect_string,
        user,
        password: Secret::new(password),
        pool_size: args.oracle_pool_size,
        apply_schema: args.oracle_apply_schema,
    }))
}

/// Reads a secret from a file, dropping the trailing newline editors and `echo` add.
fn read_secret_file(setting: &'static str, path: &PathBuf) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        ConfigError::new(setting, format!("cannot read {}: {err}", path.display()))
    })?;
    let secret = text.trim_end_matches(['\r', '\n']).to_owned();
    if secret.is_empty() {
        return Err(ConfigError::new(
            setting,
            format!("{} is empty", path.display()),
        ));
    }
    Ok(secret)
}

fn read_session_key(path: &PathBuf) -> Result<Secret<Vec<u8>>, ConfigError> {
    let bytes = std::fs::read(path).map_err(|err| {
        ConfigError::new(
            "SESSION_KEY_FILE",
            format!("cannot read {}: {err}", path.display()),
        )
    })?;
    if bytes.len() < MIN_SESSION_KEY_BYTES {
        return Err(ConfigError::new(
            "SESSION_KEY_FILE",
            format!(
                "{} holds {} bytes; the key needs at least {MIN_SESSION_KEY_BYTES} \
                 (for example `head -c 64 /dev/urandom > {}`)",
                path.display(),
                bytes.len(),
                path.display()
            ),
        ));
    }
    Ok(Secret::new(bytes))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn parse(flags: &[&str]) -> Result<Settings, ConfigError> {
        parse_with_env(flags, &[])
    }

    fn parse_with_env(flags: &[&str], env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let argv = std::iter::once("hit-counter").chain(flags.iter().copied());
        let args = Args::try_parse_from(argv).expect("flags parse");
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_args(args, |name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn defaults_listen_on_8080_with_the_sqlite_store() {
        let settings = parse(&[]).unwrap();

        assert_eq!(settings.listen, "0.0.0.0:8080".parse().unwrap());
        assert!(
            matches!(settings.store, StoreSettings::Sqlite(ref p) if p == &PathBuf::from("hits.db"))
        );
        assert_eq!(settings.poll_interval, Duration::from_secs(2));
        assert!(settings.public_url.is_none() && settings.tls.is_none());
    }

    #[test]
    fn a_port_out_of_range_is_rejected_by_the_parser() {
        let err = Args::try_parse_from(["hit-counter", "--port", "70000"]).unwrap_err();

        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("--port <PORT>"), "{err}");
    }

    #[test]
    fn a_zero_poll_interval_is_rejected_by_the_parser() {
        let err = Args::try_parse_from(["hit-counter", "--poll-seconds", "0"]).unwrap_err();

        assert!(err.to_string().contains("POLL_SECONDS"), "{err}");
    }

    #[test]
    fn a_tls_certificate_without_a_key_is_rejected() {
        let err = Args::try_parse_from(["hit-counter", "--tls-cert", "c.pem"]).unwrap_err();

        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn a_relative_public_url_names_the_setting() {
        let err = parse(&["--public-url", "/join"]).unwrap_err();

        assert_eq!(err.setting, "PUBLIC_URL");
    }

    #[test]
    fn a_short_session_key_file_names_the_setting() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b"too short").unwrap();

        let err = parse(&["--session-key-file", file.path().to_str().unwrap()]).unwrap_err();

        assert_eq!(err.setting, "SESSION_KEY_FILE");
        assert!(err.problem.contains("at least 32"), "{}", err.problem);
    }

    #[test]
    fn a_session_key_file_is_read_and_never_printed() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&[7_u8; 48]).unwrap();

        let settings = parse(&["--session-key-file", file.path().to_str().unwrap()]).unwrap();

        let key = settings.session_key.unwrap();
        assert_eq!(key.expose().len(), 48);
        assert_eq!(format!("{key:?} {key}"), "[redacted] [redacted]");
    }

    #[cfg(not(feature = "oracle"))]
    #[test]
    fn an_oracle_connect_string_without_oracle_support_says_how_to_build_it() {
        let err = parse_with_env(&[], &[("PYTHON_CONNECTSTRING", "db/freepdb1")]).unwrap_err();

        assert_eq!(err.setting, "ORACLE_CONNECT_STRING");
        assert!(err.problem.contains("--features oracle"), "{}", err.problem);
    }

    #[cfg(feature = "oracle")]
    #[test]
    fn the_flask_variable_names_are_accepted_as_aliases() {
        let env = [
            ("PYTHON_CONNECTSTRING", "db/freepdb1"),
            ("PYTHON_USERNAME", "counter"),
            ("PYTHON_PASSWORD", "hunter2"),
        ];

        let settings = parse_with_env(&[], &env).unwrap();

        let StoreSettings::Oracle(oracle) = settings.store else {
            panic!("expected the Oracle store");
        };
        assert_eq!(oracle.connect_string, "db/freepdb1");
        assert_eq!(oracle.user, "counter");
        assert_eq!(oracle.password.expose(), "hunter2");
        assert!(!format!("{oracle:?}").contains("hunter2"));
    }

    #[cfg(feature = "oracle")]
    #[test]
    fn the_new_variable_names_win_over_the_aliases() {
        let env = [("PYTHON_USERNAME", "old"), ("PYTHON_PASSWORD", "old")];
        let flags = [
            "--oracle-connect-string",
            "db/freepdb1",
            "--oracle-user",
            "new",
        ];

        let err_or_settings = parse_with_env(&flags, &env).unwrap();

        let StoreSettings::Oracle(oracle) = err_or_settings.store else {
            panic!("expected the Oracle store");
        };
        assert_eq!(oracle.user, "new");
    }

    #[cfg(feature = "oracle")]
    #[test]
    fn an_oracle_connect_string_without_a_password_names_the_setting() {
        let flags = [
            "--oracle-connect-string",
            "db/freepdb1",
            "--oracle-user",
            "u",
        ];

        let err = parse_with_env(&flags, &[]).unwrap_err();

        assert_eq!(err.setting, "ORACLE_PASSWORD");
    }
}
