//! The SNS adapter against the emulator: a code sent through `send_code` is published to
//! the phone, and read back from what the server recorded.

use std::sync::Arc;

use fund_account::activation;
use fund_account::password::PaymentPassword;
use fund_account::verification::SmsCode;
use fund_account_tests::{app_with, dynamodb_store, sent_sms, sns_sender};
use serde_json::Value;

#[tokio::test]
async fn a_verification_code_goes_out_through_sns_and_confirms() {
    let store = Arc::new(dynamodb_store().await);
    let (app, _clock) = app_with(store, Arc::new(sns_sender().await));
    // A number of its own, so parallel runs cannot mix up their messages.
    let phone = format!("+1202555{:04}", rand_suffix());
    let member = fund_account_tests::TestApp {
        app: app.clone(),
        clock: _clock,
        outbox: fund_account_tests::sqlite_store().outbox(),
    }
    .member("sns-seller", "login-Pass-2026", Some(&phone))
    .await;
    activation::set_payment_password(&app, &member, PaymentPassword::new("Vault-Key-2026!".to_owned()))
        .await
        .unwrap();
    activation::send_code(&app, &member).await.unwrap();

    let messages: Vec<String> = sent_sms()
        .await
        .into_iter()
        .filter(|(p, _)| *p == phone)
        .map(|(_, m)| m)
        .collect();
    assert_eq!(messages.len(), 1, "one SMS published to {phone}");
    let code = messages[0]
        .split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() == 6)
        .expect("a code")
        .to_owned();
    activation::confirm_code(&app, &member, &SmsCode::parse(&code).unwrap())
        .await
        .unwrap();
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        % 10_000
}

#[tokio::test]
async fn a_reconciliation_discrepancy_is_published_to_the_alert_topic() {
    use fund_account::ledger::{Bucket, EntryType, Posting};
    use fund_account::money::Currency;
    use fund_account::reconciliation::{self, RunOptions};
    use fund_account::store::Write;

    let config = fund_account_tests::aws_config().await;
    let sns = aws_sdk_sns::Client::new(&config);
    let topic_name = format!("fund-account-alerts-{}", rand_suffix());
    let topic_arn = sns
        .create_topic()
        .name(&topic_name)
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let store = Arc::new(dynamodb_store().await);
    let (app, clock) = app_with(store, Arc::new(sns_sender().await));
    let app = Arc::new(Arc::try_unwrap(app).ok().unwrap().with_alerts(Arc::new(
        fund_account::adapters::sns::SnsTopicAlerts::new(sns, topic_arn.clone()),
    )));
    let t = fund_account_tests::TestApp {
        app: app.clone(),
        clock,
        outbox: fund_account_tests::sqlite_store().outbox(),
    };
    let member = t.member("alerted-seller", "login-Pass-2026", None).await;
    let sabotage = Write::posting(
        Posting::new(&member, Currency::Cny, EntryType::Collection, "sabotage")
            .change(Bucket::Available, fund_account_tests::fixtures::amount("7")),
        app.now(),
    );
    app.store.commit(vec![sabotage[0].clone()]).await.unwrap();

    let report = reconciliation::run(&app, RunOptions::full()).await.unwrap();
    assert_eq!(report.discrepancies.len(), 1);

    let data = fund_account_tests::emulator_state().await;
    let topic = data["sns"]["Topic"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["arn"] == topic_arn.as_str())
        .unwrap();
    let notifications = topic["sent_notifications"].as_array().unwrap();
    assert_eq!(notifications.len(), 1, "one alert published");
    let (message, subject) = (
        notifications[0][1].as_str().unwrap(),
        notifications[0][2].as_str().unwrap(),
    );
    assert_eq!(subject, "Fund account reconciliation: 1 discrepancies");
    let published: Value = serde_json::from_str(message).unwrap();
    assert_eq!(published["run_id"], report.run_id.as_str());
    assert_eq!(published["discrepancies"][0]["kind"], "balance_mismatch");
    assert_eq!(published["discrepancies"][0]["member_id"], "alerted-seller");
}
