//! The CSV import's input in `scripts/bench.sh`: a long-layout file
//! (`symbol,date,open,high,low,close,adj close,volume`) with a row for every NYSE trading day
//! from `from` to `to` (the service's own calendar) for each of `symbols` symbols named
//! `C0000`, `C0001`, ..., symbol by symbol, with prices that vary by symbol and day and that
//! validation accepts.
//!
//! Usage: `csv-file SYMBOLS FROM TO PATH`; prints the number of rows written.

use std::io::{BufWriter, Write};

use chrono::NaiveDate;
use sigmasight::etl::calendar;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [symbols, from, to, path] = args.as_slice() else {
        eprintln!("usage: csv-file SYMBOLS FROM TO PATH");
        std::process::exit(2);
    };
    let bad = |what: &str| -> ! {
        eprintln!("csv-file: {what} is not valid");
        std::process::exit(2);
    };
    let symbols: u32 = symbols.parse().unwrap_or_else(|_| bad("SYMBOLS"));
    let from: NaiveDate = from.parse().unwrap_or_else(|_| bad("FROM"));
    let to: NaiveDate = to.parse().unwrap_or_else(|_| bad("TO"));
    let days: Vec<NaiveDate> = calendar::trading_days(from, to).collect();
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    writeln!(out, "symbol,date,open,high,low,close,adj close,volume")?;
    let mut rows = 0u64;
    for s in 0..symbols {
        let seed = u64::from(s) * 7919;
        for (i, day) in days.iter().enumerate() {
            let i = i as u64;
            let base = 20 + (seed + i * 3) % 480;
            let (open, close) = ((seed + i * 13) % 100, (seed * 3 + i * 29) % 100);
            let volume = 100_000 + (seed * 31 + i * 977) % 9_000_000;
            writeln!(
                out,
                "C{s:04},{day},{base}.{open:02},{high}.5,{low}.25,{base}.{close:02},{base}.{close:02}0001,{volume}",
                high = base + 1,
                low = base - 1,
            )?;
            rows += 1;
        }
    }
    out.flush()?;
    println!("{rows}");
    Ok(())
}
