//! Each function's real binary, in its deployed shape: `target/<profile>/<function>` is
//! exec'd behind a local Lambda Runtime API (`bench::runtime_api`) with exactly the
//! environment `template.yaml` gives it — Globals and its own variables, references
//! resolved to stand-ins on the emulator — plus what Lambda itself sets, and answers its
//! `events/` file. Where `deployed_shape.rs` starts the functions in-process, this runs
//! the `main` that Lambda runs: its runtime loop, its reading of the process environment,
//! its cold start.
//!
//! A variable the code needs that the template lacks fails the journey (the binary fails
//! its cold start); one the template declares that the code ignores fails
//! `every_variable_the_template_declares_is_one_the_binary_reads` (the binary starts
//! without it). The binaries are built by `cargo build --workspace --bins`
//! (`infra/scripts/test.sh` does it first); a missing one fails, saying so.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bench::runtime_api::{invoke_once, sibling_binary, Answer, Invocation, Invoked};
use fund_account::function_config::{vars, Function};
use fund_account::lambda::metrics;
use fund_account::member::MemberId;
use fund_account::routes::Route;
use fund_account_tests::deployed::{self, Emulated, ACCOUNT_ID, REGION};
use fund_account_tests::event;
use fund_account_tests::journey::{
    assert_statement_adds_up, export_under_the_events_id, fresh_rate, make_the_sent_code,
    outbox_item_under_the_events_key, quote_under_the_events_id, withdrawal_under_the_events_id,
};
use serde_json::Value;

/// The longest a test waits for one answer (the reconcile function's own timeout is
/// 15 minutes; a run over a fresh table takes well under a second).
const LONGEST_WAIT: Duration = Duration::from_secs(60);

/// Runs `function`'s binary on `event` with the template's variables `environment` (or
/// a variation of them) and Lambda's own.
async fn invoke(
    emulated: &Emulated,
    function: Function,
    event: &Value,
    environment: &BTreeMap<String, String>,
) -> Invoked {
    let name = function.binary();
    let binary = sibling_binary(name).unwrap_or_else(|e| panic!("{e}"));
    invoke_once(&Invocation {
        binary,
        event: event.to_string(),
        env: emulated.process_environment(function, environment),
        timeout: deployed::timeout(&emulated.template, name).min(LONGEST_WAIT),
        function_arn: format!("arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:fund-account-{name}"),
    })
    .await
    .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The function's answer to its event, from exactly its template environment: the
/// response's JSON, or a failure that names what the binary did instead.
async fn answer_from_the_template_environment(emulated: &Emulated, function: Function) -> (Value, Invoked) {
    let name = function.binary();
    let invoked = invoke(emulated, function, &event(name), &emulated.environment(function)).await;
    let Some(body) = invoked.response() else {
        panic!(
            "{name} did not answer events/{name}.json from the environment template.yaml gives it \
             (a variable it needs that the template lacks?): {:?}\n{}",
            invoked.answer,
            invoked.output()
        );
    };
    let response = serde_json::from_str(body).unwrap_or_else(|e| panic!("{name}: {e}: {body}"));
    (response, invoked)
}

/// The events run in the order of a member's journey, each through its binary; the
/// functions run are recorded so that none is left out.
struct Journey {
    emulated: Emulated,
    ran: BTreeSet<&'static str>,
}

impl Journey {
    /// Runs an HTTP function's binary on its event; checks the status; returns the body.
    async fn http(&mut self, route: Route, status: u16) -> Value {
        let function = Function::Http(route);
        assert!(self.ran.insert(function.binary()), "{} runs once", function.binary());
        let (response, invoked) = answer_from_the_template_environment(&self.emulated, function).await;
        let body = response["body"].as_str().unwrap_or_else(|| panic!("{response}"));
        assert_eq!(response["isBase64Encoded"], false, "{response}");
        let body: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert_eq!(
            response["statusCode"],
            status,
            "{} answered events/{}.json with {body}\n{}",
            function.binary(),
            function.binary(),
            invoked.output()
        );
        body
    }

    /// Runs a function that is not behind the API (a stream consumer) on its event;
    /// returns its answer and what it printed.
    async fn background(&mut self, function: Function) -> (Value, Invoked) {
        assert!(self.ran.insert(function.binary()), "{} runs once", function.binary());
        answer_from_the_template_environment(&self.emulated, function).await
    }

    /// Runs the scheduled function's binary on its event; returns its report and what it
    /// printed.
    async fn scheduled(&mut self) -> (Value, Invoked) {
        assert!(self.ran.insert(Function::Reconcile.binary()));
        answer_from_the_template_environment(&self.emulated, Function::Reconcile).await
    }
}

/// The EMF line the reconcile binary printed: exactly one line of its stdout carries
/// CloudWatch metrics.
fn emf_line(stdout: &str) -> Value {
    let documents: Vec<Value> = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|document| document.get("_aws").is_some())
        .collect();
    assert_eq!(documents.len(), 1, "one EMF line on stdout:\n{stdout}");
    documents[0].clone()
}

/// Every function's binary, from its template environment, answers its `events/` file as
/// the member journey says (`deployment.rs` runs the same journey in-process): onboarding,
/// money in, the scheduled run (which prints its metrics), money out, the payout reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_binary_answers_its_event_from_the_template_environment() {
    let mut j = Journey {
        emulated: Emulated::create().await,
        ran: BTreeSet::new(),
    };
    let member = MemberId::parse("seller-001").unwrap();

    let body = j.http(Route::MemberSync, 200).await;
    assert_eq!(body["status"], "inactive", "{body}");
    let body = j.http(Route::GetAccount, 200).await;
    assert_eq!(body["member_id"], "seller-001", "{body}");
    let body = j.http(Route::Activate, 202).await;
    assert_eq!(body["status"], "pending_verification", "{body}");
    j.http(Route::SendCode, 202).await;
    // The code went out by SMS through the emulator; the event carries a code of its own.
    let code = serde_json::from_str::<Value>(event("confirm-code")["body"].as_str().unwrap()).unwrap();
    let hasher = j.emulated.started(Function::Http(Route::ConfirmCode)).await;
    make_the_sent_code(&hasher, &member, code["code"].as_str().unwrap()).await;
    let body = j.http(Route::ConfirmCode, 200).await;
    assert_eq!(body["status"], "active", "{body}");

    let body = j.http(Route::CreateCollection, 201).await;
    assert_eq!(body["status"], "pending", "{body}");
    let body = j.http(Route::CreateRefund, 201).await;
    assert_eq!(body["amount"], "200.00", "{body}");
    // The collection's `available_at` has passed: the run settles it, then checks the books.
    let (report, invoked) = j.scheduled().await;
    assert_eq!(report["settled"]["count"], 1, "{report}");
    assert_eq!(report["accounts_checked"], 1, "{report}");
    assert_eq!(report["discrepancies"], serde_json::json!([]), "{report}");
    let emf = emf_line(&invoked.stdout);
    assert_eq!(emf["_aws"]["CloudWatchMetrics"][0]["Namespace"], metrics::NAMESPACE);
    assert_eq!(emf[metrics::DIMENSION_MODE], metrics::MODE_FULL, "{emf}");
    assert_eq!(
        (
            &emf[metrics::RUNS],
            &emf[metrics::DISCREPANCIES],
            &emf[metrics::MEMBERS_CHECKED]
        ),
        (&serde_json::json!(1), &serde_json::json!(0), &serde_json::json!(1)),
        "{emf}"
    );
    assert_eq!(emf["run_id"], report["run_id"]);

    let created = j.http(Route::Withdraw, 201).await;
    assert_eq!(created["status"], "processing", "{created}");
    let named = event("get-withdrawal")["pathParameters"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let store = j.emulated.started(Function::Http(Route::GetWithdrawal)).await;
    withdrawal_under_the_events_id(&store, created["id"].as_str().unwrap(), &named).await;
    let body = j.http(Route::GetWithdrawal, 200).await;
    assert_eq!(body["id"], named.as_str(), "{body}");
    let body = j.http(Route::ListWithdrawals, 200).await;
    assert_eq!(body["items"].as_array().map(Vec::len), Some(2), "{body}");
    let body = j.http(Route::ListTransactions, 200).await;
    assert!(
        body["items"].as_array().is_some_and(|items| !items.is_empty()),
        "{body}"
    );
    let body = j.http(Route::WithdrawalPaid, 200).await;
    assert_eq!(body["status"], "paid", "{body}");
    let body = j.http(Route::WithdrawalReturned, 409).await;
    assert_eq!(body["code"], "withdrawal_already_settled", "{body}");

    let body = j.http(Route::PutFxRate, 200).await;
    assert_eq!(body["pair"], "USD-CNY", "{body}");
    // The event's as_of is its own date; the binaries run on today's clock.
    let rates = j.emulated.started(Function::Http(Route::PutFxRate)).await;
    fresh_rate(&rates, "USD-CNY", "7.1845").await;
    let body = j.http(Route::GetFees, 200).await;
    assert_eq!(body["withdrawal"].as_array().map(Vec::len), Some(3), "{body}");
    let body = j.http(Route::PreviewWithdrawal, 200).await;
    assert_eq!(body["payout_amount"], "1729.95", "{body}");
    let quote = j.http(Route::CreateQuote, 201).await;
    assert_eq!(quote["buy_amount"], "714.85", "{quote}");
    let named = serde_json::from_str::<Value>(event("create-conversion")["body"].as_str().unwrap()).unwrap();
    quote_under_the_events_id(
        &rates,
        &member,
        quote["id"].as_str().unwrap(),
        named["quote_id"].as_str().unwrap(),
    )
    .await;
    let body = j.http(Route::CreateConversion, 201).await;
    assert_eq!(body["buy_amount"], "714.85", "{body}");
    let body = j.http(Route::ListConversions, 200).await;
    assert_eq!(body["items"].as_array().map(Vec::len), Some(1), "{body}");
    let body = j.http(Route::PlatformBalances, 200).await;
    assert_eq!(body["accounts"].as_array().map(Vec::len), Some(6), "{body}");

    // The statement of the events' month (the binaries' clock is today's: it may be
    // empty, and it adds up either way); an export, written by its binary on the stream
    // record of `events/`, then downloadable by the presigned URL its GET signs.
    let statement = j.http(Route::GetStatement, 200).await;
    assert_statement_adds_up(&statement);
    let export = j.http(Route::CreateExport, 202).await;
    let named = event("get-export")["pathParameters"]["id"].as_str().unwrap().to_owned();
    export_under_the_events_id(&rates, &member, export["id"].as_str().unwrap(), &named).await;
    let (batch, invoked) = j.background(Function::ExportStatement).await;
    assert_eq!(
        batch,
        serde_json::json!({ "batchItemFailures": [] }),
        "{}",
        invoked.output()
    );
    let export = j.http(Route::GetExport, 200).await;
    assert_eq!(export["status"], "ready", "{export}");
    let url = export["download_url"].as_str().unwrap();
    let file = reqwest::get(url).await.unwrap();
    assert_eq!(file.status(), 200, "{url}");
    let bytes = file.bytes().await.unwrap();
    assert!(bytes.starts_with("\u{feff}id,time,type".as_bytes()), "{bytes:?}");

    // The publisher's binary: a batch of the table's stream (its outbox item put in as
    // the movement would have), then the SMS sweep on its schedule.
    let stream = event("publish-events");
    let publisher = j.emulated.started(Function::PublishEvents).await;
    outbox_item_under_the_events_key(&publisher, &stream).await;
    assert!(j.ran.insert(Function::PublishEvents.binary()));
    let (response, invoked) = answer_from_the_template_environment(&j.emulated, Function::PublishEvents).await;
    assert_eq!(
        response,
        serde_json::json!({ "batchItemFailures": [] }),
        "{}",
        invoked.output()
    );
    let sweep = invoke(
        &j.emulated,
        Function::PublishEvents,
        &event("sweep-notifications"),
        &j.emulated.environment(Function::PublishEvents),
    )
    .await;
    let report: Value = serde_json::from_str(sweep.response().unwrap_or_else(|| panic!("{}", sweep.output()))).unwrap();
    assert_eq!(report["sent"], 2, "the withdrawal's SMS, created and paid: {report}");

    let every: BTreeSet<&str> = Function::all().map(Function::binary).collect();
    assert_eq!(j.ran, every, "every function's binary ran");
}

/// Every variable the template declares for a function is read by its binary: without
/// it the binary fails its cold start, naming it (none has a silent default). The log
/// level is the one optional setting: a value that is not a level is reported, which
/// shows the binary read it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_variable_the_template_declares_is_one_the_binary_reads() {
    let emulated = Emulated::create().await;
    for function in Function::all() {
        let name = function.binary();
        let declared = emulated.environment(function);
        assert!(declared.contains_key(vars::TABLE_NAME), "{name}: {declared:?}");
        for variable in declared.keys() {
            let mut varied = declared.clone();
            if variable == vars::RUST_LOG {
                varied.insert(variable.clone(), "not-a-level".to_owned());
                let invoked = invoke(&emulated, function, &event(name), &varied).await;
                assert!(
                    invoked.stdout.contains("RUST_LOG is not a level"),
                    "{name} ignores {variable} from template.yaml: {:?}\n{}",
                    invoked.answer,
                    invoked.output()
                );
                continue;
            }
            varied.remove(variable);
            let invoked = invoke(&emulated, function, &event(name), &varied).await;
            let failed_to_start = matches!(invoked.answer, Answer::Exited(Some(code)) if code != 0)
                || matches!(invoked.answer, Answer::InitError(_));
            assert!(
                failed_to_start,
                "{name} starts without {variable}, which template.yaml declares for it: \
                 a setting the code ignores? {:?}\n{}",
                invoked.answer,
                invoked.output()
            );
            assert!(
                invoked.output().contains(variable.as_str()),
                "{name}: the cold start's failure names {variable}\n{}",
                invoked.output()
            );
        }
    }
}

/// What a function cannot fetch at its first request (the code secret, deferred from the
/// cold start) is an outage the caller is told of in the contract's terms — `503
/// service_unavailable`, problem+json — not a Lambda invocation error that API Gateway
/// turns into a bare 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_that_cannot_be_fetched_answers_503_problem_json() {
    let emulated = Emulated::create().await;
    let function = Function::Http(Route::SendCode);
    let mut environment = emulated.environment(function);
    environment.insert(
        vars::CODE_SECRET_ARN.to_owned(),
        format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:no-such-secret-AbCdEf"),
    );
    let invoked = invoke(&emulated, function, &event(function.binary()), &environment).await;
    let Some(body) = invoked.response() else {
        panic!("send-code did not answer: {:?}\n{}", invoked.answer, invoked.output());
    };
    let response: Value = serde_json::from_str(body).unwrap();
    assert_eq!(response["statusCode"], 503, "{response}");
    assert_eq!(
        response["headers"]["content-type"], "application/problem+json",
        "{response}"
    );
    let problem: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(problem["code"], "service_unavailable", "{problem}");
}
