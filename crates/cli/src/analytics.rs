//! `regulars analytics fit`: BG/NBD and Gamma-Gamma on a transactions file.

use anyhow::{bail, Context};
use chrono::NaiveDate;
use regulars_core::clv::{self, BgNbd, CustomerSummary, GammaGamma, TimeUnit, Transaction};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Read;
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `regulars analytics fit` (API.md).
#[derive(clap::Args)]
#[command(after_help = "\
Prints one JSON object:
  {\"customers\", \"bgnbd\": {\"r\", \"alpha\", \"a\", \"b\", \"log_likelihood\"},
   \"gamma_gamma\": {\"p\", \"q\", \"v\", \"customers\"}, \"fit_ms\"}
Summaries follow the Python lifetimes package's summary_data_from_transaction_data:
purchases in one period (a day, or a Monday-Sunday week) count once with their
amounts summed; frequency = repeat periods, recency and T in periods, monetary
value = mean of the repeat periods' sums. Gamma-Gamma uses the customers with a
repeat period and a positive mean value. log_likelihood is the BG/NBD total
log-likelihood in the chosen time unit. fit_ms is the time of the two model fits
from the summaries (not reading the file nor summarizing). docs/analytics.md has
the details.")]
pub struct FitArgs {
    /// CSV with a header and `customer_id,date,amount` rows (date YYYY-MM-DD).
    #[arg(long)]
    pub transactions: PathBuf,
    /// One period: a day or an ISO week.
    #[arg(long, default_value = "day")]
    pub time_unit: String,
    /// Last day of the observation (default: the last date in the file).
    #[arg(long)]
    pub observation_end: Option<String>,
}

#[derive(Serialize)]
struct Output {
    customers: usize,
    bgnbd: BgOutput,
    gamma_gamma: GgOutput,
    fit_ms: f64,
}

#[derive(Serialize)]
struct BgOutput {
    r: f64,
    alpha: f64,
    a: f64,
    b: f64,
    log_likelihood: f64,
}

#[derive(Serialize)]
struct GgOutput {
    p: f64,
    q: f64,
    v: f64,
    customers: usize,
}

pub fn fit(args: FitArgs) -> anyhow::Result<()> {
    let unit: TimeUnit = args.time_unit.parse().map_err(anyhow::Error::msg)?;
    let end = match &args.observation_end {
        Some(s) => Some(
            parse_date(s.trim().as_bytes())
                .with_context(|| format!("bad --observation-end {s:?} (expected YYYY-MM-DD)"))?,
        ),
        None => None,
    };
    let path = args.transactions.display().to_string();
    let file =
        std::fs::File::open(&args.transactions).with_context(|| format!("cannot open {path}"))?;
    let mut rows = read_transactions(file).with_context(|| path.clone())?;

    let summaries = clv::summarize(&mut rows, unit, end);
    drop(rows);
    if summaries.is_empty() {
        bail!("{path}: no purchase on or before the observation end");
    }
    let customers: Vec<CustomerSummary> = summaries.into_iter().map(|(_, s)| s).collect();

    let started = Instant::now();
    let bg = BgNbd::fit(&customers).context("cannot fit BG/NBD")?;
    let gg = GammaGamma::fit(&customers).context("cannot fit Gamma-Gamma")?;
    let fit_ms = started.elapsed().as_secs_f64() * 1e3;

    let out = Output {
        customers: customers.len(),
        bgnbd: BgOutput {
            r: bg.r,
            alpha: bg.alpha,
            a: bg.a,
            b: bg.b,
            log_likelihood: bg.log_likelihood,
        },
        gamma_gamma: GgOutput {
            p: gg.p,
            q: gg.q,
            v: gg.v,
            customers: gg.customers,
        },
        fit_ms: (fit_ms * 1e3).round() / 1e3,
    };
    println!("{}", serde_json::to_string(&out)?);
    Ok(())
}

/// FxHash with a finaliser: customer ids are not attacker-chosen keys here (a
/// local file), and interning millions of them is the hot loop of reading.
#[derive(Default)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
        }
        for &byte in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(byte)).wrapping_mul(K);
        }
    }
    fn write_u128(&mut self, v: u128) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        for word in [v as u64, (v >> 64) as u64] {
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
        }
    }
    fn finish(&self) -> u64 {
        // MurmurHash3's finaliser: Fx alone leaves the low bits (the table
        // index) depending on the ids' common prefix only.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// Customer ids to dense numbers. Ids of up to 15 bytes (phone numbers,
/// member numbers) are kept inline in the table, which saves a cache miss per
/// row on large files; longer ones (UUIDs) live on the heap.
#[derive(Default)]
struct Interner {
    short: HashMap<u128, u32, BuildHasherDefault<FxHasher>>,
    long: HashMap<Vec<u8>, u32, BuildHasherDefault<FxHasher>>,
}

impl Interner {
    fn intern(&mut self, id: &[u8]) -> u32 {
        let next = (self.short.len() + self.long.len()) as u32;
        if id.len() < 16 {
            let mut bytes = [0u8; 16];
            bytes[..id.len()].copy_from_slice(id);
            bytes[15] = id.len() as u8;
            *self.short.entry(u128::from_le_bytes(bytes)).or_insert(next)
        } else if let Some(&n) = self.long.get(id) {
            n
        } else {
            self.long.insert(id.to_vec(), next);
            next
        }
    }
}

/// Passes bytes through and remembers where lines with content begin, so a
/// record's byte position (from csv) can be turned into its line number: the
/// csv crate's own line numbers skip blank lines and miscount CRLF files.
/// Line breaks are `\n`, `\r\n` and a lone `\r`, as for csv. Only the
/// lines csv has read ahead but not yet returned are kept.
struct LineTracker<R> {
    inner: R,
    offset: u64,
    line: u64,
    prev: u8,
    starts: VecDeque<(u64, u64)>,
}

impl<R> LineTracker<R> {
    fn new(inner: R) -> Self {
        LineTracker {
            inner,
            offset: 0,
            line: 1,
            prev: b'\n',
            starts: VecDeque::new(),
        }
    }

    /// The line of the first content byte at or after `byte` (where csv puts
    /// a record's position: just after the previous record's terminator).
    fn line_at(&mut self, byte: u64) -> u64 {
        while self.starts.front().is_some_and(|&(start, _)| start < byte) {
            self.starts.pop_front();
        }
        self.starts.front().map_or(self.line, |&(_, line)| line)
    }
}

impl<R: Read> Read for LineTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &b in &buf[..n] {
            let brk = b == b'\n' || b == b'\r';
            if !brk && (self.prev == b'\n' || self.prev == b'\r') {
                self.starts.push_back((self.offset, self.line));
            }
            if b == b'\r' || (b == b'\n' && self.prev != b'\r') {
                self.line += 1;
            }
            self.prev = b;
            self.offset += 1;
        }
        Ok(n)
    }
}

/// Read `customer_id,date,amount` rows (header first, columns found by name,
/// others ignored). Customer ids are interned to dense numbers. Errors name
/// the line.
fn read_transactions(input: impl Read) -> anyhow::Result<Vec<Transaction<u32>>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(1 << 20)
        .from_reader(LineTracker::new(input));
    let mut record = csv::ByteRecord::new();
    if !reader
        .read_byte_record(&mut record)
        .context("line 1: cannot read the header")?
    {
        bail!("empty file (expected a header line customer_id,date,amount)");
    }
    let header: Vec<String> = record
        .iter()
        .map(|f| {
            String::from_utf8_lossy(f)
                .trim()
                .trim_start_matches('\u{feff}')
                .to_string()
        })
        .collect();
    let header_line = reader
        .get_mut()
        .line_at(record.position().map_or(0, |p| p.byte()));
    let column = |name: &str| {
        header.iter().position(|h| h == name).with_context(|| {
            format!(
                "line {header_line}: missing column {name} in the header (expected customer_id,date,amount)"
            )
        })
    };
    let (id_col, date_col, amount_col) =
        (column("customer_id")?, column("date")?, column("amount")?);
    let names = ["customer_id", "date", "amount"];

    let mut ids = Interner::default();
    let mut rows = Vec::new();
    loop {
        let more = match reader.read_byte_record(&mut record) {
            Ok(more) => more,
            Err(e) => {
                let byte = e.position().map_or(u64::MAX, |p| p.byte());
                let line = reader.get_mut().line_at(byte);
                bail!("line {line}: {e}");
            }
        };
        if !more {
            break;
        }
        let line = reader
            .get_mut()
            .line_at(record.position().map_or(u64::MAX, |p| p.byte()));
        let field = |col: usize, name: usize| {
            record
                .get(col)
                .map(trim)
                .with_context(|| format!("line {line}: missing column {}", names[name]))
        };
        let id = field(id_col, 0)?;
        let date = field(date_col, 1)?;
        let amount = field(amount_col, 2)?;
        if id.is_empty() {
            bail!("line {line}: empty customer_id");
        }
        let date = parse_date(date).with_context(|| {
            format!(
                "line {line}: bad date {:?} (expected YYYY-MM-DD)",
                String::from_utf8_lossy(date)
            )
        })?;
        let amount = std::str::from_utf8(amount)
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|a| a.is_finite())
            .with_context(|| {
                format!(
                    "line {line}: bad amount {:?} (expected a number)",
                    String::from_utf8_lossy(amount)
                )
            })?;
        let customer = ids.intern(id);
        rows.push(Transaction {
            customer,
            date,
            amount,
        });
    }
    if rows.is_empty() {
        bail!("no transactions after the header line");
    }
    Ok(rows)
}

fn trim(field: &[u8]) -> &[u8] {
    let start = field
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(field.len());
    let end = field
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &field[start..end]
}

/// Strict `YYYY-MM-DD`.
fn parse_date(s: &[u8]) -> Option<NaiveDate> {
    if s.len() != 10 || s[4] != b'-' || s[7] != b'-' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| {
        s[range].iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let year = i32::try_from(num(0..4)?).ok()?;
    NaiveDate::from_ymd_opt(year, num(5..7)?, num(8..10)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(
            parse_date(b"2024-02-29"),
            NaiveDate::from_ymd_opt(2024, 2, 29)
        );
        assert_eq!(parse_date(b"2023-02-29"), None);
        assert_eq!(parse_date(b"2024-2-29"), None);
        assert_eq!(parse_date(b"2024/02/28"), None);
        assert_eq!(parse_date(b"20x4-02-28"), None);
    }

    #[test]
    fn reading_and_errors() {
        let ok = "customer_id,date,amount\na,2024-01-01,10\nb,2024-01-02, 5.5 \na,2024-01-03,1\n";
        let rows = read_transactions(ok.as_bytes()).expect("reads");
        assert_eq!(rows.len(), 3);
        assert_eq!(
            (rows[0].customer, rows[1].customer, rows[2].customer),
            (0, 1, 0)
        );
        assert_eq!(rows[1].amount, 5.5);
        // Columns found by name, in any order.
        let reordered = "amount,customer_id,date\n3,x,2024-01-01\n";
        assert_eq!(
            read_transactions(reordered.as_bytes())
                .expect("reads")
                .len(),
            1
        );

        let err = |text: &str| {
            format!(
                "{:#}",
                read_transactions(text.as_bytes()).expect_err("fails")
            )
        };
        assert!(err("").contains("empty file"));
        assert!(err("customer_id,date,amount\n").contains("no transactions"));
        assert!(err("customer_id,day,amount\n").contains("line 1: missing column date"));
        let e = err("customer_id,date,amount\na,2024-01-01,1\na,2024-13-01,1\n");
        assert!(e.contains("line 3: bad date \"2024-13-01\""), "{e}");
        let e = err("customer_id,date,amount\na,2024-01-01,1\na,2024-01-02,ten\n");
        assert!(e.contains("line 3: bad amount \"ten\""), "{e}");
        let e = err("customer_id,date,amount\na,2024-01-01,1\n\na,2024-01-02\n");
        assert!(e.contains("line 4: missing column amount"), "{e}");
        let e = err("customer_id,date,amount\n,2024-01-01,1\n");
        assert!(e.contains("line 2: empty customer_id"), "{e}");
        // Line numbers count blank lines, CRLF and lone CR line ends, and
        // quoted line breaks.
        let e = err("customer_id,date,amount\r\na,2024-01-01,1\r\n\r\nb,2024-01-32,1\r\n");
        assert!(e.contains("line 4: bad date"), "{e}");
        let e = err("customer_id,date,amount\ra,2024-01-01,1\rb,2024-01-02,z\r");
        assert!(e.contains("line 3: bad amount"), "{e}");
        let e = err("customer_id,date,amount\n\"a\nb\",2024-01-01,1\n\n\nc,x,1\n");
        assert!(e.contains("line 6: bad date"), "{e}");
        let crlf = "customer_id,date,amount\r\na,2024-01-01,1\r\n\r\nb,2024-01-02,2\r\n";
        assert_eq!(read_transactions(crlf.as_bytes()).expect("reads").len(), 2);
    }
}
