//! `sigmasight etl --provider csv --file PATH|-`: the binary imports both layouts, plain or
//! gzip, from a file or standard input, through the ETL's validation, loader and run record.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};
use sqlx::PgConnection;

use crate::helpers::{binary, connect, migrated_database};

const LONG: &str = "\
Symbol,DATE,open,High,low,Close,adj_close,Volume
AAPL,2025-01-13,233.53,234.67,229.72,234.4,234.1,49630700
AAPL,2025-01-14,234.75,236.12,232.47,233.28,,39435300
MSFT,2025-01-13,415.24,418.5,412.29,417.19,416.5,17604800
MSFT,2025-01-14,417.81,419.74,410.72,415.67,415.0,16935900
";

const PER_SYMBOL: &str = "\
Date,Open,High,Low,Close,Adj Close,Volume
2025-01-10,240.009995,240.160004,233.000000,236.850006,236.399994,61710900
2025-01-13,233.529999,234.669998,229.720001,234.399994,233.955185,49630700
2025-01-14,234.750000,236.119995,232.470001,233.279999,232.837311,39435300
";

/// Runs `sigmasight etl --provider csv` with `args`, `stdin` as its input, against `database`.
fn import(database: &str, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(binary())
        .args(["etl", "--provider", "csv"])
        .args(args)
        .env_clear()
        .env("DATABASE_URL", database)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the binary");
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    // Written from another thread: a large input would fill the pipe before the child reads.
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let output = child.wait_with_output().expect("run the binary");
    writer.join().unwrap();
    output
}

fn file(contents: &[u8], suffix: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(suffix).tempfile().unwrap();
    file.write_all(contents).unwrap();
    file
}

fn gzip(text: &str) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(text.as_bytes()).unwrap();
    encoder.finish().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Every stored bar as (symbol, date, close, adj_close, volume, source).
async fn bars(
    conn: &mut PgConnection,
) -> Vec<(String, String, String, Option<String>, i64, String)> {
    sqlx::query_as(
        "SELECT symbol, date::text, close::text, adj_close::text, volume, source
           FROM daily_prices ORDER BY symbol, date",
    )
    .fetch_all(conn)
    .await
    .unwrap()
}

async fn runs(conn: &mut PgConnection) -> Vec<Value> {
    sqlx::query_scalar("SELECT to_jsonb(r) FROM etl_run r ORDER BY id")
        .fetch_all(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_long_file_loads_with_any_header_case_and_its_run_is_recorded_as_csv() {
    let database = migrated_database().await;
    let csv = file(LONG.as_bytes(), ".csv");

    let output = import(&database, &["--file", csv.path().to_str().unwrap()], b"");

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let mut conn = connect(&database).await;
    let stored = bars(&mut conn).await;
    assert_eq!(stored.len(), 4);
    assert_eq!(
        stored[0],
        (
            "AAPL".into(),
            "2025-01-13".into(),
            "234.400000".into(),
            Some("234.100000".into()),
            49_630_700,
            "csv".into()
        )
    );
    assert_eq!(stored[1].3, None, "an empty adj close is NULL");
    let run = &runs(&mut conn).await[0];
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["providers"], json!(["csv"]));
    assert_eq!(
        (&run["date_from"], &run["date_to"]),
        (&json!("2025-01-13"), &json!("2025-01-14"))
    );
    assert_eq!(run["symbols_requested"], 2);
    assert_eq!(run["symbols_succeeded"], 2);
    assert_eq!(run["rows_inserted"], 4);
    assert!(
        stdout(&output).contains("rows 4 inserted"),
        "{}",
        stdout(&output)
    );
}

#[tokio::test]
async fn a_per_symbol_file_loads_under_the_symbol_given_with_symbols() {
    let database = migrated_database().await;
    let csv = file(PER_SYMBOL.as_bytes(), ".csv");

    let output = import(
        &database,
        &["--file", csv.path().to_str().unwrap(), "--symbols", "aapl"],
        b"",
    );

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let stored = bars(&mut connect(&database).await).await;
    assert_eq!(stored.len(), 3);
    assert!(stored.iter().all(|b| b.0 == "AAPL" && b.5 == "csv"));
    assert_eq!(stored[0].2, "236.850006");
    assert_eq!(stored[0].3.as_deref(), Some("236.399994"));
}

#[tokio::test]
async fn gzip_is_recognised_in_a_file_and_on_standard_input() {
    let database = migrated_database().await;
    let compressed = file(&gzip(LONG), ".csv.gz");
    // No .gz in the name: the magic bytes decide, not the suffix.
    let disguised = file(&gzip(PER_SYMBOL), ".csv");

    let from_file = import(
        &database,
        &["--file", compressed.path().to_str().unwrap()],
        b"",
    );
    let from_stdin = import(
        &database,
        &["--file", "-", "--symbols", "NVDA"],
        &gzip(PER_SYMBOL),
    );
    let disguised = import(
        &database,
        &[
            "--file",
            disguised.path().to_str().unwrap(),
            "--symbols",
            "SPY",
        ],
        b"",
    );

    for output in [&from_file, &from_stdin, &disguised] {
        assert_eq!(output.status.code(), Some(0), "{}", stderr(output));
    }
    let stored = bars(&mut connect(&database).await).await;
    let count = |symbol: &str| stored.iter().filter(|b| b.0 == symbol).count();
    assert_eq!(
        [count("AAPL"), count("MSFT"), count("NVDA"), count("SPY")],
        [2, 2, 3, 3]
    );
}

#[tokio::test]
async fn plain_standard_input_is_read_with_a_dash() {
    let database = migrated_database().await;

    let output = import(&database, &["--file", "-"], LONG.as_bytes());

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(bars(&mut connect(&database).await).await.len(), 4);
}

#[tokio::test]
async fn bad_rows_are_reported_with_their_line_and_reason_and_the_rest_loads_as_partial() {
    let database = migrated_database().await;
    let text = "\
symbol,date,open,high,low,close,volume
AAPL,2025-01-13,233.53,234.67,229.72,234.4,49630700
MSFT,2025-01-14,417.81,419.74,410.72,415.1234567,16935900
AAPL,2025-04-18,1,2,1,1.5,10
AAPL,2025-01-14,3,2,1,1.5,10
AAPL,2025-01-13,233.53,234.67,229.72,234.4,49630700
A B,2025-01-14,1,2,1,1.5,10
MSFT,not a date,1,2,1,1.5,10
MSFT,2025-01-13,1,2,1,1.5,null
NVDA,2025-01-14,140.5,141,139,140.11,250000000
";

    let output = import(&database, &["--file", "-"], text.as_bytes());

    assert_eq!(
        output.status.code(),
        Some(3),
        "partial: {}",
        stderr(&output)
    );
    let mut conn = connect(&database).await;
    let stored: Vec<(String, String)> = bars(&mut conn)
        .await
        .into_iter()
        .map(|b| (b.0, b.1))
        .collect();
    assert_eq!(
        stored,
        [
            ("AAPL".to_owned(), "2025-01-13".to_owned()),
            ("NVDA".to_owned(), "2025-01-14".to_owned())
        ]
    );
    let run = &runs(&mut conn).await[0];
    assert_eq!(run["status"], "partial");
    assert_eq!(run["rows_rejected"], 7);
    assert_eq!(run["rows_inserted"], 2);
    // MSFT: every row refused, so it counts as a symbol not supplied.
    assert_eq!(
        (&run["symbols_requested"], &run["symbols_failed"]),
        (&json!(3), &json!(1))
    );
    let errors: Vec<&str> = run["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["error"].as_str().unwrap())
        .collect();
    assert_eq!(
        errors,
        [
            "line 3: a price has more than 6 decimal places",
            "line 4: the exchange was closed on that date",
            "line 5: open is outside [low, high]",
            "line 6: the symbol and date appear on an earlier line of the file",
            "line 7: the symbol is not one (letters, digits and . - ^, at most 20)",
            "line 8: no readable date",
            "line 9: the volume is missing or not a number",
        ]
    );
    assert_eq!(run["failures"][0]["provider"], "csv");
    assert_eq!(run["failures"][0]["symbol"], "MSFT");
    let summary = stdout(&output);
    assert!(
        summary.contains(
            "7 row(s) rejected, first line 3 (MSFT 2025-01-14): a price has more than 6 decimal places"
        ),
        "{summary}"
    );
    // Each reject is also a log line with its line number.
    assert!(
        summary.contains(r#""message":"csv row rejected","line":4"#),
        "{summary}"
    );
}

#[tokio::test]
async fn a_second_import_of_the_same_file_changes_nothing_not_even_updated_at() {
    let database = migrated_database().await;
    let csv = file(LONG.as_bytes(), ".csv");
    let path = csv.path().to_str().unwrap();
    let first = import(&database, &["--file", path], b"");
    let mut conn = connect(&database).await;
    let before: Vec<(String, String)> =
        sqlx::query_as("SELECT symbol, updated_at::text FROM daily_prices ORDER BY 1, updated_at")
            .fetch_all(&mut conn)
            .await
            .unwrap();

    let second = import(&database, &["--file", path], b"");

    let after: Vec<(String, String)> =
        sqlx::query_as("SELECT symbol, updated_at::text FROM daily_prices ORDER BY 1, updated_at")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(first.status.code(), Some(0));
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    assert_eq!(before, after);
    let run = &runs(&mut conn).await[1];
    assert_eq!(
        (
            &run["rows_inserted"],
            &run["rows_updated"],
            &run["rows_unchanged"]
        ),
        (&json!(0), &json!(0), &json!(4))
    );
}

#[tokio::test]
async fn without_a_terminal_progress_is_a_log_line_with_the_rows_read() {
    let database = migrated_database().await;

    let output = import(&database, &["--file", "-"], LONG.as_bytes());

    let progress: Vec<Value> = stdout(&output)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["message"] == "csv import progress")
        .collect();
    assert_eq!(progress.last().unwrap()["rows"], 4, "{progress:?}");
    assert!(progress.last().unwrap()["rows_per_second"].is_u64());
}

#[tokio::test]
async fn usage_errors_name_the_flag_exit_2_and_record_no_run() {
    let database = migrated_database().await;
    let vendor_extra = file(b"Date,Open,High,Low,Close,Adj Close,Volume,VWAP\n", ".csv");
    let per_symbol = file(PER_SYMBOL.as_bytes(), ".csv");
    let long = file(LONG.as_bytes(), ".csv");
    let path = |f: &tempfile::NamedTempFile| f.path().to_str().unwrap().to_owned();

    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![], "--file: required with --provider csv"),
        (
            vec!["--file".into(), "/no/such/file.csv".into()],
            "--file: cannot read \"/no/such/file.csv\"",
        ),
        (
            vec![
                "--file".into(),
                path(&vendor_extra),
                "--symbols".into(),
                "X".into(),
            ],
            "--file: unknown column \"VWAP\"",
        ),
        (
            vec!["--file".into(), path(&per_symbol)],
            "--symbols: required for a file without a symbol column",
        ),
        (
            vec![
                "--file".into(),
                path(&per_symbol),
                "--symbols".into(),
                "A,B".into(),
            ],
            "--symbols: a per-symbol file takes exactly one symbol, got 2",
        ),
        (
            vec![
                "--file".into(),
                path(&long),
                "--symbols".into(),
                "AAPL".into(),
            ],
            "--symbols: the file has a symbol column",
        ),
        (
            vec![
                "--file".into(),
                path(&long),
                "--date".into(),
                "2025-01-14".into(),
            ],
            "--date, --from and --to do not apply to --provider csv",
        ),
    ];
    for (args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = import(&database, &args, b"");
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(expected),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    let other = Command::new(binary())
        .args(["etl", "--file", "x.csv"])
        .env_clear()
        .env("DATABASE_URL", &database)
        .output()
        .unwrap();
    assert_eq!(other.status.code(), Some(2));
    assert!(stderr(&other).contains("--file: only with --provider csv"));
    assert!(runs(&mut connect(&database).await).await.is_empty());
}

#[tokio::test]
async fn a_truncated_gzip_loads_what_came_before_and_the_run_is_partial() {
    let database = migrated_database().await;
    let rows: String = (0..20_000)
        .map(|i| format!("S{:04},2025-01-14,1,2,1,1.5,{}\n", i, 100 + i))
        .collect();
    let whole = gzip(&format!("symbol,date,open,high,low,close,volume\n{rows}"));
    let truncated = &whole[..whole.len() * 3 / 4];

    let output = import(&database, &["--file", "-"], truncated);

    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let mut conn = connect(&database).await;
    let run = &runs(&mut conn).await[0];
    assert_eq!(run["status"], "partial");
    let loaded = run["rows_inserted"].as_i64().unwrap();
    assert!(loaded > 0 && loaded < 20_000, "{loaded}");
    assert!(
        run["error_summary"]
            .as_str()
            .unwrap()
            .contains("reading the file failed at line"),
        "{run}"
    );
}

#[tokio::test]
async fn a_file_whose_every_row_is_rejected_fails_with_exit_1() {
    let database = migrated_database().await;
    let text = "Date,Open,High,Low,Close,Adj Close,Volume\n2025-01-18,1,2,1,1.5,1.5,10\n";

    let output = import(
        &database,
        &["--file", "-", "--symbols", "X"],
        text.as_bytes(),
    );

    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let run = &runs(&mut connect(&database).await).await[0];
    assert_eq!(run["status"], "failed");
    assert_eq!(run["rows_rejected"], 1);
    assert_eq!(run["date_from"], Value::Null);
}

#[tokio::test]
async fn sigterm_while_standard_input_stalls_commits_what_was_sent_and_records_cancelled() {
    use tokio::io::AsyncWriteExt;
    let database = migrated_database().await;
    let mut child = tokio::process::Command::new(binary())
        .args(["etl", "--provider", "csv", "--file", "-"])
        .env_clear()
        .env("DATABASE_URL", &database)
        .env("ETL_BATCH_SIZE", "1000")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // 3,000 rows, then nothing: the producer stalls with the pipe still open.
    let rows: String = (0..3000)
        .map(|i| format!("S{i:04},2025-01-14,1,2,1,1.5,10\n"))
        .collect();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("symbol,date,open,high,low,close,volume\n{rows}").as_bytes())
        .await
        .unwrap();
    let mut conn = connect(&database).await;
    let committed = crate::helpers::poll(std::time::Duration::from_secs(20), || {
        let database = database.clone();
        async move {
            let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM daily_prices")
                .fetch_one(&mut connect(&database).await)
                .await
                .unwrap();
            stored >= 1000
        }
    })
    .await;
    assert!(committed, "no batch was committed");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id().unwrap() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = tokio::time::timeout(std::time::Duration::from_secs(20), child.wait())
        .await
        .expect("the import ends although its input never does")
        .unwrap();

    assert_eq!(status.code(), Some(5));
    let run = &runs(&mut conn).await[0];
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM daily_prices")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(run["status"], "cancelled");
    assert!(stored >= 1000, "{stored}");
    assert_eq!(run["rows_inserted"], stored);
    drop(stdin);
}
