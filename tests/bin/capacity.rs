//! Capacity units and cost per operation: runs the tour of every operation
//! (`fund_account_tests::tour`) on the DynamoDB adapter against the emulator at
//! `MOTO_ENDPOINT`, and prints Markdown tables to paste into `docs/PERFORMANCE.md`:
//! per operation its DynamoDB calls, read and write request units (computed by
//! DynamoDB's rules, `fund_account_tests::metering`), Lambda GB-seconds and the cost of a
//! million; then the monthly cost of 1 million withdrawals and 10 million collections.
//!
//! Lambda time is the operation's wall time in this process (build with the `measure`
//! profile: argon2id is the real one), calls to the emulator on loopback included: a
//! stand-in for the handler's billed duration, not a measurement of it.
//!
//! Lives in the tests package because the tour uses its test support (apps on a manual
//! clock, SMS to a readable outbox), and that package depends on `bench`.

use std::collections::BTreeMap;

use fund_account::function_config::Function;
use fund_account_tests::deployed::{memory_mb, template};
use fund_account_tests::tour::{self, Step};
use rust_decimal::Decimal;

/// On-demand prices, us-east-1, as published on 2026-11-29 (docs/PERFORMANCE.md cites
/// the pages), in USD.
mod price {
    /// Per million write request units (1 KB standard write).
    pub const WRITE_UNITS_PER_MILLION: &str = "0.625";
    /// Per million read request units (4 KB strongly consistent read).
    pub const READ_UNITS_PER_MILLION: &str = "0.125";
    /// Lambda, per million requests.
    pub const LAMBDA_REQUESTS_PER_MILLION: &str = "0.20";
    /// Lambda arm64 (the template's architecture), per GB-second, first 7.5 billion.
    pub const LAMBDA_ARM64_PER_GB_SECOND: &str = "0.0000133334";
    /// API Gateway HTTP API, per million requests, first 300 million.
    pub const HTTP_API_PER_MILLION: &str = "1.00";
    /// EventBridge, per million custom events put on a bus.
    pub const BUS_EVENTS_PER_MILLION: &str = "1.00";
}

/// A decimal from its text (the prices above, exact).
fn d(text: &str) -> Decimal {
    Decimal::from_str_exact(text).expect("a decimal")
}

fn million() -> Decimal {
    Decimal::from(1_000_000)
}

/// What one run of an operation costs.
#[derive(Debug, Clone, Copy, Default)]
struct Cost {
    read_units: Decimal,
    write_units: Decimal,
    lambda_requests: Decimal,
    gb_seconds: Decimal,
    api_requests: Decimal,
    bus_events: Decimal,
}

impl Cost {
    fn of(step: &Step, memory_mb: u64) -> Cost {
        // Lambda bills whole milliseconds, rounded up.
        let ms = u64::try_from(step.elapsed.as_micros().div_ceil(1000)).expect("milliseconds");
        let http = Function::all().any(|f| matches!(f, Function::Http(_)) && f.binary() == step.function);
        Cost {
            read_units: Decimal::from(step.usage.read_halves) / Decimal::TWO,
            write_units: Decimal::from(step.usage.write_units),
            lambda_requests: Decimal::ONE,
            gb_seconds: Decimal::from(memory_mb) / Decimal::from(1024) * Decimal::from(ms) / Decimal::from(1000),
            api_requests: if http { Decimal::ONE } else { Decimal::ZERO },
            // The publisher puts each event it handles on the bus (a redelivery again).
            bus_events: if step.function == Function::PublishEvents.binary() {
                Decimal::ONE
            } else {
                Decimal::ZERO
            },
        }
    }

    fn dynamodb(&self) -> Decimal {
        (self.read_units * d(price::READ_UNITS_PER_MILLION) + self.write_units * d(price::WRITE_UNITS_PER_MILLION))
            / million()
    }

    fn lambda(&self) -> Decimal {
        self.lambda_requests * d(price::LAMBDA_REQUESTS_PER_MILLION) / million()
            + self.gb_seconds * d(price::LAMBDA_ARM64_PER_GB_SECOND)
    }

    fn api(&self) -> Decimal {
        self.api_requests * d(price::HTTP_API_PER_MILLION) / million()
    }

    fn bus(&self) -> Decimal {
        self.bus_events * d(price::BUS_EVENTS_PER_MILLION) / million()
    }

    fn total(&self) -> Decimal {
        self.dynamodb() + self.lambda() + self.api() + self.bus()
    }

    fn times(self, n: Decimal) -> Cost {
        Cost {
            read_units: self.read_units * n,
            write_units: self.write_units * n,
            lambda_requests: self.lambda_requests * n,
            gb_seconds: self.gb_seconds * n,
            api_requests: self.api_requests * n,
            bus_events: self.bus_events * n,
        }
    }

    fn plus(self, other: Cost) -> Cost {
        Cost {
            read_units: self.read_units + other.read_units,
            write_units: self.write_units + other.write_units,
            lambda_requests: self.lambda_requests + other.lambda_requests,
            gb_seconds: self.gb_seconds + other.gb_seconds,
            api_requests: self.api_requests + other.api_requests,
            bus_events: self.bus_events + other.bus_events,
        }
    }
}

fn calls_cell(step: &Step) -> String {
    if step.usage.calls.is_empty() {
        return "none".to_owned();
    }
    step.usage
        .calls
        .iter()
        .map(|(name, n)| if *n == 1 { name.clone() } else { format!("{n}× {name}") })
        .collect::<Vec<_>>()
        .join(", ")
}

fn dollars(x: Decimal) -> String {
    if x >= Decimal::ONE_HUNDRED {
        format!("${:.0}", x)
    } else {
        format!("${:.2}", x)
    }
}

fn whole(x: Decimal) -> Decimal {
    x.round_dp(0)
}

/// Which of a step's costs a line of the monthly model counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Whole,
    /// The writes and the Lambda time: a collection settled within a run.
    CommitAndTime,
    /// The reads and the invocation: the run itself (its page of the due index).
    ReadsAndInvocation,
}

/// The monthly model: each line an operation of the tour, how many a month, and which
/// of its costs count (settlement's index queries and invocation are per run, not per
/// collection).
struct Line {
    label: &'static str,
    per_month: u64,
    note: &'static str,
    part: Part,
}

const WITHDRAWALS: u64 = 1_000_000;
const COLLECTIONS: u64 = 10_000_000;
/// `SettlementSchedule`'s default, rate(5 minutes), over a 30-day month.
const SETTLEMENT_RUNS: u64 = 30 * 24 * 12;

fn monthly_lines() -> Vec<Line> {
    let line = |label, per_month, note| Line {
        label,
        per_month,
        note,
        part: Part::Whole,
    };
    vec![
        line("withdrawal", WITHDRAWALS, "POST /v1/withdrawals"),
        line("withdrawal paid", WITHDRAWALS, "the payout provider's report"),
        line(
            "publish withdrawal.created (and its SMS)",
            WITHDRAWALS,
            "one invocation per event (a stream batch may carry several)",
        ),
        line("publish withdrawal.paid (and its SMS)", WITHDRAWALS, ""),
        line(
            "get account",
            WITHDRAWALS,
            "assumed: the seller's app reads the balance before each withdrawal",
        ),
        line(
            "get withdrawal",
            WITHDRAWALS,
            "assumed: and the withdrawal once after it",
        ),
        line("collection", COLLECTIONS, "POST /internal/collections"),
        Line {
            label: "settlement of one collection",
            per_month: COLLECTIONS,
            note: "its commit and time, within a run",
            part: Part::CommitAndTime,
        },
        Line {
            label: "settlement of one collection",
            per_month: SETTLEMENT_RUNS,
            note: "the runs: an invocation and a page of the due index (8 queries) every 5 minutes",
            part: Part::ReadsAndInvocation,
        },
        line("publish collection.created", COLLECTIONS, ""),
        line("publish collection.settled", COLLECTIONS, ""),
    ]
}

#[tokio::main]
async fn main() {
    let template = template();
    let steps = tour::every_operation().await;
    let memory: BTreeMap<&str, u64> = steps
        .iter()
        .map(|s| (s.function, memory_mb(&template, s.function)))
        .collect();
    let cost = |step: &Step| Cost::of(step, memory[step.function]);

    println!("| operation | function | DynamoDB calls | RCU | WCU (one-write commits as transactions) | Lambda ms (MB) | GB-s | $ per million |");
    println!("|---|---|---|---:|---:|---:|---:|---:|");
    for step in &steps {
        let c = cost(step);
        println!(
            "| {} | {} | {} | {} | {} | {:.1} ({}) | {} | {} |",
            step.label,
            step.function,
            calls_cell(step),
            step.usage.rcu(),
            if step.usage.plain_write_units == 0 {
                step.usage.write_units.to_string()
            } else {
                format!(
                    "**{}** ({})",
                    step.usage.write_units,
                    step.usage.write_units + step.usage.plain_write_units
                )
            },
            Decimal::from(u64::try_from(step.elapsed.as_micros()).expect("micros")) / Decimal::from(1000),
            memory[step.function],
            c.gb_seconds.round_dp(5),
            dollars(c.total() * million()),
        );
    }

    println!();
    println!("| per month | count | RCU | WCU | GB-s | DynamoDB | Lambda | API Gateway | EventBridge | total | note |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    let mut total = Cost::default();
    for line in monthly_lines() {
        let step = steps
            .iter()
            .find(|s| s.label == line.label)
            .expect("a step of the tour");
        let mut one = cost(step);
        match line.part {
            Part::Whole => {}
            Part::CommitAndTime => {
                one.read_units = Decimal::ZERO;
                one.lambda_requests = Decimal::ZERO;
                one.api_requests = Decimal::ZERO;
                one.bus_events = Decimal::ZERO;
            }
            Part::ReadsAndInvocation => {
                one.write_units = Decimal::ZERO;
                one.gb_seconds = Decimal::ZERO;
            }
        }
        let month = one.times(Decimal::from(line.per_month));
        total = total.plus(month);
        println!(
            "| {}{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            line.label,
            match line.part {
                Part::Whole => "",
                Part::CommitAndTime => " (its commit, per collection)",
                Part::ReadsAndInvocation => " (the runs)",
            },
            line.per_month,
            whole(month.read_units),
            whole(month.write_units),
            whole(month.gb_seconds),
            dollars(month.dynamodb()),
            dollars(month.lambda()),
            dollars(month.api()),
            dollars(month.bus()),
            dollars(month.total()),
            line.note,
        );
    }
    println!(
        "| **total** | | {} | {} | {} | **{}** | **{}** | **{}** | **{}** | **{}** | SMS not included: {} messages |",
        whole(total.read_units),
        whole(total.write_units),
        whole(total.gb_seconds),
        dollars(total.dynamodb()),
        dollars(total.lambda()),
        dollars(total.api()),
        dollars(total.bus()),
        dollars(total.total()),
        2 * WITHDRAWALS,
    );
}
