use std::io::Write;

use crate::helpers::run_binary;

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_missing_database_url_stops_serve_with_exit_code_2_naming_the_key() {
    let output = run_binary(&["serve"], &[]);

    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("DATABASE_URL: required"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_non_numeric_port_is_named_with_its_value_and_source() {
    let output = run_binary(
        &["serve"],
        &[
            ("DATABASE_URL", "postgres://u@127.0.0.1/db"),
            ("PORT", "abc"),
        ],
    );

    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains(r#"PORT: expected an integer 1-65535, got "abc" (environment)"#),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_bad_value_stops_the_program_before_any_socket_opens() {
    // Holding the port proves nothing was bound: had serve tried, it would fail differently.
    let output = run_binary(
        &["serve"],
        &[
            ("DATABASE_URL", "postgres://u@127.0.0.1/db"),
            ("LOG_FORMAT", "xml"),
        ],
    );

    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains(r#"LOG_FORMAT: expected json or pretty, got "xml" (environment)"#),
        "{}",
        stderr(&output)
    );
    assert!(
        output.stdout.is_empty(),
        "nothing was logged: {:?}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn the_toml_file_is_read_the_environment_wins_and_config_names_each_source() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        file,
        "port = 9123\nlog_level = \"debug\"\nshutdown_grace_seconds = 5"
    )
    .unwrap();
    let path = file.path().to_str().unwrap();

    let output = run_binary(
        &["config"],
        &[
            ("SIGMASIGHT_CONFIG", path),
            ("DATABASE_URL", "postgres://app:pw-in-env@db:5432/app"),
            ("LOG_LEVEL", "warn"),
        ],
    );

    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("PORT=9123  # file {path}")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("SHUTDOWN_GRACE_SECONDS=5  # file {path}")),
        "{stdout}"
    );
    assert!(stdout.contains("LOG_LEVEL=warn  # environment"), "{stdout}");
    assert!(
        stdout.contains("REQUEST_TIMEOUT_SECONDS=30  # default"),
        "{stdout}"
    );
    assert!(
        stdout.contains("DATABASE_URL=postgres://app:****@db:5432/app  # environment"),
        "{stdout}"
    );
    assert!(!stdout.contains("pw-in-env"), "{stdout}");
}

#[test]
fn an_unknown_key_in_the_toml_file_is_an_error() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "port = 9123\nprot = 1").unwrap();

    let output = run_binary(
        &["config"],
        &[
            ("SIGMASIGHT_CONFIG", file.path().to_str().unwrap()),
            ("DATABASE_URL", "postgres://u@db/app"),
        ],
    );

    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("prot: unknown key"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_missing_config_file_is_an_error_naming_the_variable() {
    let output = run_binary(
        &["config"],
        &[
            ("SIGMASIGHT_CONFIG", "/nonexistent/sigmasight.toml"),
            ("DATABASE_URL", "postgres://u@db/app"),
        ],
    );

    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("SIGMASIGHT_CONFIG: cannot read"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn config_redacts_both_database_passwords() {
    let output = run_binary(
        &["config"],
        &[
            (
                "DATABASE_URL",
                "postgres://app:first-secret@db/app?sslmode=require",
            ),
            (
                "DATABASE_MIGRATION_URL",
                "postgres://owner:second-secret@db/app",
            ),
        ],
    );

    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !stdout.contains("first-secret") && !stdout.contains("second-secret"),
        "{stdout}"
    );
    assert!(
        stdout.contains("DATABASE_MIGRATION_URL=postgres://owner:****@db/app"),
        "{stdout}"
    );
}

#[test]
fn serve_needs_a_secret_key_but_migrate_does_not() {
    let serve = run_binary(
        &["serve"],
        &[
            ("DATABASE_URL", "postgres://u@127.0.0.1:9/db"),
            ("SECRET_KEY", ""),
        ],
    );
    let short = run_binary(
        &["config"],
        &[
            ("DATABASE_URL", "postgres://u@127.0.0.1:9/db"),
            ("SECRET_KEY", "short-secret"),
        ],
    );
    let printed = run_binary(
        &["config"],
        &[
            ("DATABASE_URL", "postgres://u@127.0.0.1:9/db"),
            ("SECRET_KEY", ""),
        ],
    );

    assert_eq!(serve.status.code(), Some(2));
    assert!(
        stderr(&serve).contains("SECRET_KEY: required"),
        "{}",
        stderr(&serve)
    );
    assert_eq!(short.status.code(), Some(2));
    assert!(
        stderr(&short).contains("SECRET_KEY: expected a secret of at least 32 bytes"),
        "{}",
        stderr(&short)
    );
    assert!(!stderr(&short).contains("short-secret"));
    assert_eq!(printed.status.code(), Some(0), "{}", stderr(&printed));
}

#[test]
fn a_toml_syntax_error_names_its_line_and_column_but_quotes_nothing_from_the_file() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        file,
        "port = 9123\nlog_level = \"info\"\nsecret_key = \"sk-live-4f8a9c2e1b7d\" typo"
    )
    .unwrap();
    let path = file.path().to_str().unwrap();

    let output = run_binary(
        &["config"],
        &[
            ("SIGMASIGHT_CONFIG", path),
            ("DATABASE_URL", "postgres://u@db/app"),
        ],
    );

    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output).trim_end(),
        format!(
            "sigmasight: configuration error: SIGMASIGHT_CONFIG: cannot parse the configuration \
             file \"{path}\": TOML syntax error at line 3, column 37"
        )
    );
    assert!(!stderr(&output).contains("sk-live"), "{}", stderr(&output));
}

#[test]
fn an_unterminated_secret_in_the_toml_file_is_located_without_being_quoted() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        file,
        "database_url = \"postgres://app:pw-9b1e77@db/app\nport = 9123"
    )
    .unwrap();

    let output = run_binary(
        &["config"],
        &[("SIGMASIGHT_CONFIG", file.path().to_str().unwrap())],
    );

    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("TOML syntax error at line 1, column "),
        "{}",
        stderr(&output)
    );
    assert!(
        !stderr(&output).contains("pw-9b1e77"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_secret_of_the_wrong_type_in_the_toml_file_is_named_but_never_quoted() {
    for line in [
        "secret_key_previous = [\"sk-live-4f8a9c2e1b7d-sk-live-4f8a9c2e1b7d\"]",
        "database_migration_url = [\"postgres://app:pw-9b1e77@db/app\"]",
        "polygon_api_key = { key = \"sk-live-4f8a9c2e1b7d\" }",
        "fmp_api_key = 5",
    ] {
        // Keys the test helper does not set in the environment, which would override the file.
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "{line}").unwrap();
        let key = line.split(' ').next().unwrap().to_ascii_uppercase();

        let output = run_binary(
            &["config"],
            &[
                ("SIGMASIGHT_CONFIG", file.path().to_str().unwrap()),
                ("DATABASE_URL", "postgres://u@db/app"),
            ],
        );

        assert_eq!(output.status.code(), Some(2), "{line}");
        let stderr = stderr(&output);
        assert!(
            stderr.contains(&format!("{key}: expected"))
                && stderr.contains("not shown because it is a secret"),
            "{line}: {stderr}"
        );
        assert!(
            !stderr.contains("sk-live") && !stderr.contains("pw-9b1e77"),
            "{line}: {stderr}"
        );
    }
}
